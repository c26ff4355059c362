"""ANN benchmark: BatchNorm folded into the preceding Conv/Linear before quantization (--fold-bn)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is the 'ann' extra (pip install 'memhost[ann]')")
from PIL import Image  # noqa: E402

from memhost.ann import datasets, models, transfer as tr  # noqa: E402
from memhost.cli import main  # noqa: E402
from memhost.errors import UsageError  # noqa: E402

nn = torch.nn


class _Res(nn.Module):
    """Conv-BN-ReLU-Conv-BN + identity, then a BN after the addition (cannot be folded)."""

    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=True)
        self.bn2 = nn.BatchNorm2d(c)
        self.bn_after_add = nn.BatchNorm2d(c)

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn_after_add(self.bn2(self.conv2(out)) + x))


def _randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g))
                m.running_var.copy_(torch.rand(n, generator=g) * 3 + 0.05)
                m.weight.copy_(torch.randn(n, generator=g))
                m.bias.copy_(torch.randn(n, generator=g))
    return model.eval()


def _tiny(c: int = 4, n_out: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return _randomize_bn(nn.Sequential(
        nn.BatchNorm2d(3),                                    # on the input: not foldable
        nn.Conv2d(3, c, 3, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
        _Res(c),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        nn.Linear(4 * c, 8), nn.BatchNorm1d(8), nn.ReLU(),
        nn.Linear(8, n_out)))


def test_folded_float_model_computes_the_same_function():
    model = _tiny()
    x = torch.randn(16, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = model(x)
    folded, rep = models.fold_batchnorm(model)
    with torch.no_grad():
        out = folded(x)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    assert rep["folded"] == [("1", "2"), ("4.conv1", "4.bn1"), ("4.conv2", "4.bn2"), ("7", "8")]
    assert sorted(n for n, _ in rep["skipped"]) == ["0", "4.bn_after_add"]
    assert all("not a Conv/Linear output" in why for _, why in rep["skipped"])
    # the original model is untouched (still has its BNs, conv1 still bias-free)
    assert model[4].conv1.bias is None and isinstance(model[2], nn.BatchNorm2d)
    kinds = [type(m).__name__ for m in folded.modules()]
    assert kinds.count("BatchNorm2d") == 2 and "BatchNorm1d" not in kinds
    # folded weights: w * gamma / sqrt(var + eps) per output channel
    bn = model[2]
    g = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    torch.testing.assert_close(folded.get_submodule("1").weight,
                               model[1].weight * g[:, None, None, None])
    torch.testing.assert_close(folded.get_submodule("1").bias, bn.bias - bn.running_mean * g)


def test_folding_changes_what_is_quantized():
    """One BN channel with a large gain sets the folded layer's scale: the other channels get
    fewer levels, so the folded layer's quantization error is larger than the unfolded one's."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 8, 3, bias=False), nn.BatchNorm2d(8)).eval()
    with torch.no_grad():
        model[1].weight.fill_(1.0)
        model[1].weight[0] = 20.0
    folded, rep = models.fold_batchnorm(model)
    assert len(rep["folded"]) == 1 and not rep["skipped"]
    x = torch.randn(32, 2, 6, 6, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref = model(x)
        w_u = model[0].weight.numpy().copy()
        w_f = folded.get_submodule("0").weight.numpy().copy()
        assert tr.layer_scale(w_f) == pytest.approx(
            20 * np.abs(w_u[0]).max() / np.sqrt(1 + model[1].eps), rel=1e-5)
        errs = {}
        for name, m, w in (("unfolded", model, w_u), ("folded", folded, w_f)):
            layer = m[0] if name == "unfolded" else m.get_submodule("0")
            layer.weight.copy_(torch.from_numpy(tr.quantize(w, 8)))
            errs[name] = float(((m(x) - ref)[:, 1:] ** 2).mean())   # the small channels
    assert errs["folded"] > 4 * errs["unfolded"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")   # torch.jit.script in the test
def test_torchscript_cannot_be_folded():
    ts = torch.jit.script(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)).eval())
    with pytest.raises(UsageError, match="--fold-bn"):
        models.fold_batchnorm(ts)


def test_cli_fold_bn_keeps_float_accuracy(tmp_path, capsys):
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    for c in range(3):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(6):
            a = rng.uniform(0, 255, (12, 12, 3)).astype(np.uint8)
            Image.fromarray(a).save(root / f"c{c}" / f"{i}.png")
    ckpt = tmp_path / "tiny.pt"
    torch.save(_tiny(), ckpt)
    res = {}
    for fold in (False, True):
        argv = ["bench", "ann", "--model", str(ckpt), "--data", str(root), "--bits", "2,9",
                "--out", str(tmp_path / f"out{fold}"), "--no-plot", "--json"]
        assert main(argv + (["--fold-bn"] if fold else [])) == 0
        res[fold] = json.loads(capsys.readouterr().out)
    plain, folded = res[False]["models"][0], res[True]["models"][0]
    assert res[True]["fold_bn"] is True and res[False]["fold_bn"] is False
    assert "fold_bn" not in plain["model_info"]                   # default: BN stays digital
    assert folded["model_info"]["fold_bn"]["folded"] == 4
    assert len(folded["model_info"]["fold_bn"]["skipped"]) == 2
    assert folded["float"] == plain["float"]
    assert folded["layers_transferred"] == plain["layers_transferred"] == 5
    d = datasets.load_image_folder(root)
    net = models.user_net(ckpt, d)
    np.testing.assert_allclose(models.fold_net(net).logits(), net.logits(), rtol=1e-4, atol=1e-5)
