"""Weight transfer: per-layer uniform quantization onto 2**b device levels, the signed-weight
mapping, and the programming-error models.

Notation. A layer's weights ``w`` are scaled by ``s`` (per layer): ``s = max|w|`` by default, or a
clipped scale (``clip``): the ``p``-th percentile of ``|w|`` (``"p99.9"``), or the scale that
minimises the layer's mean squared quantization error at the given level count (``"mse"``); weights
beyond ``s`` are clipped to it, as usual in low-bit quantization. A device holds one of
``n = 2**b`` levels placed uniformly on its range ``[g_lo, g_hi]`` (span ``D = g_hi - g_lo``); level
``k`` sits at position ``p_k = k / (n - 1)`` in [0, 1] and at conductance ``g_lo + p_k * D``. A
programming error ``e`` (siemens, achieved - target) moves a device by ``e / D`` in position units;
error models return those normalised errors.

Mappings (see docs/ann-benchmark.md for why differential is the default):

* ``differential`` (default): two devices per weight, ``w = s * (G+ - G-) / D``. Sign-magnitude: the
  device of the weight's sign holds level ``m = round(|w| / s * (n - 1))``, the other one level 0.
  Zero is exact, the common-mode conductance (g_lo, large on a ratio-1.19 device) cancels, and a
  weight has ``2n - 1`` values.
* ``offset``: one device per weight, ``w = s * (2 * (G - g_lo) / D - 1)``, the mid-range reference
  subtracted digitally (error-free). ``n`` weight values; with an even ``n`` there is no zero.
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import RunFolderError, UsageError

MAPPINGS = ("differential", "offset")


# --------------------------------------------------------------------------- quantization / mapping

CLIP_HELP = "max (default), pNN (percentile of |w|, e.g. p99.9) or mse"
#: MSE clipping: candidate scales, as fractions of max|w| (log-spaced, 1.0 included)
MSE_FRACTIONS = np.unique(np.concatenate([np.geomspace(0.02, 1.0, 97), [1.0]]))
#: MSE clipping searches on at most this many weights of a layer (an even stride over it)
MSE_SAMPLE = 1 << 18


def parse_clip(clip: str) -> tuple[str, float]:
    """('max', 100) | ('percentile', p) | ('mse', 0); UsageError with the accepted forms otherwise."""
    c = (clip or "max").strip().lower()
    if c in ("max", "none"):
        return ("max", 100.0)
    if c == "mse":
        return ("mse", 0.0)
    if c.startswith("p"):
        try:
            p = float(c[1:])
        except ValueError:
            p = float("nan")
        if 50.0 <= p <= 100.0:
            return ("percentile", p)
    raise UsageError(f"--clip {clip!r}: use {CLIP_HELP}; percentiles 50..100")


def layer_scale(w: np.ndarray, clip: str = "max", n_levels: int = 0,
                mapping: str = "differential") -> float:
    """The per-layer scale ``s`` (1.0 for an all-zero layer): max|w|, a percentile of |w|, or the
    MSE-optimal clipping scale for ``n_levels`` levels (which then must be given)."""
    a = np.abs(w).reshape(-1)
    top = float(np.max(a)) if a.size else 0.0
    if top <= 0:
        return 1.0
    kind, p = parse_clip(clip)
    if kind == "max":
        return top
    if kind == "percentile":
        s = float(np.percentile(a, p))
        return s if s > 0 else top
    if n_levels < 2:
        raise UsageError("MSE clipping needs the level count")
    x = np.asarray(w, dtype=np.float64).reshape(-1)
    if x.size > MSE_SAMPLE:
        x = x[:: -(-x.size // MSE_SAMPLE)]
    best, best_err = top, math.inf
    for f in MSE_FRACTIONS:
        s = float(f) * top
        err = float(np.mean((_quantize_scaled(x, n_levels, s, mapping) - x) ** 2))
        if err < best_err:
            best, best_err = s, err
    return best


def _quantize_scaled(x: np.ndarray, n_levels: int, s: float, mapping: str) -> np.ndarray:
    return decode(encode(x, n_levels, mapping, scale=s), n_levels, s, mapping, dtype=x.dtype)


def encode(w: np.ndarray, n_levels: int, mapping: str = "differential",
           scale: float | None = None) -> tuple[np.ndarray, ...]:
    """Level indices of the device(s) that hold ``w`` (int16 arrays shaped like w), at the layer
    scale ``scale`` (default max|w|); weights beyond it are clipped to the end levels.

    differential -> (k_plus, k_minus); offset -> (k,).
    """
    if n_levels < 2:
        raise UsageError("at least 2 levels (1 bit) are needed")
    s = layer_scale(w) if scale is None else float(scale)
    top = n_levels - 1
    if mapping == "differential":
        m = np.rint(np.minimum(np.abs(w) / s, 1.0) * top).astype(np.int16)
        pos = w > 0
        zero = np.zeros_like(m)
        return (np.where(pos, m, zero), np.where(pos, zero, m))
    if mapping == "offset":
        k = np.rint((w / s + 1.0) * 0.5 * top).astype(np.int16)
        return (np.clip(k, 0, top),)
    raise UsageError(f"unknown mapping {mapping!r}: choose {', '.join(MAPPINGS)}")


def decode(codes: tuple[np.ndarray, ...], n_levels: int, scale: float, mapping: str,
           errors: tuple[np.ndarray, ...] | None = None, dtype: Any = np.float32) -> np.ndarray:
    """Weights from level indices (+ normalised programming errors of each device, if given)."""
    top = n_levels - 1
    pos = [c.astype(dtype) / top for c in codes]
    if errors is not None:
        pos = [p + e.astype(dtype) for p, e in zip(pos, errors)]
    if mapping == "differential":
        return (scale * (pos[0] - pos[1])).astype(dtype)
    return (scale * (2.0 * pos[0] - 1.0)).astype(dtype)


def quantize(w: np.ndarray, n_levels: int, mapping: str = "differential",
             clip: str = "max") -> np.ndarray:
    """Ideal transfer: quantization only (no programming error)."""
    s = layer_scale(w, clip, n_levels, mapping)
    return decode(encode(w, n_levels, mapping, scale=s), n_levels, s, mapping, dtype=w.dtype)


# --------------------------------------------------------------------------- error models

class ErrorModel(Protocol):
    kind: str

    def draw(self, levels: np.ndarray, n_levels: int, rng: np.random.Generator) -> np.ndarray:
        """Normalised errors (position units) for devices programmed to ``levels`` of ``n_levels``."""

    def describe(self) -> dict[str, Any]: ...


class IdealModel:
    """Quantization only."""

    kind = "ideal"

    def draw(self, levels: np.ndarray, n_levels: int, rng: np.random.Generator) -> np.ndarray:
        return np.zeros(levels.shape, np.float32)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind}


@dataclass
class LevelTable:
    """Per measured level position: the achieved-minus-target samples (S) of every cycle."""

    positions: np.ndarray          # (L,) in [0, 1], sorted
    targets: np.ndarray            # (L,) S
    samples: list[np.ndarray]      # L arrays of errors in S
    g_lo: float
    g_hi: float
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def span(self) -> float:
        return self.g_hi - self.g_lo


def read_level_run(run: str | Path, direction: str | None = None) -> LevelTable:
    """Read a level run folder (meta.json + results.csv) into a LevelTable.

    Level positions come from each level's target (median over cycles) on the range spanned by the
    lowest and highest target level: that is where the levels were placed and what the device
    reached. Rows with a non-finite achieved value are skipped. ``direction`` keeps only rows of
    that direction (if the run has the column).
    """
    run = Path(run)
    meta_path, csv_path = run / "meta.json", run / "results.csv"
    if not run.is_dir() or not csv_path.is_file():
        raise RunFolderError(f"{run}: not a run folder (needs results.csv and meta.json)")
    meta: dict[str, Any] = {}
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise RunFolderError(f"{meta_path}: not valid JSON: {exc}") from None
    by_level: dict[int, list[tuple[float, float]]] = {}
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        need = {"level", "target", "achieved"}
        if reader.fieldnames is None or not need <= set(reader.fieldnames):
            raise RunFolderError(f"{csv_path}: needs columns level,target,achieved "
                                 f"(has {', '.join(reader.fieldnames or [])})")
        for row in reader:
            if direction and row.get("direction") not in (None, "", direction):
                continue
            try:
                level = int(row["level"])
                target = float(row["target"])
                achieved = float(row["achieved"])
            except (TypeError, ValueError):
                continue  # torn last line or a non-numeric cell
            if not (math.isfinite(target) and math.isfinite(achieved)):
                continue
            by_level.setdefault(level, []).append((target, achieved - target))
    if len(by_level) < 2:
        raise RunFolderError(f"{run}: needs results for at least 2 levels (has {len(by_level)})")
    levels = sorted(by_level)
    targets = np.array([np.median([t for t, _ in by_level[k]]) for k in levels])
    samples = [np.array([e for _, e in by_level[k]]) for k in levels]
    order = np.argsort(targets)
    targets = targets[order]
    samples = [samples[i] for i in order]
    g_lo, g_hi = float(targets[0]), float(targets[-1])
    if not g_hi > g_lo:
        raise RunFolderError(f"{run}: all level targets are equal; cannot place levels")
    positions = (targets - g_lo) / (g_hi - g_lo)
    return LevelTable(positions, targets, samples, g_lo, g_hi, str(run), meta)


class EmpiricalModel:
    """Errors drawn from a measured level table.

    A device at level k of n sits at position p = k/(n-1). If a measured level lies at p, its
    samples are drawn (uniformly, with replacement). Otherwise p lies between measured positions
    q_j <= p < q_{j+1}; the draw comes from level j with probability 1 - t and from level j+1 with
    probability t, t = (p - q_j)/(q_{j+1} - q_j): a mixture that interpolates the error
    distribution between the two neighbours and keeps the shape of each.
    """

    kind = "empirical"

    def __init__(self, table: LevelTable):
        self.table = table
        counts = np.array([len(s) for s in table.samples])
        if np.any(counts == 0):
            raise RunFolderError(f"{table.source}: a level has no samples")
        self.counts = counts
        width = int(counts.max())
        pad = np.zeros((len(counts), width), np.float32)
        for j, s in enumerate(table.samples):
            pad[j, :len(s)] = s / table.span
        self.padded = pad                        # normalised errors, (L, max samples)
        self._lut: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    @classmethod
    def from_run(cls, run: str | Path, direction: str | None = None) -> "EmpiricalModel":
        return cls(read_level_run(run, direction))

    def neighbours(self, n_levels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per level k of n: (lower measured level j0, upper j1, probability t of taking j1)."""
        if n_levels not in self._lut:
            q = self.table.positions
            p = np.arange(n_levels) / (n_levels - 1)
            j1 = np.clip(np.searchsorted(q, p, side="left"), 0, len(q) - 1)
            exact = np.isclose(q[j1], p, rtol=0, atol=1e-9)
            j0 = np.where(exact, j1, np.clip(j1 - 1, 0, len(q) - 1))
            gap = q[j1] - q[j0]
            t = np.where(exact | (gap <= 0), 0.0, (p - q[j0]) / np.where(gap > 0, gap, 1.0))
            self._lut[n_levels] = (j0.astype(np.int32), j1.astype(np.int32), t)
        return self._lut[n_levels]

    def draw(self, levels: np.ndarray, n_levels: int, rng: np.random.Generator) -> np.ndarray:
        j0, j1, t = self.neighbours(n_levels)
        flat = levels.reshape(-1)
        u = rng.random(flat.size, dtype=np.float32)
        j = np.where(u < t[flat].astype(np.float32), j1[flat], j0[flat])
        idx = (rng.random(flat.size, dtype=np.float32) * self.counts[j]).astype(np.int64)
        idx = np.minimum(idx, self.counts[j] - 1)
        return self.padded[j, idx].reshape(levels.shape)

    def describe(self) -> dict[str, Any]:
        tab = self.table
        return {"kind": self.kind, "run": tab.source, "levels": len(tab.positions),
                "samples": int(self.counts.sum()), "g_lo": tab.g_lo, "g_hi": tab.g_hi,
                "error_rms_S": float(np.sqrt(np.mean(np.concatenate(tab.samples) ** 2))),
                "preset": tab.meta.get("preset")}


