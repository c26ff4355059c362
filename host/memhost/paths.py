"""Where the files the host runs from live: the firmware tree, the emulated device, the emulated Pico.

One layout, two places. A source checkout (or an editable install) uses the repository's own folders;
an installed wheel carries the same folders under memhost/_data/ (setup.py copies them there when the
wheel is built; the repository keeps one copy, at the paths below):

    firmware/micropython/   main.py and memfw/** (what `memhost flash` copies, what --port emu runs)
    firmware/rp2-image/     the MicroPython UF2 and RP2040 bootrom the emulated Pico boots, licences
    hil/                    the emulated device and front end (physics.py, memristor.py, frontend.py, gauss.py)
    hil/pico/               the emulated Pico's Node harness (pico.js, package*.json) and device.py

The checkout wins when this package sits in one (host/memhost/ of a tree holding pyproject.toml and
firmware/), so edits there take effect without a rebuild; otherwise memhost/_data/ is used. Presets
and stored figures are ordinary package data (memhost/presets/, memhost/data/) in both.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
CHECKOUT_DIR = PACKAGE_DIR.parent.parent        # the repository, when host/memhost/ is in one
WHEEL_DATA_DIR = PACKAGE_DIR / "_data"          # the wheel's copy (setup.py SHIPPED)


def _is_root(d: Path) -> bool:
    return (d / "firmware" / "micropython" / "main.py").is_file()


def _data_root() -> tuple[Path, str]:
    if (CHECKOUT_DIR / "pyproject.toml").is_file() and _is_root(CHECKOUT_DIR):
        return CHECKOUT_DIR, "checkout"
    if _is_root(WHEEL_DATA_DIR):
        return WHEEL_DATA_DIR, "wheel"
    return WHEEL_DATA_DIR, "missing"     # paths below then name where the wheel's copy should be


DATA_ROOT, DATA_SOURCE = _data_root()
FIRMWARE_DIR = DATA_ROOT / "firmware" / "micropython"
RP2_IMAGE_DIR = DATA_ROOT / "firmware" / "rp2-image"
HIL_DIR = DATA_ROOT / "hil"
PICO_DIR = HIL_DIR / "pico"


def missing_data_hint() -> str:
    """What to do when the firmware tree is not where this install keeps it."""
    return (f"this memhost install has no firmware tree (expected {FIRMWARE_DIR}): reinstall it from a "
            "wheel (pip install --force-reinstall memhost) or run it from a source checkout")
