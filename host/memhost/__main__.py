import _signal  # the C module: `signal` imports enum first, which takes a while

_early: list[int] = []      # Ctrl-C before the deferring handler is in place: recorded, not lost
_signal.signal(_signal.SIGINT, lambda signum, frame: _early.append(signum))

import sys  # noqa: E402

from . import interrupts  # noqa: E402

interrupts.install()    # a Ctrl-C while the CLI loads is held until main() starts
interrupts.hold(pending=bool(_early))

from .cli import main  # noqa: E402

sys.exit(main())
