"""`memhost results`: the results page, the README block and the figures come from the benches'
JSON (small bench sizes here; the real page is `memhost results --run`)."""

import json
import shutil
from pathlib import Path

import pytest

from memhost import results as R
from memhost.errors import UsageError

SMALL = [
    ("demo", ["demo", "-n", "8", "--cycles", "2", "--seeds", "2", "--json"]),
    ("controller", ["bench", "controller", "--port", "emu", "--levels", "8", "--cycles", "1",
                    "--seeds", "2", "--json"]),
    ("mismatch", ["bench", "mismatch", "--port", "emu", "--levels", "8", "--cycles", "1", "--seeds",
                  "2", "--cases", "gain x2", "--json"]),
]


@pytest.fixture
def repo(tmp_path, monkeypatch):
    root = tmp_path / "repo"
    (root / "docs" / "img").mkdir(parents=True)
    (root / "README.md").write_text(f"# x\n\nbefore\n\n{R.README_BEGIN}\nold table\n{R.README_END}\n\nafter\n")
    monkeypatch.setattr(R, "BENCHES", SMALL)
    return root


def test_run_then_render_from_json_alone(repo):
    out = R.results(repo, run=True, only=None, log=lambda m: None)
    assert set(out["benches"]) == {"demo", "controller", "mismatch"}
    demo = json.loads((repo / "docs" / "results" / "demo.json").read_text())
    assert demo["command"].startswith("memhost demo -n 8") and demo["machine"]["cores"] >= 1
    assert len(demo["load_before"]) == 3 and demo["wall_s"] > 0
    page = (repo / "docs" / "results.md").read_text()
    # the figures on the page are the JSON's, formatted
    m = demo["result"]["mean_sd"]["adaptive"]["sigma_lsb"]
    assert f"{m['mean']:.3f} ± {m['sd']:.3f}" in page
    ctl = json.loads((repo / "docs" / "results" / "controller.json").read_text())["result"]
    assert f"{ctl['pulses_ratio_adaptive_over_ispp']:.3f}" in page
    assert demo["started_utc"] in page and "load average" in page and "gain x2" in page
    readme = (repo / "README.md").read_text()
    assert "old table" not in readme and readme.startswith("# x\n\nbefore") and readme.endswith("after\n")
    assert f"{m['mean']:.3f} ± {m['sd']:.3f}" in readme and "calibrated to" in readme
    for f in ("demo-levels-adaptive.png", "demo-cpd-ispp.png", "literature.png"):
        assert (repo / "docs" / "img" / f).stat().st_size > 10_000
    # rendering again from the JSON alone gives the same page
    (repo / "docs" / "results.md").unlink()
    R.results(repo, run=False, only=None, log=lambda m: None)
    assert (repo / "docs" / "results.md").read_text() == page


def test_nothing_to_render_and_unknown_bench_are_usage_errors(repo):
    with pytest.raises(UsageError, match="--run"):
        R.results(repo, run=False, only=None, log=lambda m: None)
    with pytest.raises(UsageError, match="unknown"):
        R.results(repo, run=True, only=["nope"], log=lambda m: None)
    with pytest.raises(UsageError, match="docs"):
        R.results(repo / "docs" / "img", run=False, only=None, log=lambda m: None)
