"""The device model: DeviceArray (device.py, vectorized numpy) and the device-family generator
(family.py), and physics.py, the host's handle on the one device physics hil/physics.py (the file the
emulated boards run through hil/memristor.py, and the compiled twins compile)."""
