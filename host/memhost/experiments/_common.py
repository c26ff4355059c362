"""Helpers shared by the experiments: board INFO for meta.json, new run folders."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

from ..runlog import RunFolder


def board_meta(board: Any) -> dict[str, Any]:
    """Board INFO as a JSON-ready dict, with the firmware version."""
    info = board.info
    d = dataclasses.asdict(info) if dataclasses.is_dataclass(info) and not isinstance(info, type) else dict(vars(info))
    d["firmware_version"] = getattr(info, "firmware_version", None)
    # the data came from an emulated board (the MicroPython sim HAL, or any emulator the host started)
    d["emulated"] = getattr(board, "emulator", None) is not None or getattr(info, "hal", "") == "sim"
    # the port the board answered on ('emu': an emulator this run started), so the run folders of
    # several boards (memhost.multiboard) say which board made each
    ser = getattr(getattr(board, "link", None), "ser", None)
    d["port"] = "emu" if getattr(board, "emulator", None) else getattr(ser, "port", None)
    return d


def check_resume_board(run: Any, board: Any) -> None:
    """Refuses to resume a run on a board with another protocol, firmware or emulated preset: one run
    folder must come from one setup, or its figures mix two instruments."""
    from ..errors import RunFolderError
    meta, info = run.meta, board.info
    then = meta.get("board") or {}
    was_fw = meta.get("firmware_version") or then.get("firmware_version")
    if meta.get("protocol") not in (None, info.protocol):
        raise RunFolderError(f"{run.path} was logged over protocol {meta['protocol']}, the board speaks "
                             f"{info.protocol}: flash the firmware the run used, or start a new run")
    if was_fw and was_fw != info.firmware_version:
        raise RunFolderError(f"{run.path} was programmed by firmware {was_fw}, the board runs "
                             f"{info.firmware_version}: flash {was_fw} to resume, or start a new run")
    if then.get("hal") == "sim" and then.get("preset") and then.get("preset") != info.preset:
        raise RunFolderError(f"{run.path} ran on the emulated preset {then['preset']!r}, this board "
                             f"emulates {info.preset!r}: resume with --preset {then['preset']}")


def new_run(board: Any, kind: str, config: dict[str, Any], columns: Sequence[str],
            out: str | Path = "runs", path: str | Path | None = None, preset: str | None = None,
            seed: int | None = None, argv: list[str] | None = None,
            **extra: Any) -> RunFolder:
    """A fresh run folder for `kind` with the board, preset and config in meta.json."""
    meta: dict[str, Any] = {
        "board": board_meta(board),
        "firmware_version": getattr(board.info, "firmware_version", None),
        "preset": preset if preset is not None else (getattr(board.info, "preset", "") or None),
        "seed": seed,
        "config": config,
    }
    meta.update(extra)
    if argv is not None:
        meta["argv"] = list(argv)
    return RunFolder.create(out, kind, meta, columns, path=path)


def finish(run: RunFolder, t0: float, status: str = "complete") -> None:
    """Records the final status; a run that failed before its first row leaves no folder."""
    run.close(status=status, wall_seconds=time.monotonic() - t0)
    if status == "failed":
        run.discard_if_empty()


@contextlib.contextmanager
def closing_run(run: RunFolder, t0: float) -> Iterator[RunFolder]:
    """Closes `run` when the block ends: status "interrupted" on Ctrl-C, "failed" on an error (both
    re-raised; a failed run without a row is removed), else "complete", with the wall time since
    t0 (time.monotonic)."""
    status = "failed"
    try:
        yield run
        status = "complete"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        finish(run, t0, status)
