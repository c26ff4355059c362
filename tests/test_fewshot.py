"""A new device type from few traced devices (memhost.fewshot): the family prior, the fit shrunk
towards it, `memhost learn --family/--prior` and its errors, `memhost bench fewshot`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


def _memhost(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "memhost", *args], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def prior() -> object:
    """The prior of 12 family types (seed 11), 32 devices each: no type the tests evaluate."""
    from memhost.bench.learned import explore_traces
    from memhost.fewshot import family_prior
    from memhost.sim.model.family import draw_family
    fam = draw_family(12, seed=11)
    return family_prior([explore_traces(m.preset, 32, 60, k, m.d2d, settle_s=0.3, alternate=True)
                         for k, m in enumerate(fam)], [m.name for m in fam])


def test_few_devices_with_the_prior_come_closer_to_the_64_device_fit(prior: object) -> None:
    """On four types the prior never saw (seed 777), 6 draws of 2 and of 4 traced devices each:
    the prior fit succeeds on more draws than the plain one (which needs 16 responses per
    polarity), and where both fit its predictions are closer to those of the plain fit on 64
    other devices of the type; with those 64 devices it is the plain fit (within 0.1 octave: its
    range is that of every reading, the plain fit's that of the readings before the pulses)."""
    from memhost.bench.fewshot import gap
    from memhost.bench.learned import explore_traces
    from memhost.errors import UsageError
    from memhost.fewshot import fit_fewshot
    from memhost.learn import fit
    from memhost.sim.model.family import draw_family
    fitted = {"plain": 0, "prior": 0}
    both: dict[str, list[float]] = {"plain": [], "prior": []}
    for m in draw_family(4, seed=777, prefix="val"):
        ref_rec = explore_traces(m.preset, 64, 60, 500, m.d2d, settle_s=0.3, alternate=True)
        ref = fit([ref_rec], holdout=0.0, form="threshold")
        many = fit_fewshot([ref_rec], prior)
        assert gap(many, ref, ref_rec) < 0.1, m.name    # (64-device fits of other draws: 0.1-0.2)
        for a, b in ((many.set, ref.set), (many.reset, ref.reset)):
            assert abs(a.vt - b.vt) <= 0.03 and abs(a.ca - b.ca) <= 0.1, m.name
        for n in (2, 4):
            for d in range(6):
                rec = explore_traces(m.preset, n, 60, 1000 + 10 * d + n, m.d2d, settle_s=0.3,
                                     alternate=True)
                g = {}
                for kind in ("plain", "prior"):
                    try:
                        model = fit([rec], holdout=0.0, form="threshold") if kind == "plain" \
                            else fit_fewshot([rec], prior)
                    except UsageError:
                        continue
                    fitted[kind] += 1
                    g[kind] = gap(model, ref, ref_rec)
                if len(g) == 2:
                    for kind in g:
                        both[kind].append(g[kind])
    assert fitted["prior"] > fitted["plain"] + 4, fitted
    assert len(both["plain"]) >= 20
    assert np.mean(both["prior"]) < np.mean(both["plain"]), both


def test_one_device_fits_only_with_the_prior_and_the_firmware_loads_it(prior: object,
                                                                         tmp_path: Path) -> None:
    """A single traced device: the plain fit refuses (too few responses), the prior fit gives a
    threshold-form model file the firmware's CONFIG export takes, its shape near the family's
    where the device says little."""
    from memhost.bench.learned import explore_traces
    from memhost.errors import UsageError
    from memhost.fewshot import fit_fewshot
    from memhost.learn import fit, load_model
    rec = explore_traces("tio2x-seed", 1, 60, 7, settle_s=0.3, alternate=True)
    with pytest.raises(UsageError, match="need 16"):
        fit([rec], holdout=0.0, form="threshold")
    m = fit_fewshot([rec], prior, ["one device"])
    path = m.save(tmp_path / "one.toml")
    back = load_model(path)
    assert back.steered and back.far == 0 and back.caution == 0.0
    cfg = back.config()
    assert cfg["lm_set_ca"] == pytest.approx(m.set.ca) and cfg["lm_reset_vt"] == pytest.approx(m.reset.vt)
    for name in ("set", "reset"):
        pf = getattr(back, name)
        # one device has no spread of device offsets: the family's enters (the controller's gain)
        assert 0 < pf.dev_var <= 2 * max(prior.var[name][0], 0.01) and pf.res_var > 0
        assert cfg[f"lm_{name}_dvar"] == pytest.approx(pf.dev_var)
        for k in ("vt", "ca", "pw"):      # within 3 of the family's spreads
            assert abs(getattr(pf, k) - prior.mean[name][k]) <= 3 * prior.sd[name][k], (name, k)


def test_prior_file_round_trip_and_bad_files(prior: object, tmp_path: Path) -> None:
    from memhost.fewshot import load_prior
    from memhost.learn import ModelError
    p = prior.save(tmp_path / "prior.toml")
    back = load_prior(p)
    assert back.mean == prior.mean and back.sd == prior.sd and back.meta["types"] == 12
    text = p.read_text()
    for bad, why in ((text.replace("memhost-threshold-prior-1", "memhost-learned-1"),
                      "a model file, not a family prior"),
                     (text.replace("[reset]", "[other]"), r"no \[reset\] section"),
                     (text.replace("ca = [", "ca = [-", 1), r"\[set\] ca must be"),
                     ("not toml [", "not a readable prior")):
        f = tmp_path / "bad.toml"
        f.write_text(bad)
        with pytest.raises(ModelError, match=why):
            load_prior(f)
    with pytest.raises(ModelError, match="no such file"):
        load_prior(tmp_path / "missing.toml")


def _trace_run(folder: Path, preset: object, n: int, seed: int, d2d: bool = True) -> str:
    from memhost import traces
    from memhost.bench.learned import explore_traces
    folder.mkdir(parents=True)
    with traces.TraceWriter(folder / traces.TRACES) as w:
        w.append(explore_traces(preset, n, 60, seed, d2d, settle_s=0.3, alternate=True))
    return str(folder)


def test_learn_family_and_prior_commands_and_their_errors(tmp_path: Path) -> None:
    from memhost.learn import load_model
    from memhost.sim.model.family import draw_family
    fam = [_trace_run(tmp_path / f"type{k}", m.preset, 16, k, m.d2d)
           for k, m in enumerate(draw_family(4, seed=11))]
    new = _trace_run(tmp_path / "new", "gaox", 2, 99)
    pri = tmp_path / "prior.toml"
    r = _memhost("learn", "--form", "threshold", "--family", *fam, "--out", str(pri), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["types"] == 4
    out = tmp_path / "gaox.toml"
    r = _memhost("learn", "--form", "threshold", "--prior", str(pri), new, "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "shrunk towards the family prior" in r.stdout and "log2(v -" in r.stdout
    m = load_model(out)
    assert m.steered and m.meta["train_devices"] == 2 and m.meta["prior_types"] == 4
    assert m.meta["holdout_devices"] == 0        # with --prior every device is fitted by default
    # the prior memhost ships (24 emulated family types): by name, the same numbers as the results
    # page's bench fewshot prior it was copied from
    from memhost.fewshot import load_prior, shipped_prior
    shipped = load_prior("family")
    assert shipped.meta["types"] == 24 and "EMULATED" in shipped_prior().read_text()
    page = load_prior(Path(__file__).parents[1] / "docs" / "results" / "fewshot-prior.toml")
    assert (shipped.mean, shipped.sd, shipped.resid_sd) == (page.mean, page.sd, page.resid_sd)
    r = _memhost("learn", "--form", "threshold", "--prior", "family", new, "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert load_model(out).meta["prior_types"] == 24
    # bad input: one line that says what to do, exit 2, nothing written
    x = str(tmp_path / "x.toml")
    for args, why in (
            (["--prior", str(pri), new, "--out", x], "add --form threshold"),
            (["--form", "threshold", "--prior", str(tmp_path / "nope.toml"), new, "--out", x],
             "no such file: make one with"),
            (["--form", "threshold", "--prior", str(out), new, "--out", x],
             "a model file, not a family prior"),
            (["--form", "threshold", "--family", *fam[:2], "--out", x], "at least 3 device types"),
            (["--form", "threshold", "--family", "--prior", str(pri), *fam, "--out", x],
             "give one of them"),
            (["--form", "threshold", "--prior", str(pri), "--fit-ends", new, "--out", x],
             "does not combine with --fit-ends")):
        r = _memhost("learn", *args)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
        assert why in r.stderr and "Traceback" not in r.stderr, (why, r.stderr)
    assert not Path(x).exists()


def test_prior_fit_refuses_a_polarity_without_responses(prior: object) -> None:
    """Traces of one polarity only: one line naming the polarity and what to trace."""
    from memhost.bench.learned import explore_traces
    from memhost.errors import UsageError
    from memhost.fewshot import fit_fewshot
    rec = explore_traces("tio2x-seed", 4, 60, 3, settle_s=0.3, alternate=True)
    with pytest.raises(UsageError, match="RESET responses .* trace more pulses"):
        fit_fewshot([rec[rec["polarity"] == 0]], prior)


def test_bench_fewshot_prints_the_learning_curve() -> None:
    r = _memhost("bench", "fewshot", "--train-types", "4", "--train-devices", "64", "--eval-types",
                 "1", "--devices", "50", "--draws", "2", "--sizes", "2,8x30", "--char-draws", "1",
                 "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert [row["device"] for row in out["rows"]] == ["tio2x-seed", "gaox", "unseen-000"]
    for row in out["rows"]:
        assert row["baseline"] == ("adaptive" if row["device"].startswith("unseen")
                                   else "adaptive+prior")
        assert [c["label"] for c in row["curve"]] == ["2", "8x30", "characterize"]
        assert [c["pulses_per_device"] for c in row["curve"][:2]] == [60, 30]
        for c in row["curve"]:
            for kind in ("plain", "prior"):
                s = c[kind]
                n = 1 if c["label"] == "characterize" else 2
                assert s["draws"] == n and 0 <= s["fitted"] <= n and s["pulses_mean"] > 0
    for bad in ("0,2", "2xq", ","):
        r = _memhost("bench", "fewshot", "--sizes", bad)
        assert r.returncode == 2 and "--sizes" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1


def test_a_characterize_run_leaves_traces_the_prior_fit_takes(prior: object, tmp_path: Path) -> None:
    """`memhost characterize` on the emulated board writes its pulses to traces.bin (the sweep's
    and the relaxation trains' first readings, settled before each pulse): one run of a type the
    prior never saw gives a threshold-form model whose thresholds lie near gaox's own fit."""
    from memhost.bench.fewshot import characterize_records
    from memhost.bench.learned import explore_traces
    from memhost.fewshot import fit_fewshot
    from memhost.learn import _along, fit
    rec = characterize_records("gaox", 11, tmp_path)
    assert 40 <= len(rec) <= 200 and set(np.unique(rec["polarity"])) == {0, 1}
    runs = list(tmp_path.glob("*characterize*"))
    assert len(runs) == 1 and (runs[0] / "traces.bin").stat().st_size > 0
    assert np.all(rec["tol_s"] > 0) and np.all(rec["width_s"] > 0)
    assert (_along(rec) >= 4 * rec["tol_s"]).sum() >= 20     # responses the fit can use
    m = fit_fewshot([rec], prior, ["characterize"])
    ref = fit([explore_traces("gaox", 64, 60, 500, settle_s=0.3, alternate=True)], holdout=0.0,
              form="threshold")
    assert abs(m.set.vt - ref.set.vt) < 0.3 and abs(m.reset.vt - ref.reset.vt) < 0.3
