"""ANN benchmark, torch paths: the ImageFolder loader, a user's checkpoint, the ResNet-style CNN."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is the 'ann' extra (pip install 'memhost[ann]')")
from PIL import Image  # noqa: E402

from memhost.ann import datasets, evaluate, models, transfer as tr  # noqa: E402
from memhost.cli import main  # noqa: E402

CLASSES = ("bars", "blob", "stripes")


def _image(kind: str, rng: np.random.Generator, size: int = 16) -> np.ndarray:
    a = rng.uniform(0, 40, (size, size, 3))
    if kind == "stripes":
        a[::4] += 200
    elif kind == "bars":
        a[:, ::4] += 200
    else:
        c = rng.integers(5, size - 5, 2)
        a[c[0] - 3:c[0] + 3, c[1] - 3:c[1] + 3] += 200
    return np.clip(a, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("imagefolder")
    rng = np.random.default_rng(0)
    for cls in CLASSES:
        (root / cls).mkdir()
        for i in range(12):
            Image.fromarray(_image(cls, rng)).save(root / cls / f"{i:02d}.png")
    (root / "blob" / "notes.txt").write_text("not an image")
    return root


def test_image_folder_loader(folder):
    d = datasets.load_image_folder(folder)
    assert d.classes == list(CLASSES)
    assert d.x_test.shape == (36, 3, 16, 16) and d.x_test.dtype == np.float32
    assert np.bincount(d.y_test).tolist() == [12, 12, 12]
    first = np.asarray(Image.open(folder / "bars" / "00.png"), np.float32).transpose(2, 0, 1) / 255
    np.testing.assert_allclose(d.x_test[0], first)
    g = datasets.load_image_folder(folder, channels=1, resize=20, crop=12, normalize="0.5/0.25",
                                   limit=7)
    assert g.x_test.shape == (7, 1, 12, 12)
    assert np.bincount(g.y_test).tolist() == [3, 2, 2]       # spread over classes
    assert g.x_test.min() < -1.0                              # (x - 0.5) / 0.25


def _tiny_model(seed: int = 0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.MaxPool2d(4), torch.nn.Flatten(),
                               torch.nn.Linear(6 * 4 * 4, 3))


@pytest.fixture(scope="module")
def checkpoint(folder, tmp_path_factory) -> Path:
    d = datasets.load_image_folder(folder)
    model = _tiny_model()
    models.train_torch(model, d.x_test, d.y_test, epochs=15, batch=12, lr=2e-2, seed=0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    torch.save(model, path)
    return path


def test_user_checkpoint_on_image_folder_via_cli(folder, checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["bench", "ann", "--model", str(checkpoint), "--data", str(folder), "--bits", "1,8",
               "--trials", "2", "--out", str(out), "--json"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    (m,) = res["models"]
    assert m["layers_transferred"] == 2                       # the Conv2d and the Linear
    assert m["weights_transferred"] == 6 * 3 * 3 * 3 + 96 * 3
    assert m["float"] > 0.9                                   # learnt the three patterns
    by = {r["bits"]: r for r in m["bits"]}
    assert abs(by[8]["ideal"] - m["float"]) <= 0.06
    assert (out / "accuracy_vs_bits.png").exists()


def test_state_dict_with_arch(folder, tmp_path):
    arch = tmp_path / "arch.py"
    arch.write_text("import torch\n"
                    "def build(n=3):\n"
                    "    return torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3, padding=1), "
                    "torch.nn.ReLU(), torch.nn.MaxPool2d(4), torch.nn.Flatten(), "
                    "torch.nn.Linear(96, n))\n")
    sd = tmp_path / "sd.pt"
    torch.save(_tiny_model(1).state_dict(), sd)
    model = models.load_user_model(sd, f"{arch}:build", {"n": 3})
    assert torch.equal(model[0].weight, _tiny_model(1)[0].weight)
    from memhost.errors import UsageError
    with pytest.raises(UsageError, match="--arch"):
        models.load_user_model(sd)


def test_transferred_weights_are_put_back(folder, checkpoint):
    net = models.user_net(checkpoint, datasets.load_image_folder(folder))
    before = [w.copy() for w in net.weights()]
    acc_float = net.accuracy()
    worst = net.accuracy(tr.transfer(net.weights(), 2, None, np.random.default_rng(0)))
    assert 0 <= worst <= 1
    assert net.accuracy() == acc_float
    assert all(np.array_equal(a, b) for a, b in zip(before, net.weights()))


def test_resnet_training_is_deterministic_and_deep():
    d = datasets.load_mnist_5k()
    x = d.x_train[:192].reshape(-1, 1, 28, 28)
    y = d.y_train[:192]
    states = []
    for _ in range(2):
        torch.manual_seed(0)
        m = models.build_resnet(width=4, blocks=(1, 1))
        models.train_torch(m, x, y, epochs=1, batch=64, lr=1e-2, seed=0)
        states.append(m.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    full = models.build_resnet()                              # the built-in size
    assert sum(p.numel() for p in full.parameters()) >= 1_000_000
    assert len(models.transfer_modules(full)) == 16


@pytest.mark.filterwarnings("ignore::DeprecationWarning")   # torch.jit.script/save in the test
def test_torchscript_checkpoint(folder, checkpoint, tmp_path):
    eager = torch.load(checkpoint, weights_only=False)
    ts = tmp_path / "tiny_ts.pt"
    torch.jit.save(torch.jit.script(eager), ts)
    d = datasets.load_image_folder(folder)
    net = models.user_net(ts, d)
    assert len(net.weights()) == 2
    assert net.accuracy() == models.user_net(checkpoint, d).accuracy()
