"""`memhost bench ann`: accuracy of ANNs whose weights are transferred onto programmed devices
(the seed's Fig. 2), from measured levels (--from-run), a closed-loop programming simulation
(--closed-loop) or quantization alone (--ideal). See docs/ann-benchmark.md.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import UsageError


def _parse_bits(s: str) -> list[int]:
    out: list[int] = []
    try:
        for part in s.split(","):
            if "-" in part:
                a, b = part.split("-")
                out.extend(range(int(a), int(b) + 1))
            elif part.strip():
                out.append(int(part))
    except ValueError:
        raise UsageError(f"--bits {s!r}: use e.g. '1-9' or '2,3,4,9'") from None
    if not out or any(b < 1 or b > 12 for b in out):
        raise UsageError(f"--bits {s!r}: bit depths must be 1..12")
    return sorted(set(out))


def _parse_count(s: str) -> int:
    mult = {"k": 1e3, "m": 1e6, "g": 1e9}
    t = s.strip().lower()
    try:
        if t and t[-1] in mult:
            return int(float(t[:-1]) * mult[t[-1]])
        return int(float(t))
    except ValueError:
        raise UsageError(f"{s!r}: give a count such as 21.8M or 200000") from None


# The built-in models per --dataset: training settings chosen before any quantization was measured.
# mnist-pairs: the same MLP (hidden 256), and a deeper, narrower ResNet with ResNet-34's block layout
# (3, 4, 6) in three stages: the width-48 ResNet-16 would train ~8 min on 28x56 pairs on 2 cores.
BUILTIN: dict[str, dict[str, dict[str, Any]]] = {
    "mnist": {"mlp": {"epochs": 20, "hidden": 256},
              "cnn": {"epochs": 4, "width": 48, "blocks": (2, 2, 2)}},
    "mnist-pairs": {"mlp": {"epochs": 20, "hidden": 256},
                    "cnn": {"epochs": 2, "width": 24, "blocks": (3, 4, 6)}},
}


def register(subparsers: Any) -> None:
    from ..cli import add_json_arg
    from ..options import SEED_MAX, add_number
    p = subparsers.add_parser(
        "ann", help="ANN accuracy vs bits after weight transfer (the seed's Fig. 2)",
        description="Transfer trained weights onto 2^b device levels (b = --bits) with a programming "
                    "error model and report test accuracy (Monte Carlo mean +- std), the ideal "
                    "(quantization only) and the float baseline. Writes ann.json, table.txt and "
                    "accuracy_vs_bits.png to --out.")
    p.add_argument("--model", default=None,
                   help="comma list of mlp (784-256-10, numpy), cnn (ResNet-style, torch) or a torch "
                        "checkpoint path (with --data). Default: mlp,cnn (mlp if torch is missing)")
    p.add_argument("--dataset", default="mnist",
                   help="task of the built-in models: mnist (10 classes, 5,000 real digits) or "
                        "mnist-pairs (DERIVED from the same digits: two side by side, 100 classes; "
                        "harder). Default mnist")
    em = p.add_mutually_exclusive_group()
    em.add_argument("--from-run", metavar="RUN", help="empirical error model from a level run folder")
    em.add_argument("--closed-loop", action="store_true",
                    help="program every device with the controller twin on the vectorized model")
    em.add_argument("--ideal", action="store_true", help="quantization only (the default)")
    p.add_argument("--preset", default="tio2x-seed",
                   help="device preset for --closed-loop: a name or a .toml path (default tio2x-seed)")
    p.add_argument("--algorithm", default="adaptive", choices=("adaptive", "ispp"),
                   help="write-verify controller for --closed-loop (default adaptive)")
    p.add_argument("--algo-param", action="append", default=[], metavar="NAME=VALUE",
                   help="extra controller parameter for --closed-loop (repeatable), e.g. tolerance=1e-7")
    p.add_argument("--g-range", metavar="LO,HI", help="level range in S for --closed-loop "
                   "(default: the preset's range less 2 sigma of device-to-device G variation)")
    p.add_argument("--direction", default=None, choices=("up", "down", "shuffled"),
                   help="--from-run: only rows of this direction (default: all rows)")
    add_number(p, "--error-scale", kind=float, default=1.0, metavar="K", lo=0, hi=1e6, unit="x",
               help="multiply every programming error by K (sensitivity: a K-times less precise "
                    "device)")
    p.add_argument("--mapping", default="differential", choices=("differential", "offset"),
                   help="weights to conductances: differential (a device pair per weight) or offset "
                        "(one device around a mid-range reference) (default differential)")
    p.add_argument("--clip", default="max", metavar="HOW",
                   help="per-layer weight scale: max (default: the largest |w|), pNN (the NN-th "
                        "percentile of |w|, e.g. p99.9) or mse (the scale minimising the layer's "
                        "quantization MSE at each bit depth); weights beyond it are clipped")
    p.add_argument("--fold-bn", action="store_true",
                   help="torch models: fold every BatchNorm into the Conv/Linear right before it "
                        "(w' = w * gamma / sqrt(var + eps) per output channel, bias absorbed) before "
                        "quantization, as analog hardware often does; BNs that do not directly follow "
                        "a Conv/Linear stay digital and are listed. Default: BN stays digital")
    p.add_argument("--bits", default="1-9", help="bit depths, e.g. 1-9 (default) or 3,9")
    add_number(p, "--trials", default=10, lo=1, hi=100_000, unit="trials",
               help="Monte Carlo trials per bit depth")
    add_number(p, "--seed", default=0, lo=0, hi=SEED_MAX, help="seed of the trials and of training")
    p.add_argument("--weights", metavar="N", default=None,
                   help="closed-loop transfer speed bench: program the devices of N Gaussian weights "
                        "(e.g. 21.8M, ResNet-34 size) at the largest --bits, report time and pulses/s")
    add_number(p, "--chunk", default=1 << 20, lo=1, hi=1 << 30, unit="devices",
               help="devices per controller call")
    add_number(p, "--torch-threads", default=1, lo=1, hi=1024, unit="threads",
               help="torch CPU threads (on a shared 2-core machine two threads ran 8x slower than "
                    "one as soon as another process was busy; try 2 when idle)")
    p.add_argument("--cache-dir", default=None, help="trained-model cache (default ~/.cache/memhost/ann)")
    p.add_argument("--retrain", action="store_true", help="ignore the cache and train again")
    add_number(p, "--epochs", default=None, lo=1, hi=10_000, unit="epochs",
               default_text="MLP 20, CNN 4; mnist-pairs: MLP 20, CNN 2",
               help="training epochs of the built-in models")
    p.add_argument("--out", default=None, help="output folder (default runs/<UTC time>_ann)")
    p.add_argument("--no-plot", action="store_true", help="do not write accuracy_vs_bits.png")
    g = p.add_argument_group("your own model (--model CHECKPOINT --data FOLDER)")
    g.add_argument("--data", help="test images in ImageFolder layout: FOLDER/<class>/<image>")
    g.add_argument("--arch", help="for a state_dict checkpoint: module:callable building the model, "
                                  "e.g. torchvision.models:resnet34")
    g.add_argument("--arch-kwargs", default="{}", help='JSON keyword arguments, e.g. {"num_classes": 101} (default: none)')
    g.add_argument("--channels", type=int, default=3, choices=(1, 3),
                   help="image channels: 1 (grey) or 3 (RGB) (default 3)")
    add_number(g, "--resize", default=None, lo=1, hi=65535, unit="pixels", default_text="no resize",
               help="scale the shorter side to N pixels")
    add_number(g, "--crop", default=None, lo=1, hi=65535, unit="pixels", default_text="no crop",
               help="centre crop N x N")
    g.add_argument("--normalize", default="none", help="input normalisation: none, imagenet, or per-channel means/stds "
                        "m1,m2,m3/s1,s2,s3 (default none)")
    add_number(g, "--limit", default=None, lo=1, hi=1 << 31, unit="images", default_text="all",
               help="at most N test images (spread over classes)")
    add_number(g, "--batch", default=64, lo=1, hi=1 << 16, unit="images",
               help="evaluation batch size")
    from ..cluster import add_cluster_args
    add_cluster_args(p, jobs_default=os.cpu_count() or 1)   # where --closed-loop chunks run
    add_json_arg(p)
    p.set_defaults(func=run)


def _algo_params(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for it in items:
        if "=" not in it:
            raise UsageError(f"--algo-param {it!r}: use NAME=VALUE")
        k, v = it.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def _error_model(args: Any) -> Any:
    from ..ann import transfer as tr
    if args.from_run:
        return tr.EmpiricalModel.from_run(args.from_run, args.direction)
    if args.closed_loop or args.weights:
        g_range = None
        if args.g_range:
            try:
                lo, hi = (float(v) for v in args.g_range.split(","))
            except ValueError:
                raise UsageError("--g-range: give LO,HI in siemens, e.g. 1.04e-3,1.14e-3") from None
            g_range = (lo, hi)
        from ..cluster import executor_from_args
        ex = executor_from_args(args)
        _OPEN.append(ex)
        return tr.ClosedLoopModel(args.preset, args.algorithm, seed=args.seed, g_range=g_range,
                                  chunk=args.chunk, params=_algo_params(args.algo_param),
                                  executor=ex)
    return tr.IdealModel()


def _transfer_bench(args: Any, model: Any, bits: list[int], log: Any) -> dict[str, Any]:
    import numpy as np
    from ..ann.transfer import encode
    n_w = _parse_count(args.weights)
    b = max(bits)
    n = 2 ** b
    rng = np.random.default_rng(args.seed)
    w = rng.standard_normal(n_w, dtype=np.float32)
    from ..progress import Progress
    ex = model.executor()
    log(f"closed-loop transfer: {n_w:,} weights ({args.mapping}), {b} bits ({n} levels), "
        f"{args.algorithm} on {model.preset.name}, chunks of up to {args.chunk:,} devices, "
        f"{ex.workers} worker(s) ({ex.kind}) ...")
    t0 = time.perf_counter()
    codes = encode(w, n, args.mapping)
    del w
    with Progress(sum(c.size for c in codes), "devices", enabled=False if args.json else None) as bar:
        model.progress = bar
        errs = model.draw_many(list(codes), n, rng)
        model.progress = None
    wall = time.perf_counter() - t0
    e = np.concatenate([x.reshape(-1) for x in errs]) * (n - 1)  # in LSB
    devices = model.devices_programmed
    res = {"weights": n_w, "devices": devices, "bits": b, "levels": n, "wall_s": round(wall, 3),
           "program_s": round(model.seconds, 3), "pulses": model.pulses, "reads": model.reads,
           "device_pulses_per_s": model.pulses / wall, "devices_per_s": devices / wall,
           "weights_per_s": n_w / wall, "pulses_per_device": model.pulses / max(devices, 1),
           "not_converged": model.not_converged, "error_rms_lsb": float(np.sqrt(np.mean(e ** 2))),
           "within_half_lsb": float(np.mean(np.abs(e) <= 0.5)),
           "error_median_abs_lsb": float(np.median(np.abs(e))),
           "error_p999_abs_lsb": float(np.quantile(np.abs(e), 0.999)),
           "error_model": model.describe(), "executor": ex.describe(),
           "loadavg": list(os.getloadavg())}
    return res


def run(args: Any) -> int | None:
    try:
        return _run(args)
    finally:
        _close_models()


_OPEN: list[Any] = []


def _close_models() -> None:
    while _OPEN:
        _OPEN.pop().close()


def _run(args: Any) -> int | None:
    from ..ann import datasets, evaluate, models

    quiet = bool(args.json)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr if quiet else sys.stdout, flush=True)

    bits = _parse_bits(args.bits)
    from ..ann.transfer import parse_clip
    parse_clip(args.clip)
    if args.trials < 1:
        raise UsageError("--trials must be at least 1")
    if (args.workers is not None or args.scheduler) and not (args.closed_loop or args.weights):
        raise UsageError("--workers/--scheduler run the closed-loop programming: add --closed-loop "
                         "(--ideal and --from-run sweeps run in this process)")
    if args.weights:
        if args.from_run or args.ideal:
            raise UsageError("--weights is the closed-loop transfer bench: use it with --closed-loop")
        model = _error_model(args)
        res = _transfer_bench(args, model, bits, log)
        if args.json:
            from ..cli import print_json
            print_json(res)
        else:
            print(f"closed-loop transfer of {res['weights']:,} weights = {res['devices']:,} devices: "
                  f"{res['wall_s']:.1f} s wall, {res['pulses']:,} pulses, "
                  f"{res['device_pulses_per_s'] / 1e6:.2f} M device-pulses/s, "
                  f"{res['weights_per_s'] / 1e6:.2f} M weights/s, "
                  f"{res['pulses_per_device']:.1f} pulses/device, error rms {res['error_rms_lsb']:.3f} "
                  f"LSB (median |e| {res['error_median_abs_lsb']:.3f}), "
                  f"{res['within_half_lsb'] * 100:.1f} % within 1/2 LSB, "
                  f"{res['not_converged']:,} not converged")
        return 0

    if args.model is None:
        try:
            import torch  # noqa: F401
            names = ["mlp", "cnn"]
        except ImportError:
            names = ["mlp"]
            log("torch is not installed: running the MLP only (pip install 'memhost[ann]' for the CNN)")
    else:
        names = [s.strip() for s in args.model.split(",") if s.strip()]
    if any(n != "mlp" for n in names):
        try:
            import torch
            torch.set_num_threads(max(1, args.torch_threads))
        except ImportError:
            pass  # load_cnn / user_net say how to install it
    error_model = _error_model(args)
    if args.error_scale != 1.0:
        if error_model.kind == "ideal":
            raise UsageError("--error-scale needs an error model (--from-run or --closed-loop)")
        from ..ann.transfer import ScaledModel
        error_model = ScaledModel(error_model, args.error_scale)
    if args.dataset not in BUILTIN:
        raise UsageError(f"--dataset {args.dataset!r}: choose {' or '.join(BUILTIN)}")
    if args.epochs is not None and args.epochs < 1:
        raise UsageError("--epochs must be at least 1")
    nets: list[Any] = []
    builtin_data = None
    for name in names:
        if name in ("mlp", "cnn"):
            if builtin_data is None:
                if args.dataset == "mnist-pairs":
                    builtin_data = datasets.load_mnist_pairs(seed=0)
                    log(f"dataset mnist-pairs: {builtin_data.derived}")
                else:
                    builtin_data = datasets.load_mnist_5k(seed=0)
            cfg = dict(BUILTIN[args.dataset][name])
            if args.epochs:
                cfg["epochs"] = args.epochs
            if name == "mlp":
                nets.append(models.load_mlp(builtin_data, args.cache_dir, args.retrain, args.seed,
                                            log=log, **cfg))
            else:
                nets.append(models.load_cnn(builtin_data, args.cache_dir, args.retrain, args.seed,
                                            log=log, **cfg))
        else:
            if not args.data:
                raise UsageError(f"--model {name}: give the test images with --data FOLDER "
                                 "(ImageFolder layout)")
            try:
                kw = json.loads(args.arch_kwargs)
            except json.JSONDecodeError as exc:
                raise UsageError(f"--arch-kwargs: not JSON: {exc}") from None
            data = datasets.load_image_folder(args.data, args.channels, args.resize, args.crop,
                                              args.normalize, args.limit)
            nets.append(models.user_net(name, data, args.arch, kw, args.batch))
    if args.fold_bn:
        for i, net in enumerate(nets):
            if not isinstance(net, models.TorchNet):
                log(f"--fold-bn: {net.name} has no BatchNorm (nothing to fold)")
                continue
            nets[i] = net = models.fold_net(net)
            fb = net.info["fold_bn"]
            log(f"--fold-bn: {net.name}: {fb['folded']} BatchNorm folded into the preceding "
                f"Conv/Linear, {len(fb['skipped'])} left digital"
                + "".join(f"\n  not folded: {n} ({why})" for n, why in fb["skipped"]))
    results = []
    for net in nets:
        log(f"{net.title}: {net.n_params:,} parameters, float accuracy on {len(net.data.y_test)} "
            f"test images ...")
        r = evaluate.sweep(net, bits, error_model, args.trials, args.seed, args.mapping,
                           log=None if quiet else log, clip=args.clip)
        results.append(r)
        log(f"  {net.name}: sweep of {len(bits)} bit depths x {args.trials} trials "
            f"({error_model.kind}): {r['sweep_s']:.2f} s wall"
            + (f" (training {r['model_info'].get('train_s')} s)"
               if not r['model_info'].get('cached', True) else ""))
    result = {"error_model": error_model.describe(), "mapping": args.mapping, "clip": args.clip,
              "fold_bn": bool(args.fold_bn), "trials": args.trials,
              "seed": args.seed, "bits": bits, "models": results, "argv": sys.argv}
    if builtin_data is not None:
        y_train = builtin_data.y_train
        result["dataset"] = {"name": builtin_data.name, "fingerprint": builtin_data.fingerprint,
                             "n_train": int(len(y_train)) if y_train is not None else 0,
                             "n_test": int(len(builtin_data.y_test)),
                             "classes": len(builtin_data.classes), "derived": builtin_data.derived}
    if args.out:
        out = Path(args.out)
    else:
        from ..runlog import new_run_path
        out = new_run_path("runs", "ann")
    evaluate.write_outputs(result, out, make_plot=not args.no_plot)
    if args.json:
        from ..cli import print_json
        print_json(result)
    else:
        print(evaluate.format_table(result))
        for r in results:
            three = next((x for x in r["bits"] if x["bits"] == 3), None)
            if three is not None:
                acc = three.get("mean", three["ideal"])
                drop = (r["float"] - acc) * 100
                print(f"{r['model']}: 3 bits {acc * 100:.2f} % vs float {r['float'] * 100:.2f} %: "
                      f"{'drop' if drop >= 0 else 'gain'} of {abs(drop):.2f} points "
                      f"({'within' if drop <= 1 else 'NOT within'} 1 point of float)")
            fewest = evaluate.fewest_bits(r, points=1.0)
            print(f"{r['model']}: fewest swept bits within 1 point of float (ideal): "
                  + (f"{fewest} ({2 ** fewest} levels)" if fewest else "none"))
            if any("mean" in x for x in r["bits"]):
                fm = evaluate.fewest_bits(r, points=1.0, key="mean")
                print(f"{r['model']}: fewest swept bits within 1 point of float ({error_model.kind}, "
                      "mean): " + (f"{fm} ({2 ** fm} levels)" if fm else "none"))
        print(f"wrote {out}")
    return 0
