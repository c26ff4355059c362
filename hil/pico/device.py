"""The device behind the emulated Pico's pins: hil/memristor.py's Memristor and hil/frontend.py's front end.

Runs under CPython as a child of the host process, beside the Node program (hil/pico/pico.js) that
emulates the RP2040. pico.js measures what happens on the pins and buses (words latched into the DACs,
how many cycles the gate pin was high, READ_EN, each ADC conversion) and tells this process, in
emulated time (t, s), over two pipes of text lines:

  H                  -> one JSON line: pins and bus numbers from config.py
  B t code           MCP4922 channel B latched (read bias)
  O t code           DAC8551 latched (offset current into the TIA)
  E t on             READ_EN went high (1) or low (0)
  P t code_a width   pulse: DAC A held code_a while the gate was high for width (s)
  C t                -> one AD7685 conversion (its 16-bit code)

The device physics is the project's one model (hil/memristor.py) and the analog front end its one model
(hil/frontend.py: DAC codes to volts, bias, offset, TIA noise, ADC quantisation and DNL); this file
only routes pin events to them. As in FrontEnd.read, the device is read once per FE_ADC_OVERSAMPLE
conversions while READ_EN is high (its own read noise), each conversion adding the front end's.
A line starting with "!" is a fatal error pico.js reports.

The process exits when its stdin closes (pico.js ended) and, on Linux, when the process that
started it dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import signal
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
HIL = HERE.parent
FIRMWARE = HIL.parent / "firmware" / "micropython"
CONFIG = FIRMWARE / "memfw" / "hal" / "config.py"


def load_config(path: Path = CONFIG) -> dict[str, Any]:
    """config.py's constants under CPython (its `const` is MicroPython's; here the identity)."""
    src = path.read_text().replace("from micropython import const", "const = lambda x: x")
    ns: dict[str, Any] = {}
    exec(compile(src, str(path), "exec"), ns)
    return {k: v for k, v in ns.items() if k.isupper()}


class Device:
    """One emulated device behind one emulated front end, in emulated time."""

    def __init__(self, params: dict[str, Any], seed: int, cfg: dict[str, Any]):
        for p in (str(HIL), str(FIRMWARE)):
            if p not in sys.path:
                sys.path.insert(0, p)
        from memristor import Memristor            # hil/memristor.py: the one device model
        from frontend import FrontEnd, fe_from_config   # hil/frontend.py: the one front-end model
        self.dev = Memristor(params, seed)
        self.fe = FrontEnd(fe_from_config(cfg), seed)
        self.cfg = cfg
        self._read_en = False
        self._g = 0.0                   # the device's conductance for the conversions in progress
        self._left = 0                  # conversions before the device is read again

    def _to(self, t: float) -> None:
        dt = t - self.dev.t
        if dt > 0.0:
            self.dev.wait(dt)

    def pulse(self, t: float, code_a: int, width: float) -> None:
        self._to(t)
        self.dev.pulse(self.fe.amplitude_v(code_a), width)

    def read_enable(self, t: float, on: bool) -> None:
        self._to(t)
        self._read_en = on
        self._left = 0

    def convert(self, t: float) -> int:
        self._to(t)
        if not self._read_en:               # TIA input open: only the offset current reaches it
            return self.fe.convert(0.0)
        if self._left <= 0:
            bias = self.fe.bias_v(actual=True)
            self._g = self.dev.read(bias) if bias > 0.0 else self.dev.conductance()
            self._left = self.fe.oversample
        self._left -= 1
        return self.fe.convert(self._g)

    def hello(self) -> dict[str, Any]:
        c = self.cfg
        pins = {"dac_sck": c["RP2_PIN_DAC_SCK"], "dac_mosi": c["RP2_PIN_DAC_MOSI"],
                "dac_cs": c["RP2_PIN_DAC_CS"], "ofs_cs": c["RP2_PIN_OFS_CS"],
                "adc_sck": c["RP2_PIN_ADC_SCK"], "adc_miso": c["RP2_PIN_ADC_MISO"],
                "adc_cnv": c["RP2_PIN_ADC_CNV"], "gate": c["RP2_PIN_PULSE_GATE"],
                "read_en": c["RP2_PIN_READ_EN"]}
        return {"pins": pins, "dac_spi": c["RP2_SPI_ID"], "adc_spi": c["RP2_ADC_SPI_ID"],
                "adc_bits": c["FE_ADC_BITS"], "offset_bits": c["FE_OFFSET_BITS"]}


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except OSError:
        pass


def serve(dev: Device, inp: Any, out: Any) -> None:
    fe = dev.fe
    for line in inp:
        parts = line.split()
        if not parts:
            continue
        op = parts[0]
        try:
            if op == "C":
                out.write(f"{dev.convert(float(parts[1]))}\n")
                out.flush()
            elif op == "P":
                dev.pulse(float(parts[1]), int(parts[2]), float(parts[3]))
            elif op == "B":
                fe.bias_code = int(parts[2])
            elif op == "O":
                fe.offset_code = int(parts[2])
            elif op == "E":
                dev.read_enable(float(parts[1]), parts[2] == "1")
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
