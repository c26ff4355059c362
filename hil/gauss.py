# Random numbers for the emulated hardware (hil/memristor.py, hil/frontend.py): one generator per
# object where the interpreter has one, and standard normals by Box-Muller. Runs under MicroPython and
# CPython (no numpy).
import math
import random

try:
    import micropython
except ImportError:  # CPython: the decorator below is a no-op
    class micropython:  # noqa: N801
        @staticmethod
        def native(f):
            return f

_TWO_PI = 6.283185307179586


class Gauss:
    """Mixin: _seed_rand() once in __init__, then _rand() in [0, 1) and _normal()."""

    def _seed_rand(self, seed, rand=None):
        """rand: a random() function to share (MicroPython has only the global generator)."""
        if rand is not None:
            self._rand = rand
        else:
            try:                    # own generator where the interpreter has one (CPython)
                self._rand = random.Random(seed).random
            except AttributeError:
                random.seed(seed)
                self._rand = random.random
        self._spare = None          # cached second Box-Muller normal

    @micropython.native
    def _normal(self):
        """Standard normal (Box-Muller, second value cached)."""
        z = self._spare
        if z is not None:
            self._spare = None
            return z
        u1 = self._rand()
        if u1 < 1e-300:
            u1 = 1e-300
        r = math.sqrt(-2.0 * math.log(u1))
        a = _TWO_PI * self._rand()
        self._spare = r * math.sin(a)
        return r * math.cos(a)
