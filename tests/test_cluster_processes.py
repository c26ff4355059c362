"""`--jobs N` (memhost.cluster.ProcessExecutor): a worker process that dies loses no chunk."""

from __future__ import annotations

import pytest

from memhost import cluster
from memhost.testing.chaos import always_die, die_once


def test_a_killed_worker_process_loses_no_chunk_and_runs_none_twice(tmp_path) -> None:
    marker = str(tmp_path / "died")
    ex = cluster.ProcessExecutor(2)
    try:
        with pytest.warns(RuntimeWarning, match="worker process died"):
            got = ex.map(die_once, [(marker, v) for v in range(12)])
        assert got == [2 * v for v in range(12)]        # every chunk, in task order
        assert ex.restarts == 1
        assert ex.map(die_once, [(marker, 5)]) == [10]  # the new pool keeps serving
    finally:
        ex.close()


def test_a_chunk_that_kills_every_worker_is_one_clear_error() -> None:
    ex = cluster.ProcessExecutor(2)
    try:
        with pytest.warns(RuntimeWarning), pytest.raises(cluster.ClusterError, match="fewer --jobs"):
            ex.map(always_die, [1, 2])
        assert ex.restarts == cluster.ProcessExecutor.MAX_RESTARTS
    finally:
        ex.close()
