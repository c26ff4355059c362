"""Pulse traces: one record per pulse applied inside a PROGRAM, from the board or a twin.

The record is TRACE_DTYPE (the schema, docs/traces.md: program, device, k, polarity, flags, amp_v,
width_s, g_before, g_after, target_s, tol_s, dt_s; V, s, S). A run folder keeps them in
`traces.bin`, a file made for tens of millions of rows:

- a self-describing header: the magic line ``MHTRACE1``, then one line of JSON (format version,
  record size, the numpy ``descr`` of the record, free metadata), padded with spaces to a multiple
  of 64 bytes;
- then fixed-size little-endian records (RECORD_SIZE bytes each), appended and never rewritten.

Why this and not CSV, npz or Parquet (figures for 10 M rows in docs/traces.md, `memhost bench
traces`): appending a batch is one write() of its bytes, with nothing to re-encode or rewrite (an
.npy/.npz holds its row count in its header, Parquet its footer at the end: neither can be appended
to in place); reading is np.memmap, no parsing, and a slice of a 10 M row file costs only the pages
it touches; a crash can only cut the last record short, which the size shows (file size - header is
not a multiple of the record size): readers ignore the torn record and a writer reopening the file
cuts it off before it appends. CSV is ~2.5x larger and two orders of magnitude slower to read.

Writers: TraceWriter (run folders: flushes each batch, fsync at most once a second).
Readers: read_traces(paths) -> one structured array (memory-mapped for a single file).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Mapping

import numpy as np

from . import interrupts
from .errors import RunFolderError

#: the file name inside a run folder
TRACES = "traces.bin"
MAGIC = b"MHTRACE1\n"
FORMAT_VERSION = 1
_ALIGN = 64                 # header length is a multiple of this (records start aligned)
_MAX_HEADER = 1 << 20       # a header longer than this is not ours

#: one pulse (schema: docs/traces.md). Little-endian, packed (no padding): 40 bytes.
TRACE_DTYPE = np.dtype([
    ("program", "<u4"),     # index of the PROGRAM in the run (host-assigned)
    ("device", "<u4"),      # device index (0 on a single-device board run)
    ("k", "<u2"),           # pulse number within the PROGRAM, 0-based
    ("polarity", "u1"),     # 0 SET (G up), 1 RESET (G down)
    ("flags", "u1"),        # bit0 FLAG_REREAD: g_before is a later read than the last g_after
    ("amp_v", "<f4"),       # amplitude magnitude applied, V
    ("width_s", "<f4"),     # pulse width, s
    ("g_before", "<f4"),    # conductance the controller believed before the pulse, S
    ("g_after", "<f4"),     # verify read after the pulse, S
    ("target_s", "<f4"),    # the PROGRAM's target, S
    ("tol_s", "<f4"),       # the PROGRAM's tolerance, S
    ("dt_s", "<f4"),        # s since the previous pulse on this device (NaN: first of a session)
])
RECORD_SIZE = TRACE_DTYPE.itemsize
SET, RESET = 0, 1
FLAG_REREAD = 1


def mark_rereads(r: np.ndarray) -> None:
    """Sets flags bit 0 (FLAG_REREAD) in place where g_before is not the previous pulse's g_after
    (same program and device, k one less): the controller read again in between (after a settle
    wait, a relaxation probe, or a re-read), so g_before is a later reading. Records in pulse order."""
    if len(r) < 2:
        return
    same = (r["k"][1:] == r["k"][:-1] + 1) & (r["device"][1:] == r["device"][:-1]) \
        & (r["program"][1:] == r["program"][:-1])
    reread = same & (r["g_before"][1:] != r["g_after"][:-1])
    r["flags"][1:] |= reread.astype(np.uint8) * FLAG_REREAD


def empty(n: int = 0) -> np.ndarray:
    """n zeroed records (dt_s NaN)."""
    out = np.zeros(n, dtype=TRACE_DTYPE)
    out["dt_s"] = np.nan
    return out


def fill(r: np.ndarray, *, program: Any, device: Any, k: Any, reset: Any, amp_v: Any, width_s: Any,
         g_before: Any, g_after: Any, target_s: Any, tol_s: Any, dt_s: Any) -> np.ndarray:
    """Writes one pulse per record into r (scalars or arrays of len(r); reset: True for a RESET
    pulse, stored as RESET / SET; k is clamped to the record's u16, as the board's TRACE pages
    clamp it); returns r. The one writer of records: board pages, twins, bench traces."""
    r["program"] = program
    r["device"] = device
    r["k"] = np.minimum(k, 65535)
    r["polarity"] = np.where(reset, RESET, SET)
    r["amp_v"] = amp_v
    r["width_s"] = width_s
    r["g_before"] = g_before
    r["g_after"] = g_after
    r["target_s"] = target_s
    r["tol_s"] = tol_s
    r["dt_s"] = dt_s
    return r


def from_board(rows: Any, program: int, target: float, tolerance: float,
               device: int = 0) -> np.ndarray:
    """Records from a board's TRACE rows (memhost.board.Board.fetch_traces: PROGRAM seq, k,
    signed amplitude V, width s, g_before S, g_after S, dt µs or -1), all of one PROGRAM (or of
    the attempts at one target) numbered `program`, with its target and tolerance (S)."""
    n = len(rows)
    out = empty(n)
    if n == 0:
        return out
    a = np.array([r[1:] for r in rows], dtype=float)
    fill(out, program=program, device=device, k=a[:, 0], reset=a[:, 1] < 0, amp_v=np.abs(a[:, 1]),
         width_s=a[:, 2], g_before=a[:, 3], g_after=a[:, 4], target_s=target, tol_s=tolerance,
         dt_s=np.where(a[:, 5] < 0, np.nan, a[:, 5] * 1e-6))
    mark_rereads(out)
    return out


def _descr() -> list[list[str]]:
    return [[name, TRACE_DTYPE[name].str] for name in TRACE_DTYPE.names or ()]


def _header(meta: Mapping[str, Any] | None) -> bytes:
    body = json.dumps({"format": FORMAT_VERSION, "record_size": RECORD_SIZE, "descr": _descr(),
                       "meta": dict(meta or {})}, separators=(",", ":"), default=str).encode()
    raw = MAGIC + body
    pad = (-(len(raw) + 1)) % _ALIGN
    return raw + b" " * pad + b"\n"


def read_header(path: str | os.PathLike[str]) -> tuple[int, dict[str, Any]]:
    """(header length in bytes, header JSON) of a trace file; RunFolderError if it is not one or
    its records are not TRACE_DTYPE."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            head = f.read(_MAX_HEADER)
    except OSError as exc:
        raise RunFolderError(f"{p}: cannot read the trace file ({exc.strerror}): check the path") from None
    if not head.startswith(MAGIC):
        raise RunFolderError(f"{p} is not a memhost trace file (no {MAGIC.strip().decode()} header): "
                             "give a traces.bin or the run folder that holds it")
    end = head.find(b"\n", len(MAGIC))
    if end < 0 or (end + 1) % _ALIGN:
        raise RunFolderError(f"{p}: the trace header is cut short or corrupt: the file cannot be "
                             "read; restore it from a copy")
    try:
        info = json.loads(head[len(MAGIC):end])
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RunFolderError(f"{p}: the trace header is corrupt: restore the file from a copy") from None
    if info.get("format") != FORMAT_VERSION or info.get("record_size") != RECORD_SIZE \
            or info.get("descr") != _descr():
        raise RunFolderError(f"{p}: trace format {info.get('format')} with another record layout "
                             f"than this memhost's (format {FORMAT_VERSION}): read it with the "
                             "memhost version that wrote it (meta.json host_version)")
    return end + 1, info


