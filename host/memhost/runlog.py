"""Run folders: `runs/<UTC time>_<kind>/` = meta.json + results.csv (+ plots).

- meta.json: what the run is (kind, config, board INFO, versions, argv, start time, status). Written
  atomically (temp file + rename), so a crash never leaves half a meta.json.
- results.csv: a header row, then one row per result, appended and flushed as each result arrives
  (os.fsync at most once a second), so a killed run loses at most the result in flight.
- Every row carries `step`, the result's index in the run's plan (the ordered list of everything the
  run will do). Resume = re-create the plan from meta.json, skip the steps already in results.csv.
  A torn last line (the process died mid-write) is dropped on resume; that step is done again.

Analysis and plots read only the folder, so they work the same on runs from a real board.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Mapping, Sequence

import numpy as np

from . import __version__, PROTOCOL_VERSION
from . import interrupts
from .errors import RunFolderError

META = "meta.json"
RESULTS = "results.csv"

#: columns of a level-type run (cycles, levels); other kinds declare their own
LEVEL_COLUMNS = ("step", "cycle", "level", "direction", "target", "achieved", "error", "status",
                 "pulses", "reads", "elapsed_us", "overhead_us", "verify_g", "attempts",
                 "first_achieved")

#: columns read back as numbers; everything else stays a string
_INT_COLUMNS = {"step", "cycle", "level", "pulses", "reads", "index", "pulse", "attempts"}
_STR_COLUMNS = {"status", "direction", "kind", "polarity"}


def utc_stamp(now: _dt.datetime | None = None) -> str:
    """UTC time as used in run folder names: 20250101T120000Z (sortable, no colons)."""
    now = now or _dt.datetime.now(_dt.timezone.utc)
    return now.strftime("%Y%m%dT%H%M%SZ")


def new_run_path(base: str | os.PathLike[str], kind: str) -> Path:
    """A fresh `base/<UTC time>_<kind>` path (suffixed -2, -3, ... if that second is taken)."""
    base = Path(base)
    stem = f"{utc_stamp()}_{kind}"
    path = base / stem
    i = 2
    while path.exists():
        path = base / f"{stem}-{i}"
        i += 1
    return path


def _write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, default=_json_default)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if hasattr(o, "_asdict"):
        return o._asdict()
    if hasattr(o, "__dataclass_fields__"):
        return {k: getattr(o, k) for k in o.__dataclass_fields__}
    if hasattr(o, "__dict__"):
        return {k: v for k, v in vars(o).items() if not k.startswith("_")}
    return str(o)


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return repr(v) if math.isfinite(v) else str(v)
    if isinstance(v, np.integer):
        return str(int(v))
    return str(v)


class RunFolder:
    """One run folder. Create with RunFolder.create, reopen (validated) with RunFolder.open."""

    # called with the folder's path whenever one is created or opened (memhost.multiboard: a
    # board's session tells the parent which run folder is its own)
    observers: ClassVar[list[Callable[[Path], None]]] = []

    def __init__(self, path: Path, meta: dict[str, Any], columns: Sequence[str]):
        self.path = path
        self.meta = meta
        self.columns = tuple(columns)
        self._fh: io.TextIOWrapper | None = None
        self._last_sync = 0.0

    # ------------------------------------------------------------------ create / open
    @classmethod
    def create(cls, base: str | os.PathLike[str], kind: str, meta: Mapping[str, Any],
               columns: Sequence[str], path: str | os.PathLike[str] | None = None) -> "RunFolder":
        """Make `base/<UTC>_<kind>/` with meta.json (kind, versions, start time added) and the
        results.csv header. `path` forces the folder path (it must not exist yet)."""
        target = Path(path) if path is not None else new_run_path(base, kind)
        if path is not None and target.exists():
            raise RunFolderError(f"{target} already exists: choose another --out")
        full = {
            "kind": kind,
            "host_version": __version__,
            "protocol": PROTOCOL_VERSION,
            "started_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "argv": list(sys.argv),
            "status": "running",
            "columns": list(columns),
        }
        full.update(meta)
        full["kind"] = kind
        target.parent.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                target.mkdir()
                break
            except FileExistsError:
                if path is not None:    # another process took it since the check above
                    raise RunFolderError(f"{target} already exists: choose another --out") from None
                target = new_run_path(base, kind)   # several boards started in the same second
        run = cls(target, full, columns)
        _write_json_atomic(target / META, full)
        with open(target / RESULTS, "w", encoding="utf-8", newline="") as f:
            f.write(",".join(columns) + "\n")
            f.flush()
            os.fsync(f.fileno())
        for notify in cls.observers:
            notify(target)
        return run

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> "RunFolder":
        """Open and validate an existing run folder (RunFolderError if it is not one)."""
        p = Path(path)
        if not p.exists():
            raise RunFolderError(f"{p}: no such folder: give the path of a run folder (runs/<time>_<kind>)")
        if not p.is_dir():
            raise RunFolderError(f"{p} is a file, not a run folder: give the folder that holds meta.json")
        meta_path = p / META
        if not meta_path.is_file():
            raise RunFolderError(f"{p} is not a run folder (no {META}): give a folder made by memhost")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunFolderError(f"{meta_path} is corrupt ({exc}): restore it or start a new run") from None
        if not isinstance(meta, dict) or not isinstance(meta.get("kind"), str):
            raise RunFolderError(f"{meta_path} is corrupt (no 'kind'): restore it or start a new run")
        res = p / RESULTS
        if not res.is_file():
            raise RunFolderError(f"{p} has no {RESULTS}: the run folder is incomplete; start a new run")
        with open(res, encoding="utf-8", newline="") as f:
            header = f.readline()
        if not header.endswith("\n"):
            raise RunFolderError(f"{res} has no complete header row: the file is corrupt; start a new run")
        columns = header.strip().split(",")
        expected = meta.get("columns")
        if expected is not None and list(expected) != columns:
            raise RunFolderError(f"{res} header does not match {META} columns: the folder is corrupt")
        if "step" not in columns:
            raise RunFolderError(f"{res} has no 'step' column: not a memhost run; start a new run")
        run = cls(p, meta, columns)
        run.read_rows()  # validates every complete row
        for notify in cls.observers:
            notify(p)
        return run

    # ------------------------------------------------------------------ writing
    def _open_append(self) -> io.TextIOWrapper:
        if self._fh is None:
            self.drop_torn_tail()
            self._fh = open(self.path / RESULTS, "a", encoding="utf-8", newline="")
        return self._fh

    def append(self, row: Mapping[str, Any]) -> None:
        """Append one result row (missing columns left empty) and flush it to the OS. A Ctrl-C
        arriving meanwhile takes effect after the row is written (memhost.interrupts)."""
        with interrupts.deferred():
            self._append(row)

    def _append(self, row: Mapping[str, Any]) -> None:
        fh = self._open_append()
        fh.write(",".join(_fmt(row.get(c)) for c in self.columns) + "\n")
        fh.flush()
        now = time.monotonic()
        if now - self._last_sync > 1.0:
            os.fsync(fh.fileno())
            self._last_sync = now

    def update_meta(self, **changes: Any) -> None:
        """Merge `changes` into meta.json (atomically)."""
        self.meta.update(changes)
        _write_json_atomic(self.path / META, self.meta)

    def close(self, status: str | None = None, **meta: Any) -> None:
        """Close results.csv (fsync) and optionally record the final status in meta.json."""
        with interrupts.deferred():
            self._close(status, **meta)

    def _close(self, status: str | None = None, **meta: Any) -> None:
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None
        if status is not None or meta:
            if status is not None:
                meta["status"] = status
            meta.setdefault("updated_utc",
                            _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
            self.update_meta(**meta)

    def discard_if_empty(self) -> bool:
        """Removes the folder if it holds no result row (a run that failed before its first
        result): True if removed. Files other than memhost's keep it."""
        with interrupts.deferred():
            self.close()
            if self.read_rows():
                return False
            for name in (RESULTS, META, META + ".tmp"):
                try:
                    (self.path / name).unlink()
                except FileNotFoundError:
                    pass
            try:
                self.path.rmdir()
            except OSError:
                return False
            return True

    def __enter__(self) -> "RunFolder":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ reading
    def has_torn_tail(self) -> bool:
        """True if results.csv ends in a row without its newline (a write cut short)."""
        with open(self.path / RESULTS, "rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() == 0:
                return False
            f.seek(-1, os.SEEK_END)
            return f.read(1) != b"\n"

    def drop_torn_tail(self) -> bool:
        """Cut a last line that has no newline (a write cut short by a crash). True if cut."""
        res = self.path / RESULTS
        with open(res, "rb+") as f:
            data = f.read()
            if data.endswith(b"\n") or not data:
                return False
            cut = data.rfind(b"\n") + 1
            f.truncate(cut)
        return True

    def read_rows(self) -> list[dict[str, Any]]:
        """All complete result rows as dicts (numbers parsed). A torn last line is ignored;
        a bad row anywhere else raises RunFolderError."""
        res = self.path / RESULTS
        text = res.read_text(encoding="utf-8")
        lines = text.split("\n")
        # lines[-1] is '' when the file ends with a newline, else a torn row (ignored)
        body = lines[1:-1]
        rows: list[dict[str, Any]] = []
        seen: set[int] = set()
        ncol = len(self.columns)
        for lineno, line in enumerate(body, start=2):
            fields = next(csv.reader([line])) if line else []
            if len(fields) != ncol:
                raise RunFolderError(f"{res} line {lineno} has {len(fields)} fields, expected {ncol}: "
                                     "the file is corrupt; fix or delete that line")
            row: dict[str, Any] = {}
            for c, v in zip(self.columns, fields):
                try:
                    if c in _STR_COLUMNS:
                        row[c] = v
                    elif c in _INT_COLUMNS:
                        row[c] = int(v) if v != "" else None
                    else:
                        row[c] = float(v) if v != "" else math.nan
                except ValueError:
                    raise RunFolderError(f"{res} line {lineno}: {c}={v!r} is not a number: the file "
                                         "is corrupt; fix or delete that line") from None
            step = row["step"]
            if step is None or step in seen:
                raise RunFolderError(f"{res} line {lineno}: step {step} is missing or repeated: the "
                                     "file is corrupt; fix or delete that line")
            seen.add(step)
            rows.append(row)
        return rows

    def columns_as_arrays(self) -> dict[str, Any]:
        """Result columns as numpy arrays (strings for status/direction), in file order."""
        rows = self.read_rows()
        out: dict[str, Any] = {}
        for c in self.columns:
            vals = [r[c] for r in rows]
            if c in _STR_COLUMNS:
                out[c] = np.array(vals, dtype=object)
            elif c in _INT_COLUMNS:
                out[c] = np.array([-1 if v is None else v for v in vals], dtype=np.int64)
            else:
                out[c] = np.array(vals, dtype=float)
        return out

    def done_steps(self) -> set[int]:
        """Steps of the plan already in results.csv (what resume skips)."""
        return {int(r["step"]) for r in self.read_rows()}

    @property
    def kind(self) -> str:
        return str(self.meta["kind"])

    def require(self, *keys: str) -> None:
        """RunFolderError unless meta.json has every key (for commands that need them)."""
        missing = [k for k in keys if k not in self.meta]
        if missing:
            raise RunFolderError(f"{self.path / META} lacks {', '.join(missing)}: the folder is "
                                 "corrupt or from another tool")


def find_runs(base: str | os.PathLike[str]) -> list[Path]:
    """Run folders directly under base, oldest first (by name = UTC time)."""
    b = Path(base)
    if not b.is_dir():
        return []
    return sorted(p for p in b.iterdir() if (p / META).is_file())


def iter_pending(plan: Iterable[Any], done: set[int]) -> Iterable[tuple[int, Any]]:
    """(step, item) of the plan not yet done, in plan order."""
    for step, item in enumerate(plan):
        if step not in done:
            yield step, item
