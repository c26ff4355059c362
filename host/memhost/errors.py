"""The exceptions users see. Every message says what went wrong and what to do next."""


class MemhostError(Exception):
    """Base class: the CLI prints the message (no traceback) and exits with status 2."""

    exit_code = 2


class UsageError(MemhostError):
    """A bad argument or input file (the user can fix it and re-run)."""


class PortError(MemhostError):
    """A serial port that cannot be opened, found or used."""


class LinkError(MemhostError):
    """The link to the board failed (timeouts after retries, framing trouble that did not recover)."""


class LinkTimeout(LinkError):
    """No reply within the timeout, after all retries."""


class ProtocolMismatch(MemhostError):
    """The firmware speaks another protocol version than this host."""


class BoardError(MemhostError):
    """The board answered a command with ERROR (code and message from the board)."""

    def __init__(self, code: int, name: str, message: str, seq: int | None = None):
        self.code = code
        self.name = name
        self.board_message = message
        self.seq = seq
        super().__init__(f"board refused the command: {name} ({code}): {message}")


class SafetyLimitError(BoardError):
    """The board refused a pulse or read that would break a safety limit. No pulse was applied."""


class BoardReset(LinkError):
    """The board's session id changed: it reset while we were talking to it."""


class PresetError(UsageError):
    """A device preset (TOML) that is missing or invalid; the message names the field."""


class RunFolderError(UsageError):
    """A run folder that is missing, not a run folder, or corrupt."""


#: the optional extra that provides an importable module (pip install 'memhost[EXTRA]')
EXTRA_OF_MODULE = {
    "micropython_unix": "emu", "hypothesis": "emu", "numba": "sim", "torch": "ann",
    "torchvision": "ann", "mlxtend": "ann", "PIL": "ann", "dask": "cluster",
    "distributed": "cluster", "schemdraw": "docs", "scipy": "test",
}


class MissingExtra(MemhostError):
    """A feature whose optional dependencies are not installed; the message names the extra."""

    def __init__(self, extra: str, what: str, alternative: str = ""):
        self.extra = extra
        super().__init__(f"{what} needs the '{extra}' extra: pip install 'memhost[{extra}]'"
                         + (f" ({alternative})" if alternative else ""))

    @classmethod
    def for_import(cls, exc: ImportError, what: str) -> "MemhostError":
        """MissingExtra for an ImportError of a known optional module, else a plain MemhostError."""
        top = (exc.name or "").split(".")[0]
        if top in EXTRA_OF_MODULE:
            return cls(EXTRA_OF_MODULE[top], what)
        return MemhostError(f"{what} cannot import {exc.name or exc}: reinstall memhost")