def _resolve(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    return p / TRACES if p.is_dir() else p


def count(path: str | os.PathLike[str]) -> int:
    """Complete records in a trace file (a torn last record not counted)."""
    p = _resolve(path)
    hl, _ = read_header(p)
    return (p.stat().st_size - hl) // RECORD_SIZE


def read_traces(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
                mmap: bool = True) -> np.ndarray:
    """The records of one or more trace files (or run folders holding traces.bin), in order, as
    one TRACE_DTYPE array. One file with mmap=True: a read-only memory map (no copy); several: a
    concatenated copy. A torn last record (a write cut short) is left out."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    parts = []
    for path in paths:
        p = _resolve(path)
        if not p.exists():
            raise RunFolderError(f"{p}: no such trace file: record traces with --trace, or give "
                                 "a traces.bin / run folder that has one")
        hl, _ = read_header(p)
        n = (p.stat().st_size - hl) // RECORD_SIZE
        if n == 0:
            parts.append(np.empty(0, dtype=TRACE_DTYPE))
        elif mmap:
            parts.append(np.memmap(p, dtype=TRACE_DTYPE, mode="r", offset=hl, shape=(n,)))
        else:
            with open(p, "rb") as f:
                f.seek(hl)
                parts.append(np.fromfile(f, dtype=TRACE_DTYPE, count=n))
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts) if parts else np.empty(0, dtype=TRACE_DTYPE)


class TraceWriter:
    """Appends records to a trace file, creating it (with `meta` in the header) if it does not
    exist. Reopening an existing file cuts a torn last record off first. Each append is flushed to
    the OS at once (a killed process loses nothing written), fsync'd at most once a second."""

    def __init__(self, path: str | os.PathLike[str], meta: Mapping[str, Any] | None = None):
        self.path = _resolve(path)
        self._last_sync = 0.0
        self._fh: BinaryIO
        if self.path.exists() and self.path.stat().st_size > 0:
            self.header_len, self.info = read_header(self.path)
            torn = (self.path.stat().st_size - self.header_len) % RECORD_SIZE
            self._fh = open(self.path, "r+b")
            if torn:
                self._fh.truncate(self.path.stat().st_size - torn)
            self._fh.seek(0, os.SEEK_END)
        else:
            hdr = _header(meta)
            self._fh = open(self.path, "w+b")
            self._fh.write(hdr)
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self.header_len, self.info = len(hdr), json.loads(hdr[len(MAGIC):].decode())

    def __len__(self) -> int:
        """Records in the file."""
        return (self._fh.tell() - self.header_len) // RECORD_SIZE

    def append(self, records: np.ndarray) -> None:
        """Append records (TRACE_DTYPE, or a structured array with the same field names)."""
        if records.dtype != TRACE_DTYPE:
            conv = empty(len(records))
            for name in TRACE_DTYPE.names or ():
                conv[name] = records[name]
            records = conv
        with interrupts.deferred():
            self._fh.write(np.ascontiguousarray(records).tobytes())
            self._fh.flush()
            now = time.monotonic()
            if now - self._last_sync > 1.0:
                os.fsync(self._fh.fileno())
                self._last_sync = now

    def keep_programs(self, keep: Any) -> int:
        """Cut the file back to its longest prefix whose records all belong to programs `keep`
        accepts (a callable on an array of program numbers, returning a bool array): the records of
        PROGRAMs a resumed run will do again. Returns the records removed."""
        self._fh.flush()
        n = len(self)
        if n == 0:
            return 0
        recs = np.memmap(self.path, dtype=TRACE_DTYPE, mode="r", offset=self.header_len, shape=(n,))
        ok = np.asarray(keep(np.asarray(recs["program"])), dtype=bool)
        bad = np.flatnonzero(~ok)
        del recs
        if len(bad) == 0:
            return 0
        cut = int(bad[0])
        with interrupts.deferred():
            self._fh.truncate(self.header_len + cut * RECORD_SIZE)
            self._fh.seek(0, os.SEEK_END)
            os.fsync(self._fh.fileno())
        return n - cut

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()

    def __enter__(self) -> "TraceWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
