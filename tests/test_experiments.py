"""Experiments on the emulated board: run folders, range characterisation, interruption and resume."""

import json

import numpy as np
import pytest

from memhost.board import Board
from memhost.errors import RunFolderError, UsageError
from memhost.experiments import (LevelsConfig, ReadTrainConfig, RetentionConfig, SweepConfig,
                                 characterize_range, plan_levels, run_levels, run_read_train,
                                 run_retention, run_sweep, summarize_run)
from memhost.plots import plot_run
from memhost.runlog import RunFolder

SMALL = dict(n=8, cycles=2, tolerance_lsb=0.25, check_reads=4, retries=1)


@pytest.fixture(scope="module")
def emu():
    b = Board.open("emu", preset="tio2x-seed", seed=11)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture(scope="module")
def device_range(emu):
    return characterize_range(emu)


# ---------------------------------------------------------------- plan

def test_plan_up_goes_from_the_lowest_level_each_cycle():
    plan = plan_levels(3, 2, "up", 1.0, 3.0)
    assert [(s.cycle, s.level, s.target) for s in plan] == [
        (0, 0, 1.0), (0, 1, 2.0), (0, 2, 3.0), (1, 0, 1.0), (1, 1, 2.0), (1, 2, 3.0)]


def test_plan_down_goes_from_the_highest_level():
    assert [s.level for s in plan_levels(3, 1, "down", 1.0, 3.0)] == [2, 1, 0]


def test_plan_both_goes_up_then_down_each_cycle():
    plan = plan_levels(3, 1, "both", 1.0, 3.0)
    assert [(s.direction, s.level) for s in plan] == [
        ("up", 0), ("up", 1), ("up", 2), ("down", 2), ("down", 1), ("down", 0)]


def test_plan_shuffled_visits_every_level_once_per_cycle():
    plan = plan_levels(5, 3, "up", 1.0, 2.0, order="shuffled", shuffle_seed=4)
    for c in range(3):
        assert sorted(s.level for s in plan if s.cycle == c) == list(range(5))


# ---------------------------------------------------------------- range

def test_measured_range_lies_inside_the_device_with_margins(device_range):
    r = device_range
    assert r.g_low < r.g_min < r.g_max < r.g_high
    assert r.g_high / r.g_low == pytest.approx(1.19, rel=0.03)   # the seed's HRS/LRS ratio


def test_a_user_range_outside_the_device_is_refused_before_any_file(emu, device_range, tmp_path):
    cfg = LevelsConfig(**SMALL, g_range=(device_range.g_low * 0.9, device_range.g_high))
    with pytest.raises(UsageError, match="outside the device's range"):
        run_levels(emu, cfg, out=tmp_path, device_range=device_range, progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad, match", [
    (dict(n=1), "at least 2 levels"), (dict(cycles=0), "at least 1 cycle"),
    (dict(algorithm="magic"), "choose one of"), (dict(direction="sideways"), "choose one of")])
