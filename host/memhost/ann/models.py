"""Networks the benchmark can transfer: a numpy MLP, a torch ResNet-style CNN, a user's torch model.

Each is wrapped as a ``Net``: ``weights()`` lists the arrays that go onto devices (every Linear /
Conv weight; biases and BatchNorm stay digital), ``accuracy(weights)`` evaluates the test set with
those arrays in place (``None`` = the trained float weights).

Built-in models train deterministically (fixed seeds, fixed data order) and are cached as files
named by a hash of everything that determines them (data, architecture, training settings, code
version), so repeated runs load instead of retraining.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import UsageError
from .datasets import Dataset

# bump when a model's training code changes its result (each model has its own, so that retraining
# one does not invalidate the other's cache)
MLP_VERSION = "2"
CNN_VERSION = "1"


def default_cache_dir() -> Path:
    base = os.environ.get("MEMHOST_CACHE") or os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base else Path.home() / ".cache"
    return (root / "memhost" / "ann") if not os.environ.get("MEMHOST_CACHE") else root / "ann"


def _key(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def _acc(logits: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(logits, axis=1) == y))


# --------------------------------------------------------------------------- numpy MLP

def _task(data: Dataset) -> str:
    return {"mnist-5k": "MNIST", "mnist-pairs": "MNIST pairs, derived"}.get(data.name, data.name)


class MLPNet:
    """One-hidden-layer ReLU MLP in numpy, trained with Adam on cross-entropy (784-256-10 on MNIST:
    203,530 parameters)."""

    def __init__(self, params: dict[str, np.ndarray], data: Dataset, info: dict[str, Any]):
        self.p = params
        self.data = data
        self.info = info
        self.name = "mlp"
        (d_in, hidden), d_out = params["W1"].shape, params["W2"].shape[1]
        self.title = f"MLP {d_in}-{hidden}-{d_out} ({_task(data)})"
        self.weight_names = ["fc1.weight", "fc2.weight"]
        self.n_params = int(sum(v.size for v in params.values()))
        self._x = data.x_test.astype(np.float32)

    def weights(self) -> list[np.ndarray]:
        return [self.p["W1"].astype(np.float32), self.p["W2"].astype(np.float32)]

    def logits(self, x: np.ndarray, weights: list[np.ndarray] | None = None) -> np.ndarray:
        w1, w2 = weights if weights is not None else self.weights()
        h = np.maximum(x @ w1 + self.p["b1"].astype(np.float32), 0)
        return h @ w2 + self.p["b2"].astype(np.float32)

    def accuracy(self, weights: list[np.ndarray] | None = None) -> float:
        return _acc(self.logits(self._x, weights), self.data.y_test)


def train_mlp(data: Dataset, hidden: int = 256, epochs: int = 20, batch: int = 64, lr: float = 1e-3,
              seed: int = 0, weight_decay: float = 1e-4) -> dict[str, np.ndarray]:
    """Deterministic numpy training (float32): He init, Adam, fixed per-epoch shuffles."""
    assert data.x_train is not None and data.y_train is not None
    rng = np.random.default_rng(seed)
    x, y = data.x_train.astype(np.float32), data.y_train
    d_in, d_out = x.shape[1], len(data.classes)
    p = {"W1": rng.normal(0, np.sqrt(2 / d_in), (d_in, hidden)), "b1": np.zeros(hidden),
         "W2": rng.normal(0, np.sqrt(2 / hidden), (hidden, d_out)), "b2": np.zeros(d_out)}
    p = {k: v.astype(np.float32) for k, v in p.items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v2 = {k: np.zeros_like(v) for k, v in p.items()}
    b1, b2, eps, step = np.float32(0.9), np.float32(0.999), np.float32(1e-8), 0
    lr32, wd32 = np.float32(lr), np.float32(weight_decay)
    onehot = np.eye(d_out, dtype=np.float32)[y]
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for s in range(0, len(x), batch):
            idx = order[s:s + batch]
            xb, tb = x[idx], onehot[idx]
            h_pre = xb @ p["W1"] + p["b1"]
            h = np.maximum(h_pre, 0)
            z = h @ p["W2"] + p["b2"]
            z -= z.max(axis=1, keepdims=True)
            prob = np.exp(z)
            prob /= prob.sum(axis=1, keepdims=True)
            dz = (prob - tb) / np.float32(len(idx))
            g = {"W2": h.T @ dz, "b2": dz.sum(0)}
            dh = (dz @ p["W2"].T) * (h_pre > 0)
            g["W1"] = xb.T @ dh
            g["b1"] = dh.sum(0)
            step += 1
            for k in p:
                gk = g[k] + (wd32 * p[k] if k.startswith("W") else 0)
                m[k] = b1 * m[k] + (1 - b1) * gk
                v2[k] = b2 * v2[k] + (1 - b2) * gk * gk
                mh = m[k] / np.float32(1 - 0.9 ** step)
                vh = v2[k] / np.float32(1 - 0.999 ** step)
                p[k] -= lr32 * mh / (np.sqrt(vh) + eps)
    return {k: v.astype(np.float32) for k, v in p.items()}


def load_mlp(data: Dataset, cache_dir: Path | None = None, retrain: bool = False, seed: int = 0,
             epochs: int = 20, log: Callable[[str], None] | None = None,
             hidden: int = 256) -> MLPNet:
    assert data.x_train is not None
    d_in, d_out = data.x_train.shape[1], len(data.classes)
    cfg = {"model": f"mlp-{d_in}-{hidden}-{d_out}", "data": data.fingerprint, "seed": seed,
           "epochs": epochs, "v": MLP_VERSION}
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    path = cache / f"mlp-{_key(cfg)}.npz"
    info: dict[str, Any] = {"cache": str(path), "config": cfg}
    if path.exists() and not retrain:
        with np.load(path) as z:
            params = {k: z[k] for k in ("W1", "b1", "W2", "b2")}
        info.update(cached=True, train_s=0.0)
    else:
        t0 = time.perf_counter()
        if log:
            log(f"training the MLP {d_in}-{hidden}-{d_out} ({epochs} epochs, seed {seed}) ...")
        params = train_mlp(data, hidden=hidden, epochs=epochs, seed=seed)
        info.update(cached=False, train_s=round(time.perf_counter() - t0, 2))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **params)  # type: ignore[arg-type]
        os.replace(tmp, path)
    return MLPNet(params, data, info)


# --------------------------------------------------------------------------- torch

def _torch():
    try:
        import torch
    except ImportError:
        raise UsageError("this model needs PyTorch: pip install 'memhost[ann]' (torch==2.13.0 CPU); "
                         "the MLP (--model mlp) needs only numpy") from None
    return torch


WEIGHT_TYPES = ("Linear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
                "ConvTranspose3d")


def transfer_modules(model: Any) -> list[tuple[str, Any]]:
    """(name, module) of every Conv / Linear layer whose weight goes onto devices.

    Works on eager modules and on TorchScript (by the scripted module's original class name).
    """
    out = []
    for name, mod in model.named_modules():
        cls = getattr(mod, "original_name", None) or type(mod).__name__
        if cls in WEIGHT_TYPES and getattr(mod, "weight", None) is not None:
            out.append((name, mod))
    return out


class TorchNet:
    """A torch model evaluated on a numpy test set; transfers every Conv/Linear weight."""

    def __init__(self, model: Any, data: Dataset, name: str, title: str, info: dict[str, Any],
                 batch: int = 250):
        torch = _torch()
        self.torch = torch
        self.model = model.eval()
        self.data = data
        self.name = name
        self.title = title
        self.info = info
        self.batch = batch
        self.mods = transfer_modules(self.model)
        if not self.mods:
            raise UsageError(f"{name}: the model has no Conv/Linear layer to transfer")
        self.weight_names = [f"{n}.weight" if n else "weight" for n, _ in self.mods]
        self._float = [m.weight.detach().cpu().numpy().copy() for _, m in self.mods]
        self.n_params = int(sum(p.numel() for p in self.model.parameters()))
        self._x = torch.from_numpy(np.array(data.x_test, dtype=np.float32))
        if self._x.ndim == 4:  # channels-last convolutions are ~2x faster on CPU
            try:
                self.model = self.model.to(memory_format=torch.channels_last)
                self._x = self._x.contiguous(memory_format=torch.channels_last)
            except Exception:  # TorchScript or exotic modules: keep the default layout
                pass

    def weights(self) -> list[np.ndarray]:
        return [w.copy() for w in self._float]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        torch = self.torch
        with torch.no_grad():
            for (_, m), w in zip(self.mods, weights):
                m.weight.copy_(torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32))
                               .to(m.weight.dtype))

    def logits(self, weights: list[np.ndarray] | None = None) -> np.ndarray:
        torch = self.torch
        self.set_weights(weights if weights is not None else self._float)
        outs = []
        try:
            with torch.inference_mode():
                for s in range(0, len(self._x), self.batch):
                    outs.append(self.model(self._x[s:s + self.batch]).float().numpy())
        finally:
            if weights is not None:
                self.set_weights(self._float)
        return np.concatenate(outs)

    def accuracy(self, weights: list[np.ndarray] | None = None) -> float:
        return _acc(self.logits(weights), self.data.y_test)


def build_resnet(width: int = 48, blocks: tuple[int, ...] = (2, 2, 2), n_classes: int = 10,
                 in_ch: int = 1, pool: tuple[int, int] = (1, 1)) -> Any:
    """ResNet-style CNN for 28x28 digits: a stride-2 stem, stages of basic blocks (widths w, 2w,
    4w, ...; stride 2 between stages), average pooling to a ``pool`` grid (1x1 = global; 1x2 keeps
    the left and right halves of a digit pair apart), one Linear. width 48, blocks (2, 2, 2) ->
    1.56 M parameters and 16 transferred layers (15 Conv + 1 Linear)."""
    torch = _torch()
    nn = torch.nn

    class Block(nn.Module):  # type: ignore[name-defined,misc]
        def __init__(self, cin: int, cout: int, stride: int):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.short = None
            if stride != 1 or cin != cout:
                self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                           nn.BatchNorm2d(cout))

        def forward(self, x):
            out = torch.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return torch.relu(out + (x if self.short is None else self.short(x)))

    layers: list[Any] = [nn.Conv2d(in_ch, width, 3, 2, 1, bias=False), nn.BatchNorm2d(width),
                         nn.ReLU()]
    cin = width
    for i, nb in enumerate(blocks):
        cout = width * 2 ** i
        for j in range(nb):
            layers.append(Block(cin, cout, 2 if (j == 0 and i > 0) else 1))
            cin = cout
    cells = pool[0] * pool[1]
    layers += [nn.AdaptiveAvgPool2d(1 if cells == 1 else pool), nn.Flatten(),
               nn.Linear(cin * cells, n_classes)]
    return nn.Sequential(*layers)


def train_torch(model: Any, x: np.ndarray, y: np.ndarray, epochs: int, batch: int, lr: float,
                seed: int) -> None:
    """Deterministic training: seeded init/shuffles, deterministic algorithms, AdamW + one-cycle LR."""
    torch = _torch()
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    xt = torch.from_numpy(np.array(x, dtype=np.float32))
    yt = torch.from_numpy(y.astype(np.int64))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    steps = epochs * ((len(xt) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    lossf = torch.nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(xt), generator=gen)
        for s in range(0, len(xt), batch):
            idx = order[s:s + batch]
            opt.zero_grad(set_to_none=True)
            loss = lossf(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            sched.step()
    model.eval()


def load_cnn(data: Dataset, cache_dir: Path | None = None, retrain: bool = False, seed: int = 0,
             width: int = 48, blocks: tuple[int, ...] = (2, 2, 2), epochs: int = 4,
             batch: int = 64, lr: float = 4e-3, log: Callable[[str], None] | None = None) -> TorchNet:
    torch = _torch()
    assert data.x_train is not None and data.y_train is not None
    n_classes = len(data.classes)
    # a digit pair keeps its two halves apart in the pooling; a single digit pools globally
    pool = (1, 2) if data.shape[2] > data.shape[1] else (1, 1)
    cfg: dict[str, Any] = {"model": "resnet-mnist", "width": width, "blocks": list(blocks),
                           "data": data.fingerprint, "seed": seed, "epochs": epochs, "batch": batch,
                           "lr": lr, "v": CNN_VERSION, "torch": torch.__version__.split("+")[0]}
    if (n_classes, pool, data.shape) != (10, (1, 1), (1, 28, 28)):  # MNIST keys stay as they were
        cfg.update(n_classes=n_classes, pool=list(pool), shape=list(data.shape))
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    path = cache / f"cnn-{_key(cfg)}.pt"
    torch.manual_seed(seed)
    model = build_resnet(width, tuple(blocks), n_classes, data.shape[0], pool)
    info: dict[str, Any] = {"cache": str(path), "config": cfg}
    if path.exists() and not retrain:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        info.update(cached=True, train_s=0.0)
    else:
        if log:
            n = sum(p.numel() for p in model.parameters())
            log(f"training the ResNet-style CNN ({n / 1e6:.2f} M parameters, {epochs} epochs, "
                f"seed {seed}); cached afterwards ...")
        t0 = time.perf_counter()
        x = data.x_train.reshape(-1, *data.shape)
        train_torch(model, x, data.y_train, epochs, batch, lr, seed)
        info.update(cached=False, train_s=round(time.perf_counter() - t0, 2))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(model.state_dict(), tmp)
        os.replace(tmp, path)
    test = Dataset(None, None, data.x_test.reshape(-1, *data.shape), data.y_test, data.classes,
                   data.name, data.fingerprint, data.shape, data.derived)
    n = sum(p.numel() for p in model.parameters())
    depth = len(transfer_modules(model))
    return TorchNet(model, test, "cnn", f"ResNet-{depth} style CNN, {n / 1e6:.2f} M ({_task(data)})",
                    info)


def _import_callable(spec: str) -> Callable[..., Any]:
    import importlib
    import importlib.util
    import sys
    if ":" not in spec:
        raise UsageError(f"--arch {spec!r}: use 'package.module:callable' or 'file.py:callable'")
    mod_name, attr = spec.rsplit(":", 1)
    try:
        if mod_name.endswith(".py"):
            path = Path(mod_name)
            s = importlib.util.spec_from_file_location(path.stem, path)
            if s is None or s.loader is None:
                raise ImportError(f"cannot load {path}")
            module = importlib.util.module_from_spec(s)
            sys.modules[path.stem] = module
            s.loader.exec_module(module)
        else:
            module = importlib.import_module(mod_name)
        return getattr(module, attr)
    except (ImportError, AttributeError, FileNotFoundError, OSError) as exc:
        raise UsageError(f"--arch {spec!r}: {exc}") from None


def _is_torchscript(path: Path) -> bool:
    import zipfile
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("/constants.pkl") for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def load_user_model(path: str | Path, arch: str | None = None,
                    arch_kwargs: dict[str, Any] | None = None) -> Any:
    """A user's trained model: TorchScript, a pickled nn.Module (torch.save(model)), or a state_dict
    (optionally under 'state_dict' / 'model') with ``arch`` = 'module:callable' building the module,
    e.g. 'torchvision.models:resnet34' with arch_kwargs {'num_classes': 101}.

    A pickled module runs code when loaded: only load checkpoints you trust.
    """
    torch = _torch()
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: model checkpoint not found")
    if _is_torchscript(path):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                return torch.jit.load(str(path), map_location="cpu")
            except Exception as exc:
                raise UsageError(f"{path}: cannot load the TorchScript archive: {exc}") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:
            raise UsageError(f"{path}: cannot load as a torch checkpoint: {exc}") from None
    if isinstance(obj, torch.nn.Module):
        return obj
    if isinstance(obj, dict):
        sd = obj.get("state_dict", obj.get("model", obj))
        if isinstance(sd, torch.nn.Module):
            return sd
        if arch is None:
            raise UsageError(f"{path} holds a state_dict: give --arch module:callable that builds "
                             "the model (e.g. torchvision.models:resnet34)")
        model = _import_callable(arch)(**(arch_kwargs or {}))
        try:
            model.load_state_dict(sd)
        except (RuntimeError, KeyError) as exc:
            raise UsageError(f"{path}: state_dict does not fit --arch {arch}: {exc}") from None
        return model
    raise UsageError(f"{path}: holds a {type(obj).__name__}, not a model or a state_dict")


def user_net(model_path: str | Path, data: Dataset, arch: str | None = None,
             arch_kwargs: dict[str, Any] | None = None, batch: int = 64) -> TorchNet:
    model = load_user_model(model_path, arch, arch_kwargs)
    name = Path(model_path).stem
    n = sum(p.numel() for p in model.parameters())
    return TorchNet(model, data, name, f"{name}, {n / 1e6:.2f} M ({data.name})",
                    {"checkpoint": str(model_path), "arch": arch}, batch=batch)


# --------------------------------------------------------------------------- BatchNorm folding

BN_TYPES = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d")


def fold_batchnorm(model: Any) -> tuple[Any, dict[str, Any]]:
    """A copy of ``model`` (eval mode) with every BatchNorm folded into the Conv / Linear right
    before it, as analog in-memory hardware often does before writing weights to a crossbar: per
    output channel c, ``w'[c] = w[c] * g[c]`` and ``b'[c] = (b[c] - mean[c]) * g[c] + beta[c]`` with
    ``g = gamma / sqrt(running_var + eps)``; the BN is removed. The float model computes the same
    function up to float rounding (inference-mode BN is affine per channel).

    The data flow comes from ``torch.fx.symbolic_trace``, so residual networks work: a BN is folded
    only if its input is the output of a Conv / Linear module used by nothing else (then the
    per-channel affine map can move into that layer). Other BNs stay digital and are listed under
    ``skipped`` with the reason: a BN after an addition, a pooling, an input, a conv whose output
    also feeds another node, a grouped ConvTranspose, or a BN without running statistics.

    Returns (folded GraphModule, {"folded": [(layer, bn), ...], "skipped": [(bn, reason), ...]}).
    Raises UsageError when the model cannot be traced (TorchScript, data-dependent control flow).
    """
    torch = _torch()
    import copy
    import torch.fx as fx

    model = copy.deepcopy(model).eval()
    try:
        gm = fx.symbolic_trace(model)
    except Exception as exc:  # TorchScript modules, data-dependent Python control flow
        raise UsageError(f"--fold-bn: cannot trace the model with torch.fx ({type(exc).__name__}: "
                         f"{exc}); fold BatchNorm into the weights before saving it") from None
    mods = dict(gm.named_modules())

    def cls(m: Any) -> str:
        return getattr(m, "original_name", None) or type(m).__name__

    folded: list[tuple[str, str]] = []
    skipped: list[tuple[str, str]] = []
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or cls(mods[node.target]) not in BN_TYPES:
            continue
        bn = mods[node.target]
        bn_name = str(node.target)
        src = node.args[0] if node.args else None
        if not isinstance(src, fx.Node) or src.op != "call_module" \
                or cls(mods[src.target]) not in WEIGHT_TYPES:
            what = src.format_node() if isinstance(src, fx.Node) else repr(src)
            skipped.append((bn_name, f"input is not a Conv/Linear output ({what})"))
            continue
        if len(src.users) != 1:
            skipped.append((bn_name, f"{src.target}'s output also feeds other nodes"))
            continue
        if bn.running_mean is None or bn.running_var is None:
            skipped.append((bn_name, "no running statistics (track_running_stats=False)"))
            continue
        layer = mods[src.target]
        transposed = cls(layer).startswith("ConvTranspose")
        if transposed and layer.groups != 1:
            skipped.append((bn_name, f"{src.target} is a grouped ConvTranspose"))
            continue
        w = layer.weight
        out_dim = 1 if transposed else 0
        if w.shape[out_dim] != bn.running_mean.numel():
            skipped.append((bn_name, f"{src.target} has {w.shape[out_dim]} output channels, "
                                         f"the BN {bn.running_mean.numel()}"))
            continue
        with torch.no_grad():
            g = (bn.weight if bn.affine else torch.ones_like(bn.running_var)) \
                / torch.sqrt(bn.running_var + bn.eps)
            beta = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
            b = layer.bias if layer.bias is not None else torch.zeros_like(bn.running_mean)
            shape = [1] * w.ndim
            shape[out_dim] = -1
            new_w = (w * g.reshape(shape)).to(w.dtype)
            new_b = ((b - bn.running_mean) * g + beta).to(w.dtype)
            layer.weight = torch.nn.Parameter(new_w, requires_grad=False)
            layer.bias = torch.nn.Parameter(new_b, requires_grad=False)
        node.replace_all_uses_with(src)
        gm.graph.erase_node(node)
        folded.append((str(src.target), bn_name))
    gm.graph.lint()
    gm.delete_all_unused_submodules()
    gm.recompile()
    return gm.eval(), {"folded": folded, "skipped": skipped}


def fold_net(net: TorchNet) -> TorchNet:
    """``net`` with BatchNorm folded into the preceding Conv/Linear (see fold_batchnorm): the
    folded weights are what get quantized, so each layer's scale is its largest *folded* channel.
    """
    model, report = fold_batchnorm(net.model)
    info = {**net.info, "fold_bn": {"folded": len(report["folded"]),
                                    "skipped": report["skipped"]}}
    return TorchNet(model, net.data, net.name, f"{net.title}, BN folded", info, batch=net.batch)
