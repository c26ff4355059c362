"""Twins of the firmware's write-verify controllers on a DeviceArray: ISPP (ispp.py, numpy),
adaptive (adaptive.py, its compiled per-device loop kernel.py), and program() (control.py)."""
