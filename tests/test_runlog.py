"""Run folders: layout, per-result append, resume bookkeeping, validation of bad folders."""

import json
import re

import pytest

from memhost.errors import RunFolderError
from memhost.runlog import LEVEL_COLUMNS, RunFolder, find_runs, iter_pending


def _row(step, achieved=1e-4):
    return {"step": step, "cycle": 0, "level": step, "direction": "up", "target": 1e-4,
            "achieved": achieved, "error": achieved - 1e-4, "status": "converged", "pulses": 3,
            "reads": 4, "elapsed_us": 100.0, "overhead_us": 10.0}


@pytest.fixture
def run(tmp_path):
    return RunFolder.create(tmp_path, "levels", {"n_levels": 4, "cycles": 1}, LEVEL_COLUMNS)


def test_create_names_the_folder_by_utc_time_and_kind(run):
    assert re.fullmatch(r"\d{8}T\d{6}Z_levels", run.path.name)


def test_create_writes_meta_with_kind_versions_and_config(run):
    meta = json.loads((run.path / "meta.json").read_text())
    assert meta["kind"] == "levels" and meta["n_levels"] == 4
    assert {"host_version", "protocol", "started_utc", "argv"} <= meta.keys()


def test_create_twice_in_one_second_gives_two_folders(tmp_path):
    a = RunFolder.create(tmp_path, "levels", {}, LEVEL_COLUMNS)
    b = RunFolder.create(tmp_path, "levels", {}, LEVEL_COLUMNS)
    assert a.path != b.path and len(find_runs(tmp_path)) == 2


def test_append_is_on_disk_before_close(run):
    run.append(_row(0))
    lines = (run.path / "results.csv").read_text().splitlines()
    assert lines[0] == ",".join(LEVEL_COLUMNS) and lines[1].startswith("0,0,0,up,")


def test_rows_read_back_with_types(run):
    run.append(_row(0, achieved=1.25e-4))
    run.close()
    row = RunFolder.open(run.path).read_rows()[0]
    assert row["step"] == 0 and row["status"] == "converged" and row["achieved"] == 1.25e-4


def test_done_steps_are_the_steps_logged(run):
    for s in (0, 1, 3):
        run.append(_row(s))
    run.close()
    assert RunFolder.open(run.path).done_steps() == {0, 1, 3}


def test_iter_pending_skips_done_steps_in_plan_order():
    assert list(iter_pending("abcd", {0, 2})) == [(1, "b"), (3, "d")]


def test_a_torn_last_line_is_ignored_and_cut_before_appending(run):
    run.append(_row(0))
    run.close()
    with open(run.path / "results.csv", "a") as f:
        f.write("1,0,1,up,1e-4,1.0")  # process killed mid-write
    again = RunFolder.open(run.path)
    assert again.done_steps() == {0}
    again.append(_row(1))
    again.close()
    assert RunFolder.open(run.path).done_steps() == {0, 1}


def test_close_records_the_final_status(run):
    run.close(status="complete")
    assert json.loads((run.path / "meta.json").read_text())["status"] == "complete"


def test_open_refuses_a_missing_folder(tmp_path):
    with pytest.raises(RunFolderError, match="no such folder"):
        RunFolder.open(tmp_path / "nope")


def test_open_refuses_a_folder_without_meta(tmp_path):
    with pytest.raises(RunFolderError, match="not a run folder"):
        RunFolder.open(tmp_path)


def test_open_refuses_corrupt_meta(run):
    (run.path / "meta.json").write_text("{not json")
    with pytest.raises(RunFolderError, match="corrupt"):
        RunFolder.open(run.path)


def test_open_refuses_a_row_with_missing_fields_in_the_middle(run):
    run.append(_row(0))
    run.close()
    with open(run.path / "results.csv", "a") as f:
        f.write("1,0,1\n")
    with pytest.raises(RunFolderError, match="line 3 has 3 fields"):
        RunFolder.open(run.path)


def test_open_refuses_a_non_numeric_value(run):
    run.append(_row(0))
    run.close()
    text = (run.path / "results.csv").read_text().replace("converged,3", "converged,x")
    (run.path / "results.csv").write_text(text)
    with pytest.raises(RunFolderError, match="not a number"):
        RunFolder.open(run.path)


def test_open_refuses_a_repeated_step(run):
    run.append(_row(0))
    run.append(_row(0))
    run.close()
    with pytest.raises(RunFolderError, match="repeated"):
        RunFolder.open(run.path)
