"""Vectorized emulated memristors (numpy), device presets, and twins of the controllers (ISPP in
numpy; adaptive as a compiled per-device loop, `memhost.sim.kernel`).

Import the submodules: `memhost.sim.presets`, `memhost.sim.device`, `memhost.sim.ispp`,
`memhost.sim.adaptive`, `memhost.sim.control`.
"""
