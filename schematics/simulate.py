#!/usr/bin/env python3
"""Run the front-end SPICE decks with ngspice (batch mode) and measure what the firmware relies on.

    python schematics/simulate.py        # prints amplitude error, edges, read gain, settling

Used by tests/test_schematics.py. The firmware constants come from
firmware/micropython/memfw/hal/config.py (parsed by memhost.fwconst: it imports micropython.const).
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SPICE = HERE / "spice"
FIRMWARE = HERE.parent / "firmware" / "micropython"
CONFIG = FIRMWARE / "memfw" / "hal" / "config.py"
for _p in (str(FIRMWARE), str(HERE.parent / "hil"), str(HERE.parent / "host")):   # the front-end model and the board's window rule
    if _p not in sys.path:
        sys.path.insert(0, _p)

T_GATE = 1e-6       # gate rises at 1 us in pulse_path.cir


# ---- firmware constants ----------------------------------------------------------------------
def load_config(path: Path = CONFIG) -> dict:
    """The constants of config.py, evaluated without importing it (memhost.fwconst, the one parser
    of the firmware's constants)."""
    from memhost.fwconst import module_constants
    return module_constants(path)


# ---- firmware arithmetic (what the HAL computes) ---------------------------------------------
def dac_code_for_amplitude(v: float, cfg: dict) -> int:
    full = 1 << cfg["FE_DAC_BITS"]
    code = round((v / cfg["FE_PULSE_GAIN"] + cfg["FE_PULSE_VMID"]) * full / cfg["FE_DAC_VREF"])
    return max(0, min(full - 1, code))


def dac_code_for_read(read_v: float, cfg: dict) -> int:
    full = 1 << cfg["FE_DAC_BITS"]
    code = round(read_v / cfg["FE_READ_BIAS_GAIN"] * full / cfg["FE_DAC_VREF"])
    return max(0, min(full - 1, code))


def dac_volts(code: int, cfg: dict) -> float:
    """MCP4922, gain 1x: V = VREF * code / 2**bits."""
    return cfg["FE_DAC_VREF"] * code / (1 << cfg["FE_DAC_BITS"])


def adc_counts(v: float, cfg: dict) -> int:
    """AD7685 transfer: code c for c - 1/2 <= v / LSB < c + 1/2 (first transition at 1/2 LSB)."""
    full = 1 << cfg["FE_ADC_BITS"]
    return max(0, min(full - 1, int(math.floor(v / cfg["FE_ADC_VREF"] * full + 0.5))))


def offset_volts(code: int, cfg: dict) -> float:
    """DAC8551: V = VREF * code / 2**16."""
    return cfg["FE_DAC_VREF"] * code / (1 << cfg["FE_OFFSET_BITS"])


def offset_current(code: int, cfg: dict) -> float:
    return offset_volts(code, cfg) / cfg["FE_OFFSET_R_OHM"]


def window_codes(g_lo: float, g_hi: float, read_v: float, cfg: dict):
    """(bias code, offset code) the firmware sets for a window, or its refusal (str)."""
    from memfw.hal.window import centre
    full = 1 << cfg["FE_DAC_BITS"]
    b_per_v = full / (cfg["FE_DAC_VREF"] * cfg["FE_READ_BIAS_GAIN"])
    i_per_o = offset_current(1, cfg)
    return centre(g_lo, g_hi, read_v, b_per_v, full - 1, i_per_o, (1 << cfg["FE_OFFSET_BITS"]) - 1,
                  cfg["FE_ADC_VREF"] / cfg["FE_TIA_R_OHM"])


def conductance_from_counts(counts: int, read_v: float, cfg: dict, offset_code: int = 0) -> float:
    return (counts * cfg["FE_G_PER_COUNT_V"] + offset_current(offset_code, cfg)) / read_v


# ---- ngspice ---------------------------------------------------------------------------------
def ngspice() -> str | None:
    return shutil.which("ngspice")


def _run(deck: str, control: str) -> str:
    exe = ngspice()
    if exe is None:
        raise RuntimeError("ngspice not found (apt-get install ngspice, or `make system-deps`)")
    text = f"* memhost wrapper\n.include {SPICE / deck}\n.control\n{control}\nquit\n.endc\n.end\n"
    with tempfile.TemporaryDirectory() as tmp:
        cir = Path(tmp) / "run.cir"
        cir.write_text(text)
        proc = subprocess.run([exe, "-b", str(cir)], cwd=SPICE, capture_output=True, text=True, timeout=120)
        out = proc.stdout + proc.stderr
        if proc.returncode != 0 or "error" in out.lower():
            raise RuntimeError(f"ngspice failed ({proc.returncode}):\n{out[-3000:]}")
        return out


@dataclass
class PulseCase:
    amplitude: float          # requested V at W+
    rdev: float = 2000.0      # ohm
    cload: float = 100e-12    # F, W+ to ground
    pw: float = 3e-6          # s


@dataclass
class PulseResult:
    case: PulseCase
    code: int
    plateau: float            # V, mean of the last 20 % of the pulse, baseline removed
    rise_s: float             # 10-90 %
    fall_s: float             # 90-10 %
    delay_s: float            # gate edge to 50 %
    overshoot: float          # fraction of the amplitude
    baseline: float           # V at W+ before the gate (gate off)
    peak_current: float       # A through R9 (device + load), largest magnitude

    @property
    def error(self) -> float:
        return self.plateau / self.case.amplitude - 1.0


def simulate_pulses(cases: list[PulseCase], cfg: dict) -> list[PulseResult]:
    """All cases in one ngspice process (alterparam + reset per case)."""
    ctl = ["set wr_singlescale", "set wr_vecnames"]
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i, c in enumerate(cases):
            code = dac_code_for_amplitude(c.amplitude, cfg)
            fn = Path(tmp) / f"p{i}.txt"
            files.append((c, code, fn))
            ctl += [f"alterparam vdac={dac_volts(code, cfg)!r}", f"alterparam rdev={c.rdev!r}",
                    f"alterparam cload={c.cload!r}", f"alterparam pw={c.pw!r}", "reset",
                    f"tran 1n {T_GATE + c.pw + 2e-6!r} 0 1n",
                    f"wrdata {fn} v(wp) v(amp_out) i(vpos) i(vneg)"]
        _run("pulse_path.cir", "\n".join(ctl))
        return [_analyse_pulse(c, code, np.loadtxt(fn, skiprows=1)) for c, code, fn in files]


def _analyse_pulse(c: PulseCase, code: int, d: np.ndarray) -> PulseResult:
    t, v, vo = d[:, 0], d[:, 1], d[:, 2]
    base = float(v[(t > 0.5 * T_GATE) & (t < T_GATE)].mean())
    t_end = T_GATE + c.pw
    plat = float(v[(t > t_end - 0.2 * c.pw) & (t < t_end)].mean()) - base
    s = 1.0 if plat > 0 else -1.0
    u = s * (v - base) / abs(plat)            # normalised: 0 before, 1 on the plateau

    def first(cond, after):
        idx = np.where((t >= after) & cond)[0]
        return float(t[idx[0]]) if len(idx) else math.inf

    t10 = first(u >= 0.1, T_GATE)
    t50 = first(u >= 0.5, T_GATE)
    t90 = first(u >= 0.9, T_GATE)
    f90 = first(u <= 0.9, t_end)
    f10 = first(u <= 0.1, t_end)
    on = (t > T_GATE) & (t < t_end)
    over = float(u[on].max() - 1.0)
    i_r9 = (vo - v) / 330.0
    return PulseResult(c, code, plat, t90 - t10, f10 - f90, t50 - T_GATE, over, base,
                       float(np.abs(i_r9).max()))


@dataclass
class ReadResult:
    read_v: float
    rdev: float
    offset_code: int
    v_adc: float
    counts: int
    g_est: float

    @property
    def g_true(self) -> float:
        return 1.0 / self.rdev

    @property
    def error(self) -> float:
        return self.g_est / self.g_true - 1.0


def _read_params(read_v: float, rdev: float, cfg: dict, window: float = 0.1):
    """Bias and offset the firmware sets for a window of +-window around 1/rdev."""
    g = 1.0 / rdev
    r = window_codes(g * (1 - window), g * (1 + window), read_v, cfg)
    if isinstance(r, str):
        raise ValueError(r)
    bc, oc = r
    return bc, oc, dac_volts(bc, cfg), offset_volts(oc, cfg)


def simulate_reads(cases: list[tuple[float, float]], cfg: dict, enabled: bool = True) -> list[ReadResult]:
    """cases = [(read_v, rdev)]: the window +-10 % around the device, DC operating point, ADC code,
    conductance as the firmware computes it."""
    ctl = [f"alterparam ren0={3.3 if enabled else 0.0}"]
    params = []
    for i, (read_v, rdev) in enumerate(cases):
        bc, oc, vb, vo = _read_params(read_v, rdev, cfg)
        params.append((bc, oc))
        ctl += [f"alterparam vdacb={vb!r}", f"alterparam vofs={vo!r}", f"alterparam rdev={rdev!r}",
                "reset", "op", f'echo "MEAS {i} $&v(adc)"']
    out = _run("read_path.cir", "\n".join(ctl))
    vals = {}
    for line in out.splitlines():
        if line.startswith("MEAS "):
            _, i, v = line.split()
            vals[int(i)] = float(v)
    res = []
    full = 1 << cfg["FE_DAC_BITS"]
    for i, (read_v, rdev) in enumerate(cases):
        bc, oc = params[i]
        rv = bc * cfg["FE_DAC_VREF"] / full * cfg["FE_READ_BIAS_GAIN"]
        n = adc_counts(vals[i], cfg)
        res.append(ReadResult(read_v, rdev, oc, vals[i], n, conductance_from_counts(n, rv, cfg, oc)))
    return res


def simulate_read_settling(read_v: float, rdev: float, cfg: dict, lsb: float = 2.0) -> float:
    """Seconds from READ_EN high until V(adc) stays within `lsb` ADC codes of its final value (the
    offset current flows all along: the TIA starts from D7's clamp)."""
    _bc, _oc, vb, vo = _read_params(read_v, rdev, cfg)
    ten = 2e-6
    tol = lsb * cfg["FE_ADC_VREF"] / (1 << cfg["FE_ADC_BITS"])
    with tempfile.TemporaryDirectory() as tmp:
        fn = Path(tmp) / "s.txt"
        _run("read_path.cir", "\n".join([
            "set wr_singlescale", f"alterparam vdacb={vb!r}", f"alterparam vofs={vo!r}",
            f"alterparam rdev={rdev!r}", "alterparam ren0=0", f"alterparam ten={ten!r}", "reset",
            "tran 10n 60u 0 10n", f"wrdata {fn} v(adc)"]))
        d = np.loadtxt(fn)
    t, v = d[:, 0], d[:, 1]
    final = v[-1]
    bad = np.where(np.abs(v - final) > tol)[0]
    return float(t[bad[-1]] - ten) if len(bad) else 0.0


@dataclass
class NoiseResult:
    read_v: float
    rdev: float
    density_1k: float         # V/rtHz at V(adc), 1 kHz
    total_rms: float          # V rms at V(adc), 10 Hz .. 10 MHz

    @property
    def input_density_1k(self) -> float:
        """The same, referred to the device current (A/rtHz): divided by R13."""
        return self.density_1k


def simulate_read_noise(read_v: float, rdev: float, cfg: dict) -> tuple[float, float]:
    """ngspice .noise of the read path with the window centred on the device: (V/rtHz at the ADC
    input at 1 kHz, V rms at the ADC input integrated 10 Hz .. 10 MHz)."""
    _bc, _oc, vb, vo = _read_params(read_v, rdev, cfg)
    with tempfile.TemporaryDirectory() as tmp:
        fn = Path(tmp) / "n.txt"
        out = _run("read_path.cir", "\n".join([
            "set wr_singlescale", f"alterparam vdacb={vb!r}", f"alterparam vofs={vo!r}",
            f"alterparam rdev={rdev!r}", "reset", "noise v(adc) VDACB dec 20 10 10meg",
            "setplot noise1", f"wrdata {fn} onoise_spectrum",
            "setplot noise2", 'echo "TOTAL $&onoise_total"']))
        d = np.loadtxt(fn)
    f, sp = d[:, 0], d[:, 1]
    d1k = float(np.interp(3.0, np.log10(f), sp))
    tot = math.nan
    for line in out.splitlines():
        if line.startswith("TOTAL "):
            tot = float(line.split()[1])
    return d1k, tot


# ---- the standard sweep (used by the tests and printed by main) -------------------------------
AMPLITUDES = (-5.0, -4.0, -2.0, -1.0, -0.5, 0.5, 1.0, 2.0, 4.0, 5.0)


def standard_pulse_cases() -> list[PulseCase]:
    cases = [PulseCase(a) for a in AMPLITUDES]                                   # 2 kohm, 100 pF
    cases += [PulseCase(a, rdev=r) for a in (-5.0, 5.0) for r in (330.0, 1e6)]   # load extremes
    cases += [PulseCase(a, cload=c) for a in (-5.0, 0.5, 5.0) for c in (22e-12, 220e-12)]
    return cases


def _fits(rv: float, r: float) -> bool:
    return not isinstance(window_codes(0.9 / r, 1.1 / r, rv, load_config()), str)


READ_CASES = [(rv, r) for rv in (0.05, 0.1, 0.2) for r in (400.0, 1000.0, 2000.0, 5000.0, 50000.0)
              if _fits(rv, r)]                      # the windows the offset DAC can centre


def main():
    cfg = load_config()
    print("pulse path (ADA4898-1, gain %.3g, R9 330 ohm, C5 10 pF):" % cfg["FE_PULSE_GAIN"])
    print("  amplitude  rdev     cload   code  plateau    error    rise    fall   delay  overshoot  Ipk")
    for r in simulate_pulses(standard_pulse_cases(), cfg):
        c = r.case
        print(f"  {c.amplitude:+6.2f} V {c.rdev:8.0f} {c.cload * 1e12:5.0f} pF {r.code:5d} {r.plateau:+8.4f} "
              f"{r.error * 100:+7.3f} % {r.rise_s * 1e9:5.0f} ns {r.fall_s * 1e9:5.0f} ns "
              f"{r.delay_s * 1e9:5.0f} ns {r.overshoot * 100:6.2f} % {r.peak_current * 1e3:5.1f} mA")
    print(f"read path (TIA {cfg['FE_TIA_R_OHM']:g} ohm, ADC {cfg['FE_ADC_BITS']} bit, {cfg['FE_ADC_VREF']} V):")
    print("  read_v   rdev  offset   V(adc)   counts  G_est        G_true       error")
    for r in simulate_reads(READ_CASES, cfg):
        print(f"  {r.read_v:5.3f} {r.rdev:7.0f} {r.offset_code:6d} {r.v_adc:9.5f} {r.counts:6d}  {r.g_est:.6e}  "
              f"{r.g_true:.6e} {r.error * 1e6:+8.1f} ppm")
    print("  settling to 2 LSB after READ_EN: %.1f us" % (simulate_read_settling(0.1, 1000.0, cfg) * 1e6))
    d, tot = simulate_read_noise(0.1, 1.0 / 1.1e-3, cfg)
    print("  noise at the ADC input, 1.1 mS at 0.1 V: %.1f nV/rtHz at 1 kHz (%.2f pA/rtHz at the device), "
          "%.1f uV rms 10 Hz-10 MHz" % (d * 1e9, d / cfg["FE_TIA_R_OHM"] * 1e12, tot * 1e6))


if __name__ == "__main__":
    main()
