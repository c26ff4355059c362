"""The device behind the emulated Pico's pins: hil/memristor.py's Memristor and the front end.

Runs under CPython as a child of the host process, beside the Node program (hil/pico/pico.js) that
emulates the RP2040. pico.js measures what happens on the pins and buses (DAC words latched on /CS,
how many cycles the gate pin was high, READ_EN, each ADC conversion) and asks this process what the
analog side does, in emulated time, over two pipes of text lines:

  H                        -> one JSON line: pins and converter constants from config.py
  P t v_dac_a width        pulse: DAC A held v_dac_a (V) while the gate was high for width (s), from t (s)
  R t v_dac_b read_en      -> ADC0 code (0..4095): one RP2040 ADC conversion at t (s)

The device physics is the project's one model (hil/memristor.py); this file only converts volts at
the converters into volts at the device and currents into ADC codes (the front end). The front-end
numbers are config.py's FE_* block. A line starting with "!" is a fatal error pico.js reports.

The process exits when its stdin closes (pico.js ended) and, on Linux, when the process that
started it dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import argparse
import bisect
import ctypes
import json
import math
import random
import signal
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
HIL = HERE.parent
CONFIG = HIL.parent / "firmware" / "micropython" / "memfw" / "hal" / "config.py"


def load_config(path: Path = CONFIG) -> dict[str, Any]:
    """config.py's constants under CPython (its `const` is MicroPython's; here the identity)."""
    src = path.read_text().replace("from micropython import const", "const = lambda x: x")
    ns: dict[str, Any] = {}
    exec(compile(src, str(path), "exec"), ns)
    return {k: v for k, v in ns.items() if k.isupper()}


# ---- the RP2040's own ADC (ADC0), as measured on real chips ----------------------------------------
# Transfer function of a typical RP2040 ADC: for each 12-bit readout d, the input (in ideal LSB) it
# stands for, from the correction averaged over five Raspberry Pi Pico / Pico W boards by
# kitanokitsune/rp2040adc_correction (measured; it shows the RP2040-E11 DNL discontinuities at codes
# 512, 1536, 2560 and 3584 and the chips' offset/gain error). Segments: (first readout, offset).
_RP2040_ADC_SEGMENTS = (
    (0, None), (16, -15), (511, -10), (512, -5), (895, -6), (1407, -7), (1535, -3), (1536, 2),
    (1664, 1), (2047, 0), (2048, -1), (2431, -2), (2559, 3), (2560, 7), (2943, 6), (3455, 5),
    (3583, 10), (3584, 15), (3711, 14), (4081, None),
)
# Noise: the RP2040 datasheet gives an ENOB of 8.7 bits measured (9 simulated) for the 12-bit ADC
# (RP2040-E11); transition noise of about 1 LSB rms is what is left beside the DNL above (ASSUMED).
RP2040_ADC_NOISE_LSB = 1.0


def _rp2040_input_of_readout() -> list[float]:
    ys = []
    for d in range(4096):
        off: int | None = None
        for first, o in _RP2040_ADC_SEGMENTS:
            if d >= first:
                off = o
        ys.append(float(d + off) if off is not None else (0.0 if d < 16 else 4095.0))
    return ys


class Rp2040Adc:
    """x (input in LSB of the ideal 12-bit ADC, 0..4096) -> readout code with noise and DNL."""

    def __init__(self, rng: random.Random, noise_lsb: float = RP2040_ADC_NOISE_LSB):
        self._ys = _rp2040_input_of_readout()
        self._rng = rng
        self.noise_lsb = noise_lsb

    def convert(self, x: float) -> int:
        x += self._rng.gauss(0.0, self.noise_lsb)
        d = bisect.bisect_right(self._ys, x) - 1
        return 0 if d < 0 else (4095 if d > 4095 else d)


class FrontEnd:
    """Converter volts <-> device volts and currents, from config.py's FE_* block."""

    def __init__(self, cfg: dict[str, Any], seed: int):
        self.c = cfg
        self.adc = Rp2040Adc(random.Random(seed ^ 0x5A5A))

    def amplitude_v(self, v_dac_a: float) -> float:
        """V at W+ for DAC A's output (the pulse stage)."""
        return self.c["FE_PULSE_GAIN"] * (v_dac_a - self.c["FE_PULSE_VMID"])

    def read_bias(self, v_dac_b: float) -> float:
        return self.c["FE_READ_BIAS_GAIN"] * v_dac_b

    def adc_code(self, current_a: float) -> int:
        """One ADC0 conversion of the TIA output for a device current (A)."""
        v = current_a * self.c["FE_TIA_R_OHM"]
        return self.adc.convert(v / self.c["FE_ADC_VREF"] * (1 << self.c["FE_ADC_BITS"]))


class Device:
    def __init__(self, params: dict[str, Any], seed: int, cfg: dict[str, Any]):
        sys.path.insert(0, str(HIL))
        from memristor import Memristor            # hil/memristor.py: the one device model
        self.dev = Memristor(params, seed)
        self.fe = FrontEnd(cfg, seed)
        self.cfg = cfg

    def _to(self, t: float) -> None:
        dt = t - self.dev.t
        if dt > 0.0:
            self.dev.wait(dt)

    def pulse(self, t: float, v_dac_a: float, width: float) -> None:
        self._to(t)
        self.dev.pulse(self.fe.amplitude_v(v_dac_a), width)

    def read(self, t: float, v_dac_b: float, read_en: bool) -> int:
        self._to(t)
        if not read_en:                           # TIA input open: only the ADC's own offset/noise
            return self.fe.adc_code(0.0)
        bias = self.fe.read_bias(v_dac_b)
        g = self.dev.read(bias) if bias > 0.0 else self.dev.conductance()
        return self.fe.adc_code(g * bias)

    def hello(self) -> dict[str, Any]:
        c = self.cfg
        pins = {"dac_sck": c["RP2_PIN_DAC_SCK"], "dac_mosi": c["RP2_PIN_DAC_MOSI"],
                "dac_cs": c["RP2_PIN_DAC_CS"], "gate": c["RP2_PIN_PULSE_GATE"],
                "read_en": c["RP2_PIN_READ_EN"]}
        out = {"pins": pins, "spi_id": c["RP2_SPI_ID"], "dac_bits": c["FE_DAC_BITS"],
               "dac_vref": c["FE_DAC_VREF"]}
        if "RP2_ADC_CHANNEL" in c:
            out["adc_channel"] = c["RP2_ADC_CHANNEL"]
            pins["adc"] = c["RP2_PIN_ADC"]
        return out


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except OSError:
        pass


def serve(dev: Device, inp: Any, out: Any) -> None:
    for line in inp:
        parts = line.split()
        if not parts:
            continue
        op = parts[0]
        try:
            if op == "P":
                dev.pulse(float(parts[1]), float(parts[2]), float(parts[3]))
            elif op == "R":
                out.write(f"{dev.read(float(parts[1]), float(parts[2]), parts[3] == '1')}\n")
                out.flush()
            elif op == "H":
                out.write(json.dumps(dev.hello()) + "\n")
                out.flush()
            else:
                raise ValueError(f"unknown request {line.strip()!r}")
        except Exception as exc:            # reported by pico.js as its last words
            out.write(f"!{type(exc).__name__}: {exc}\n")
            out.flush()
            raise


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", required=True, help="preset JSON (memhost Preset.to_json())")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--config", type=Path, default=CONFIG)
    a = ap.parse_args(argv)
    _die_with_parent()
    spec = json.loads(Path(a.preset).read_text())
    dev = Device(spec["params"], a.seed, load_config(a.config))
    serve(dev, sys.stdin, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
