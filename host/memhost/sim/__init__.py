"""Vectorized emulated memristors (numpy), device presets, and numpy twins of the controllers.

Import the submodules: `memhost.sim.presets`, `memhost.sim.device`, `memhost.sim.ispp`.
"""