def _sim():
    """memhost.sim.model.device, memhost.sim.twins.control and memhost.sim.presets, or a clear error while they are missing."""
    try:
        from ..sim import presets  # noqa: F401
        from ..sim.model import device  # noqa: F401
        from ..sim.twins import control  # noqa: F401
    except ImportError as exc:
        raise UsageError("--closed-loop needs the vectorized device model memhost.sim.model.device and "
                         f"the controller twins memhost.sim.twins.control, which are not available ({exc})"
                         ) from None
    return device, control, presets


class ClosedLoopModel:
    """Every device programmed by the twin of the firmware controller (memhost.sim.twins.control) on the
    emulated device model (device-to-device variation on); the error is what the loop leaves
    (achieved - target).

    Levels are placed on ``[g_lo, g_hi]``: by default the preset's range pulled in on each side by
    ``sigmas`` times the device-to-device G-scale spread (so that nearly every device's own window
    contains every level) and then by ``margin`` of the span (switching slows at a window's edge, as
    in memhost.experiments.range); override with ``g_range``. The controller's tolerance is half a
    level of 512 on that range unless ``params['tolerance']`` (S) is given.
    """

    kind = "closed-loop"

    def __init__(self, preset: str, algorithm: str = "adaptive", seed: int = 0,
                 g_range: tuple[float, float] | None = None, sigmas: float = 2.0,
                 margin: float = 0.05,
                 chunk: int = 1 << 20, params: dict[str, Any] | None = None, jobs: int = 1,
                 executor: Any = None):
        device, control, presets = _sim()
        self._device, self._control = device, control
        self.preset = presets.load_preset(preset)
        self.algorithm = algorithm
        self.seed = seed
        self.chunk = int(chunk)
        self.jobs = max(1, int(jobs))
        self.min_chunk = 1 << 16
        # where the chunks run (memhost.cluster): given by the caller (--workers/--scheduler), or
        # opened here for `jobs` local processes when first needed; the caller closes its own
        self._executor: Any = executor
        self._own_executor = executor is None
        self.progress: Any = None       # a memhost.progress.Progress over devices, if set
        self.params = dict(params or {})
        p = self.preset.params
        if g_range is None:
            d = float(p.get("d2d_g_rel", 0.0)) * sigmas
            span = float(p["g_max"]) - float(p["g_min"])
            g_lo = float(p["g_min"]) * (1 + d) + margin * span
            g_hi = float(p["g_max"]) * (1 - d) - margin * span
            if not g_hi > g_lo:
                raise UsageError(f"preset {self.preset.name}: device-to-device G variation leaves "
                                 "no common range; give --g-range LO,HI")
        else:
            g_lo, g_hi = g_range
        if not g_hi > g_lo:
            raise UsageError(f"level range {g_lo:g}..{g_hi:g} S is empty")
        self.g_lo, self.g_hi = float(g_lo), float(g_hi)
        # write-verify tolerance (S): half a level of 512 on this range, at every bit depth (the
        # seed's precision; coarser level sets are programmed with the same loop). An explicit
        # params['tolerance'] wins.
        self.tolerance = 0.5 * (self.g_hi - self.g_lo) / 511
        self.devices_programmed = 0
        self.pulses = 0
        self.reads = 0
        self.not_converged = 0
        self.seconds = 0.0
        self._calls = 0

    @property
    def span(self) -> float:
        return self.g_hi - self.g_lo

    def pieces(self, n: int) -> list[tuple[int, int]]:
        """Chunk boundaries: at most ``chunk`` devices, at least 64 Ki, about n/8 for a big n.
        They depend only on n (never on ``jobs``), so results do not depend on parallelism."""
        size = min(self.chunk, max(self.min_chunk, -(-n // 8)))
        return [(s, min(n, s + size)) for s in range(0, n, size)]

    def draw_many(self, arrays: list[np.ndarray], n_levels: int,
                  rng: np.random.Generator) -> list[np.ndarray]:
        """draw() of several level arrays at once: one seed per array from ``rng`` (in order, as
        draw() after draw() would take them), then every chunk of every array in one map over the
        executor, so many workers have work even when each array is small."""
        params = dict(self.params)
        params.setdefault("tolerance", self.tolerance)
        tasks: list[tuple[Any, ...]] = []
        where: list[tuple[int, int, int]] = []          # (array, start, stop) of each task
        for j, levels in enumerate(arrays):
            seed = int(rng.integers(0, 2**31 - 1))
            flat = levels.reshape(-1)
            for c, (a, b) in enumerate(self.pieces(flat.size)):
                tasks.append((str(self.preset.path), flat[a:b], n_levels, self.g_lo, self.span,
                              seed * 1_000_003 + c, self.algorithm, params))
                where.append((j, a, b))
        t0 = time.perf_counter()
        ex = self.executor()
        results = ex.map(_program_chunk, tasks, [b - a for _, a, b in where], self.progress)
        outs = [np.empty(levels.size, np.float32) for levels in arrays]
        for (j, a, b), (err, pulses, reads, bad) in zip(where, results):
            outs[j][a:b] = err
            self.pulses += pulses
            self.reads += reads
            self.not_converged += bad
        self.seconds += time.perf_counter() - t0
        self.devices_programmed += sum(levels.size for levels in arrays)
        return [o.reshape(levels.shape) for o, levels in zip(outs, arrays)]

    def executor(self) -> Any:
        if self._executor is None:
            from ..cluster import open_executor
            self._executor = open_executor(self.jobs)
        return self._executor

    def close(self) -> None:
        if self._executor is not None and self._own_executor:
            self._executor.close()
            self._executor = None

    def draw(self, levels: np.ndarray, n_levels: int, rng: np.random.Generator) -> np.ndarray:
        return self.draw_many([levels], n_levels, rng)[0]

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "preset": self.preset.name, "algorithm": self.algorithm,
                "g_lo": self.g_lo, "g_hi": self.g_hi, "params": self.params,
                "tolerance_S": self.params.get("tolerance", self.tolerance),
                "devices_programmed": self.devices_programmed, "pulses": self.pulses,
                "reads": self.reads, "not_converged": self.not_converged,
                "program_seconds": round(self.seconds, 3)}


class ScaledModel:
    """Another model's errors times ``factor``: how much precision a network needs (sensitivity)."""

    def __init__(self, inner: Any, factor: float):
        self.inner = inner
        self.factor = float(factor)
        self.kind = inner.kind

    def draw(self, levels: np.ndarray, n_levels: int, rng: np.random.Generator) -> np.ndarray:
        return self.inner.draw(levels, n_levels, rng) * np.float32(self.factor)

    def draw_many(self, arrays: list[np.ndarray], n_levels: int,
                  rng: np.random.Generator) -> list[np.ndarray]:
        many = getattr(self.inner, "draw_many", None)
        got = (many(arrays, n_levels, rng) if many is not None
               else [self.inner.draw(a, n_levels, rng) for a in arrays])
        return [e * np.float32(self.factor) for e in got]

    def describe(self) -> dict[str, Any]:
        return {**self.inner.describe(), "error_scale": self.factor}


def _program_chunk(task: tuple[str, np.ndarray, int, float, float, int, str, dict[str, Any]]
                   ) -> tuple[np.ndarray, int, int, int]:
    """One chunk of fresh devices (its own seed) programmed to ``levels`` of ``n_levels`` on
    [g_lo, g_lo + span]: (normalised errors as float32, pulses, reads, not converged). Runs in a
    worker (process or Dask) or in-line; the result depends on the task only."""
    preset_path, levels, n_levels, g_lo, span, seed, algorithm, params = task
    from ..sim import presets
    from ..sim.model import device
    from ..sim.twins import control
    preset = _preset_cache.get(preset_path) or presets.load_preset(preset_path)
    _preset_cache[preset_path] = preset
    targets = g_lo + levels.astype(np.float64) / (n_levels - 1) * span
    dev = device.DeviceArray(preset, targets.size, seed=seed, d2d=True)
    res = control.program(dev, targets, algorithm=algorithm, **params)
    status = np.asarray(res.status)
    bad = int(np.sum(status != ("converged" if status.dtype.kind in "US" else 0)))
    err = ((np.asarray(res.achieved, np.float64) - targets) / span).astype(np.float32)
    return err, int(np.sum(res.pulses)), int(np.sum(res.reads)), bad


_preset_cache: dict[str, Any] = {}


# --------------------------------------------------------------------------- transfer

def transfer(weights: list[np.ndarray], n_levels: int, model: ErrorModel | None,
             rng: np.random.Generator, mapping: str = "differential", clip: str = "max",
             scales: list[float] | None = None) -> list[np.ndarray]:
    """Each layer quantized to n_levels (at its clip scale, or the given ``scales``), mapped to
    device(s), device errors drawn, read back.

    A model with ``draw_many`` (closed loop) gets every device array of every layer in one call, in
    the order draw() would see them (same numbers), so a cluster has all of a trial's chunks at once.
    """
    if scales is None:
        scales = [layer_scale(w, clip, n_levels, mapping) for w in weights]
    many = getattr(model, "draw_many", None)
    if many is not None:
        codes_all = [encode(w, n_levels, mapping, scale=s) for w, s in zip(weights, scales)]
        flat = many([c for codes in codes_all for c in codes], n_levels, rng)
        out, k = [], 0
        for w, s, codes in zip(weights, scales, codes_all):
            drawn = tuple(flat[k:k + len(codes)])
            k += len(codes)
            out.append(decode(codes, n_levels, s, mapping, drawn, dtype=w.dtype))
        return out
    out = []
    for w, s in zip(weights, scales):
        codes = encode(w, n_levels, mapping, scale=s)
        if model is None or isinstance(model, IdealModel):
            errs = None
        else:
            errs = tuple(model.draw(c, n_levels, rng) for c in codes)
        out.append(decode(codes, n_levels, s, mapping, errs, dtype=w.dtype))
    return out
