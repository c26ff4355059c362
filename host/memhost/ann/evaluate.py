"""The accuracy-against-bits sweep (the seed's Fig. 2) and its outputs (table, JSON, plot)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .transfer import ErrorModel, IdealModel, layer_scale, transfer


def sweep(net: Any, bits: Sequence[int], model: ErrorModel | None, trials: int = 10, seed: int = 0,
          mapping: str = "differential", log: Callable[[str], None] | None = None,
          clip: str = "max") -> dict[str, Any]:
    """Float accuracy, then per bit depth: the ideal (quantized) accuracy and, with an error model,
    ``trials`` Monte Carlo transfers -> mean and std. Trial t of b bits uses the generator seeded
    with (seed, b, t), so any single trial can be reproduced. Each layer's scale follows ``clip``
    (see transfer.layer_scale), computed once per bit depth; each row records how far the scales sit
    below max|w| and the fraction of weights clipped."""
    t0 = time.perf_counter()
    w_float = net.weights()
    acc_float = net.accuracy(None)
    rows = []
    ideal = IdealModel()
    n_weights = sum(w.size for w in w_float)
    for b in bits:
        n = 2 ** b
        scales = [layer_scale(w, clip, n, mapping) for w in w_float]
        fracs = [s / layer_scale(w) for s, w in zip(scales, w_float)]
        clipped = sum(int(np.count_nonzero(np.abs(w) > s)) for s, w in zip(scales, w_float))
        row: dict[str, Any] = {"bits": int(b), "levels": n,
                               "ideal": net.accuracy(transfer(w_float, n, ideal,
                                                              np.random.default_rng(0), mapping,
                                                              scales=scales)),
                               "scale_over_max_mean": float(np.mean(fracs)),
                               "scale_over_max_min": float(np.min(fracs)),
                               "clipped_fraction": clipped / max(n_weights, 1)}
        if model is not None and not isinstance(model, IdealModel):
            accs = []
            for t in range(trials):
                rng = np.random.default_rng([seed, b, t])
                accs.append(net.accuracy(transfer(w_float, n, model, rng, mapping,
                                                  scales=scales)))
            row.update(mean=float(np.mean(accs)), std=float(np.std(accs, ddof=1)) if trials > 1
                       else 0.0, trials=accs)
        rows.append(row)
        if log:
            extra = f"  {row['mean']:.4f} +- {row['std']:.4f}" if "mean" in row else ""
            log(f"  {net.name}: {b} bits ideal {row['ideal']:.4f}{extra}")
    return {"model": net.name, "title": net.title, "params": net.n_params,
            "weights_transferred": int(sum(w.size for w in w_float)),
            "layers_transferred": len(w_float), "n_test": int(len(net.data.y_test)),
            "float": acc_float, "bits": rows, "sweep_s": round(time.perf_counter() - t0, 3),
            "model_info": net.info}


def fewest_bits(model_result: dict[str, Any], points: float = 1.0, key: str = "ideal") -> int | None:
    """The smallest swept bit depth from which on every swept depth's accuracy (``key``: 'ideal' or
    'mean') stays within ``points`` percentage points of float; None if not even the largest does."""
    rows = sorted(model_result["bits"], key=lambda r: r["bits"])
    fl = model_result["float"]
    best = None
    for r in reversed(rows):
        if key not in r or (fl - r[key]) * 100 > points:
            break
        best = r["bits"]
    return best


def format_table(result: dict[str, Any]) -> str:
    em = result.get("error_model", {}).get("kind", "ideal")
    ds = result.get("dataset") or {}
    lines = [f"# dataset {ds['name']}: {ds['derived']}"] if ds.get("derived") else []
    if result.get("fold_bn"):
        lines.append("# BatchNorm folded into the preceding Conv/Linear weights before quantization")
    if result.get("clip", "max") != "max":
        lines.append(f"# per-layer scale clipped: {result['clip']} (weights beyond it set to the end "
                     "level)")
    lines += [f"{'model':<8} {'bits':>4} {'levels':>6} {'ideal':>8} "
             f"{em + ' (mean +- std)':>26} {'float':>8}"]
    for m in result["models"]:
        for r in m["bits"]:
            em_s = f"{r['mean'] * 100:8.2f} +- {r['std'] * 100:5.2f} %" if "mean" in r else "-"
            lines.append(f"{m['model']:<8} {r['bits']:>4} {r['levels']:>6} "
                         f"{r['ideal'] * 100:7.2f}% {em_s:>26} {m['float'] * 100:7.2f}%")
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = result["models"]
    em = result.get("error_model", {})
    label = {"empirical": "measured levels", "closed-loop": "closed-loop transfer"}.get(
        em.get("kind", ""), em.get("kind", ""))
    fig, axes = plt.subplots(1, len(models), figsize=(max(6.0, 4.6 * len(models)), 3.9), squeeze=False)
    for ax, m, tag in zip(axes[0], models, "abcdefgh"):
        b = [r["bits"] for r in m["bits"]]
        ax.plot(b, [r["ideal"] * 100 for r in m["bits"]], "o--", color="0.35", label="Ideal")
        if any("mean" in r for r in m["bits"]):
            ax.errorbar(b, [r["mean"] * 100 for r in m["bits"]],
                        yerr=[r["std"] * 100 for r in m["bits"]], fmt="s-", color="C3",
                        capsize=3, label=f"with {label}")
        ax.axhline(m["float"] * 100, color="C0", ls=":", label=f"float {m['float'] * 100:.1f} %")
        ax.set_xlabel("bits per device (levels = 2^bits)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"({tag}) {m['title']}", fontsize=9)
        ax.set_xticks(b)
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    sub = ", ".join(str(v) for v in (Path(em["run"]).name if em.get("run") else None,
                                        em.get("preset"), em.get("algorithm"),
                                        f"errors x{em['error_scale']:g}" if "error_scale" in em
                                        else None) if v)
    if result.get("clip", "max") != "max":
        sub = ", ".join(x for x in (sub, f"clip {result['clip']}") if x)
    fig.suptitle(f"Accuracy after weight transfer ({result['mapping']} mapping"
                 f"{', ' + sub if sub else ''})", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def write_outputs(result: dict[str, Any], out: Path, make_plot: bool = True) -> dict[str, str]:
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": str(out / "ann.json"), "table": str(out / "table.txt")}
    if make_plot and result["models"]:
        files["plot"] = str(plot(result, out / "accuracy_vs_bits.png"))
    result["files"] = files
    Path(files["table"]).write_text(format_table(result) + "\n")
    Path(files["json"]).write_text(json.dumps(result, indent=1, default=_default) + "\n")
    return files


def _default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
