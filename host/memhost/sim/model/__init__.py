"""The device model: DeviceArray (device.py, vectorized numpy) and the device-family generator
(family.py). The scalar model the emulated boards run is hil/memristor.py."""
