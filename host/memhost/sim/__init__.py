"""Simulation on the host: the device model (memhost.sim.model: DeviceArray, device families),
twins of the firmware's controllers (memhost.sim.twins: ISPP in numpy, adaptive as a compiled
per-device loop, program()), and device presets (memhost.sim.presets: the TOML files' loader).
"""
