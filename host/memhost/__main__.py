import sys

from . import interrupts

interrupts.install()    # first: a Ctrl-C while the CLI loads is held until main() starts
interrupts.hold()

from .cli import main  # noqa: E402

sys.exit(main())
