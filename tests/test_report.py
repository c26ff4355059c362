"""`memhost report RUN` opened in a real headless browser (Debian chromium): the page renders, its
figures load, and every metric on it equals `memhost analyze --json`. A missing chromium fails
(`make system-deps` installs it)."""

import json
import shutil
import struct
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from memhost.report import format_metric

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


def memhost(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "memhost", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=180)


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("chromium")
    assert exe, "chromium is not installed: run `make system-deps` as root (apt-get install chromium)"
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    profile.mkdir()
    r = subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return r


class Page(HTMLParser):
    """The parts of the dumped DOM the tests look at."""

    def __init__(self) -> None:
        super().__init__()
        self.metrics: dict[str, tuple[str, str]] = {}
        self.imgs: list[dict[str, str]] = []
        self.urls: list[str] = []
        self.badge = ""
        self._row: str | None = None
        self._td = False
        self._in_badge = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for k in ("src", "href"):
            if a.get(k):
                self.urls.append(a[k])
        if tag == "tr" and "data-key" in a:
            self._row = a["data-key"]
            self.metrics[self._row] = (a["data-value"], "")
        elif tag == "td" and self._row:
            self._td = True
        elif tag == "img":
            self.imgs.append(a)
        elif a.get("id") == "board-kind":
            self._in_badge = True

    def handle_endtag(self, tag):
        if tag == "td":
            self._td = False
        elif tag == "tr":
            self._row = None
        elif tag == "span":
            self._in_badge = False

    def handle_data(self, data):
        if self._td and self._row:
            v, t = self.metrics[self._row]
            self.metrics[self._row] = (v, t + data)
        if self._in_badge:
            self.badge += data


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def level_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    r = memhost("levels", "-n", "16", "--cycles", "3", "--port", "emu", "--seed", "7", "--out",
                str(out), "--json")
    assert r.returncode == 0, r.stderr
    return Path(json.loads(r.stdout)["run_dir"])


def _render(run: Path, tmp_path: Path) -> tuple[Page, dict, Path]:
    html_file = tmp_path / "report.html"
    r = memhost("report", str(run), "--out", str(html_file), "--json")
    assert r.returncode == 0, r.stderr
    analyzed = memhost("analyze", str(run), "--json")
    assert analyzed.returncode == 0, analyzed.stderr
    dom = chromium(tmp_path, "--dump-dom", html_file.as_uri()).stdout
    page = Page()
    page.feed(dom)
    return page, json.loads(analyzed.stdout), html_file


def test_report_renders_in_chromium_with_figures_and_the_analyze_metrics(level_run, tmp_path):
    page, analyzed, html_file = _render(level_run, tmp_path)
    scalars = {k: v for k, v in analyzed.items() if v is None or isinstance(v, (str, int, float))}
    assert set(page.metrics) == set(scalars)
    for key, (raw, text) in page.metrics.items():
        assert json.loads(raw) == analyzed[key], key
        assert text.strip() == format_metric(key, analyzed[key]), key
    assert page.metrics["sigma_lsb"][1] and "EMULATED" in page.badge
    # the figures `memhost plot` draws for a level run, each decoded by the browser at its PNG size
    assert sorted(i["alt"] for i in page.imgs) == ["cpd", "error_hist", "levels"]
    import base64
    for img in page.imgs:
        assert img["src"].startswith("data:image/png;base64,")
        w, h = _png_size(base64.b64decode(img["src"].split(",", 1)[1]))
        assert img.get("data-loaded") == f"{w}x{h}", img["alt"]
    assert all(u.startswith("data:") for u in page.urls), "the report must need no other file"
    shot = tmp_path / "shot.png"
    chromium(tmp_path, "--window-size=1000,1400", f"--screenshot={shot}", html_file.as_uri())
    assert _png_size(shot.read_bytes()) == (1000, 1400)


def test_report_says_real_board_and_default_path(level_run, tmp_path):
    run = tmp_path / level_run.name
    shutil.copytree(level_run, run)
    meta = json.loads((run / "meta.json").read_text())
    meta["preset"] = None
    meta["board"].update(hal="rp2", preset="", board="pico", emulated=False)
    (run / "meta.json").write_text(json.dumps(meta))
    r = memhost("report", str(run))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(run / "report.html")
    text = (run / "report.html").read_text()
    assert "REAL board" in text and "EMULATED" not in text and "pico" in text


def test_report_bad_inputs_exit_2_with_one_line(tmp_path, level_run):
    for args in (["report", str(tmp_path / "nope")],
                 ["report", str(level_run), "--out", str(tmp_path / "no" / "r.html")]):
        r = memhost(*args)
        assert r.returncode == 2 and r.stderr.count("\n") == 1, (args, r.stderr)
