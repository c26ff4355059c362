"""Helpers shared by the experiments: board INFO for meta.json, new run folders."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Sequence

from ..runlog import RunFolder


def board_meta(board: Any) -> dict[str, Any]:
    """Board INFO as a JSON-ready dict, with the firmware version."""
    info = board.info
    d = dataclasses.asdict(info) if dataclasses.is_dataclass(info) else dict(vars(info))
    d["firmware_version"] = getattr(info, "firmware_version", None)
    return d


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


def finish(run: RunFolder, t0: float, interrupted: bool = False) -> None:
    run.close(status="interrupted" if interrupted else "complete",
              wall_seconds=time.monotonic() - t0)