def test_bad_level_config_is_refused_before_any_file(emu, tmp_path, bad, match):
    with pytest.raises(UsageError, match=match):
        run_levels(emu, LevelsConfig(**{**SMALL, **bad}), out=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- level runs

@pytest.fixture(scope="module")
def level_run(emu, device_range, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return run_levels(emu, LevelsConfig(**SMALL, algorithm="ispp"), out=out,
                      device_range=device_range, progress=False, preset="tio2x-seed", seed=11)


def test_level_run_logs_one_row_per_planned_target(level_run):
    run, _ = level_run
    rows = RunFolder.open(run.path).read_rows()
    assert sorted(r["step"] for r in rows) == list(range(16))
    assert {(r["cycle"], r["level"]) for r in rows} == {(c, lv) for c in range(2) for lv in range(8)}


def test_level_run_meta_records_board_preset_config_and_range(level_run):
    run, _ = level_run
    meta = json.loads((run.path / "meta.json").read_text())
    assert meta["kind"] == "levels" and meta["status"] == "complete"
    assert meta["preset"] == "tio2x-seed" and meta["board"]["hal"] == "sim"
    assert meta["config"]["algorithm"] == "ispp" and meta["n_levels"] == 8
    assert meta["g_min"] == meta["device_range"]["g_min"]


def test_level_run_programs_near_the_targets(level_run):
    _, s = level_run
    assert s["within_half_lsb"] > 0.5 and abs(s["error_mean_lsb"]) < 0.5


def test_analyze_reproduces_the_summary_from_the_folder(level_run):
    run, s = level_run
    assert summarize_run(run.path) == s


def test_summary_has_the_json_keys(level_run):
    _, s = level_run
    assert {"levels", "cycles", "nonlinearity_index", "sigma_lsb", "within_half_lsb",
            "reproducible_levels", "pulses_mean", "run_dir"} <= s.keys()


def test_plot_run_writes_png_and_svg_of_each_figure(level_run):
    run, _ = level_run
    names = {p.name for p in plot_run(run.path)}
    assert names == {f"{s}.{e}" for s in ("levels", "cpd", "error_hist") for e in ("png", "svg")}


class _InterruptAfter:
    """Board wrapper that raises KeyboardInterrupt (as Ctrl-C would) after k PROGRAMs."""

    def __init__(self, board, k):
        self._b, self._k = board, k

    def program(self, *a, **kw):
        if self._k == 0:
            raise KeyboardInterrupt
        self._k -= 1
        return self._b.program(*a, **kw)

    def __getattr__(self, name):
        return getattr(self._b, name)


def test_ctrl_c_leaves_an_interrupted_run_that_resume_completes_exactly_once(emu, device_range,
                                                                              tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run_levels(_InterruptAfter(emu, 5), LevelsConfig(**SMALL), out=tmp_path,
                   device_range=device_range, progress=False)
    (path,) = list(tmp_path.iterdir())
    run = RunFolder.open(path)
    done = run.done_steps()   # 5 PROGRAMs: one per target, or two where a retry was needed
    assert run.meta["status"] == "interrupted" and done == set(range(len(done))) and 3 <= len(done) <= 5
    run2, s = run_levels(emu, LevelsConfig(), resume=path, progress=False)
    steps = [r["step"] for r in RunFolder.open(path).read_rows()]
    assert sorted(steps) == list(range(16)) and s["complete"]


def test_resume_refuses_a_folder_that_is_not_a_run(emu, tmp_path):
    with pytest.raises(RunFolderError, match="not a run folder"):
        run_levels(emu, LevelsConfig(), resume=tmp_path, progress=False)


# ---------------------------------------------------------------- other experiments

def test_retention_reads_each_level_at_every_time_point(emu, tmp_path):
    run, s = run_retention(emu, RetentionConfig(n=2, points=3, duration_s=1.0), out=tmp_path)
    rows = RunFolder.open(run.path).read_rows()
    assert len(rows) == 2 * (1 + 3) and [r["t_s"] for r in rows[:4]] == pytest.approx([0, 1e-3, 0.0316, 1.0], rel=0.01)
    assert len(s["per_level"]) == 2


def test_sweep_goes_up_and_down_in_both_polarities(emu, tmp_path):
    run, s = run_sweep(emu, SweepConfig(v_max=2.0, v_step=0.5), out=tmp_path)
    amps = RunFolder.open(run.path).columns_as_arrays()["amplitude_v"]
    assert amps.tolist() == [0.5, 1.0, 1.5, 2.0, 1.5, 1.0, 0.5, -0.5, -1.0, -1.5, -2.0, -1.5, -1.0, -0.5]
    assert s["g_high"] > s["g_low"]


def test_sweep_refuses_an_amplitude_above_the_board_limit(emu, tmp_path):
    with pytest.raises(UsageError, match="above the board's limit"):
        run_sweep(emu, SweepConfig(v_max=3.9), out=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_read_train_of_reads_measures_read_noise(emu, tmp_path):
    _, s = run_read_train(emu, ReadTrainConfig(reads=50), out=tmp_path)
    assert s["points"] == 50 and 0 < s["g_std_rel"] < 1e-2 and "neurosim_label" not in s


def test_pulse_train_gets_a_neurosim_label(emu, tmp_path):
    _, s = run_read_train(emu, ReadTrainConfig(pulses=60, amplitude_v=1.4), out=tmp_path)
    assert s["points"] == 61 and np.isfinite(s["neurosim_label"]) and s["g_end"] > s["g_start"]
