"""The host's handle on the one device physics, hil/physics.py (the file the emulated boards run).

`scalar` is that file loaded as a module (plain Python; the vectorised DeviceArray takes its
parameter layout and per-device parameters from it, tests run it as the reference). `compiled()`
returns a second copy of it whose functions are numba-compiled (inlined into the callers), for the
per-device twin loops (memhost.sim.twins.kernel). `njit` is numba.njit for those loops: with
cache=True their on-disk cache is also keyed on hil/physics.py's contents (numba's own key is only
the caller's file, so an edited physics.py would otherwise run stale compiled code).
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from types import ModuleType
from typing import Any, Callable

from ...paths import HIL_DIR

SOURCE = HIL_DIR / "physics.py"

# the functions of hil/physics.py the compiled copy compiles (the rest is set-up code)
COMPILED = ("power", "clip01", "drift", "rate", "pulse", "read", "wait", "device")


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, SOURCE)
    if spec is None or spec.loader is None:  # pragma: no cover - the file is part of the package
        raise ImportError(f"cannot load the device physics from {SOURCE}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


scalar: Any = _load("memhost._hil_physics")
PHYS: tuple[str, ...] = scalar.PHYS
DIGEST = hashlib.sha256(SOURCE.read_bytes()).hexdigest()

_compiled: Any = None


def compiled() -> Any:
    """hil/physics.py with every function in COMPILED numba-compiled (inline="always"): calls between
    them resolve to the compiled ones. Needs numba (the `sim` extra)."""
    global _compiled
    if _compiled is None:
        from numba import njit as _njit
        mod = _load("memhost._hil_physics_jit")
        for name in COMPILED:
            setattr(mod, name, _njit(inline="always")(getattr(mod, name)))
        _compiled = mod
    return _compiled


def njit(*args: Any, **kw: Any) -> Any:
    """numba.njit (same arguments); with cache=True the cache is stale when hil/physics.py changes."""
    from numba import njit as _njit

    def stamp(d: Any) -> Any:
        c = getattr(d, "_cache", None)
        f = getattr(c, "_cache_file", None)
        if f is not None and hasattr(f, "_source_stamp"):
            # numba keeps the stamp in the index and discards the index when it differs
            f._source_stamp = (f._source_stamp, DIGEST)
        elif kw.get("cache"):
            from numba.core.caching import NullCache
            d._cache = NullCache()      # numba changed: no cache rather than a stale one
        return d

    if args and callable(args[0]):
        return stamp(_njit(**kw)(args[0]))

    def deco(f: Callable[..., Any]) -> Any:
        return stamp(_njit(*args, **kw)(f))
    return deco
