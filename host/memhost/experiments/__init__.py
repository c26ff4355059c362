"""Experiments: each a function taking an open Board and writing a run folder (see memhost.runlog).

levels      n linear levels, programmed in order, for several cycles (Fig. 1)
cycles      a small level set, each target from a reset state, many cycles (CPD data)
retention   program levels, then read each over (log-spaced) time
sweep       pulse-amplitude sweep: conductance after each pulse (curve tracer)
read_train  a train of reads (read noise), or of identical pulses each followed by a read (NeuroSim
            nonlinearity label)
range       the device's usable conductance range, from pulse/read trains (used by levels)
"""

from .range import DeviceRange, characterize_range
from .levels import LevelsConfig, plan_levels, run_levels, summarize_run
from .cycles import run_cycles
from .retention import RetentionConfig, run_retention
from .sweep import SweepConfig, run_sweep
from .read_train import ReadTrainConfig, run_read_train

__all__ = ["DeviceRange", "characterize_range", "LevelsConfig", "plan_levels", "run_levels",
           "summarize_run", "run_cycles", "RetentionConfig", "run_retention", "SweepConfig",
           "run_sweep", "ReadTrainConfig", "run_read_train"]
