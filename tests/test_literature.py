"""`memhost plot --literature`: the shipped literature data and the map with a real emulated run."""

import json
import subprocess
import sys
import tomllib
from importlib import resources

import pytest

from memhost.errors import UsageError
from memhost.literature import load_devices, run_point


def memhost(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "memhost", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=180)


@pytest.fixture(scope="module")
def level_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    r = memhost("levels", "-n", "16", "--cycles", "2", "--port", "emu", "--seed", "3", "--out",
                str(out), "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["run_dir"]


def test_every_shipped_entry_says_where_its_numbers_came_from():
    devices = load_devices()
    raw = tomllib.loads(resources.files("memhost.data").joinpath("literature.toml").read_text())
    assert len(devices) == len(raw["device"]) >= 5
    assert len({d.id for d in devices}) == len(devices)
    for d in devices:
        assert d.levels_source and d.read_in, d.id
        assert d.doi or d.id == "seed-tio2x", f"{d.id}: every published point has a DOI"
        assert d.doi == "" or d.doi.startswith("10."), d.id
        if d.ratio is not None:
            assert d.ratio_source, d.id
    by_id = {d.id: d for d in devices}
    assert (by_id["seed-tio2x"].levels, by_id["seed-tio2x"].ratio) == (512, 1.19)
    assert by_id["rao2023"].levels == 2048 and by_id["rao2023"].doi == "10.1038/s41586-023-05759-5"


def test_an_entry_with_a_ratio_but_no_source_is_refused():
    text = ('[[device]]\nid="x"\nlabel="x"\nmaterial="x"\nlevels=4\nratio=3.0\ndoi="10.1/x"\n'
            'citation="x"\nlevels_source="x"\nread_in="x"\n')
    with pytest.raises(UsageError, match="ratio_source"):
        load_devices(text)
    assert load_devices(text.replace("ratio=3.0\n", ""))[0].ratio is None


def test_literature_map_places_the_run_at_its_measured_device_ratio(level_run, tmp_path):
    meta = json.loads(open(f"{level_run}/meta.json").read())
    p = run_point(level_run)
    dr = meta["device_range"]
    assert p.levels == 16 and p.ratio_basis == "device range" and p.emulated
    assert p.ratio == pytest.approx(dr["g_high"] / dr["g_low"])
    assert 1.05 < p.ratio < 1.5           # the tio2x-seed preset: a ~1.19x device
    r = memhost("plot", "--literature", level_run, "--out", str(tmp_path / "lit.png"), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert sorted(out["files"]) == sorted([str(tmp_path / "lit.png"), str(tmp_path / "lit.svg")])
    png = (tmp_path / "lit.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    svg = (tmp_path / "lit.svg").read_text()
    assert "10.1038/s41586-023-05759-5" in svg and "your run" in svg
    assert {d["id"] for d in out["devices"]} >= {"seed-tio2x", "rao2023"}


def test_literature_map_refuses_what_it_cannot_place(level_run, tmp_path):
    sweep = tmp_path / "sw"
    r = memhost("sweep", "--port", "emu", "--out", str(sweep), "--cycles", "1", "--no-plots",
                "--json")
    assert r.returncode == 0, r.stderr
    run = next(sweep.iterdir())
    bad = memhost("plot", "--literature", str(run), "--out", str(tmp_path / "a.png"))
    assert bad.returncode == 2 and "level runs" in bad.stderr
    bad = memhost("plot", "--literature", "--out", str(tmp_path / "nope" / "a.png"))
    assert bad.returncode == 2 and "does not exist" in bad.stderr
    bad = memhost("plot", "--literature", str(tmp_path / "missing-run"))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    bad = memhost("plot", level_run, "--out", str(tmp_path / "a.png"))
    assert bad.returncode == 2 and "--literature" in bad.stderr
