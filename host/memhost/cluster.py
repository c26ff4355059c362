"""Where the seeded chunks of a closed-loop sweep run: in this process, in local worker processes
(`--jobs N`) or on a Dask distributed cluster (`--workers N`: a LocalCluster on this machine;
`--scheduler ADDRESS`: a running `dask scheduler` with `dask worker`s on any number of machines).

Every backend has one call, ``map(fn, tasks, weights)``: the results come back in task order, each
task exactly once. A task carries its own seed (callers derive it from the run seed and the chunk
index, never from the worker), so the numbers do not depend on the backend or the worker count. On
Dask, a worker lost mid-run (killed, out of memory, unplugged machine) has its tasks rerun by the
scheduler on the others; a result is taken from the first completion of its task key and nothing
else, so nothing is lost or counted twice. See docs/ann-benchmark.md "Sweeps on a cluster".
"""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
import os
import uuid
import warnings
from typing import Any, Callable, Sequence

from .errors import MemhostError, UsageError
from .progress import Progress


class ClusterError(MemhostError):
    """The Dask cluster cannot be reached or a task failed on it."""


def add_cluster_args(p: Any, jobs_default: int = 1) -> None:
    """--jobs / --workers / --scheduler on a bench command (mutually exclusive)."""
    g = p.add_argument_group("where the chunks run (results do not depend on it)")
    x = g.add_mutually_exclusive_group()
    from .options import add_number
    add_number(x, "--jobs", default=None, lo=1, hi=1024, unit="processes",
               default_text=str(jobs_default), help="local worker processes")
    add_number(x, "--workers", default=None, metavar="N", lo=1, hi=1024, unit="processes",
               default_text="none",
               help="a Dask LocalCluster of N single-threaded worker processes on this machine "
                    "(needs pip install 'memhost[cluster]')")
    x.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="a running Dask scheduler, e.g. tcp://10.0.0.5:8786 (start it with "
                        "'dask scheduler' and workers with 'dask worker ADDRESS'; every worker needs "
                        "this memhost version installed)")
    add_number(g, "--scheduler-timeout", kind=float, default=20.0, metavar="S", lo=0, lo_open=True,
               hi=86400, unit="s", help="how long to wait for --scheduler to answer")
    p.set_defaults(_jobs_default=jobs_default)


class SerialExecutor:
    """Every task in this process, in order."""

    kind = "serial"

    def __init__(self) -> None:
        self.workers = 1

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any],
            weights: Sequence[int] | None = None, progress: Progress | None = None) -> list[Any]:
        out = []
        for i, t in enumerate(tasks):
            out.append(fn(t))
            if progress is not None:
                progress.update(weights[i] if weights is not None else 1)
        return out

    def close(self) -> None:
        pass

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "workers": 1}


class ProcessExecutor:
    """`jobs` spawned worker processes on this machine (concurrent.futures).

    A worker that dies (killed, out of memory) breaks the whole pool and every task still in it: the
    pool is started again and only the tasks without a result are run again (their seeds are their
    own, so the numbers do not change), at most MAX_RESTARTS times per map."""

    kind = "processes"
    MAX_RESTARTS = 3

    def __init__(self, jobs: int):
        self.workers = jobs
        self.restarts = 0           # pools started again after a worker died (all maps)
        self._pool = self._new_pool()

    def _new_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        import multiprocessing
        return concurrent.futures.ProcessPoolExecutor(
            self.workers, mp_context=multiprocessing.get_context("spawn"))

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any],
            weights: Sequence[int] | None = None, progress: Progress | None = None) -> list[Any]:
        from concurrent.futures.process import BrokenProcessPool
        out: list[Any] = [None] * len(tasks)
        todo = list(range(len(tasks)))
        restarts = 0
        while todo:
            futs = {self._pool.submit(fn, tasks[i]): i for i in todo}
            got: set[int] = set()
            for f in concurrent.futures.as_completed(futs):
                i = futs[f]
                try:
                    out[i] = f.result()
                except BrokenProcessPool:
                    continue            # its worker (or another in the pool) died: run it again
                got.add(i)
                if progress is not None:
                    progress.update(weights[i] if weights is not None else 1)
            todo = [i for i in todo if i not in got]
            if not todo:
                break
            restarts += 1
            if restarts > self.MAX_RESTARTS:
                raise ClusterError(
                    f"a worker process died {restarts} times; {len(todo)} of {len(tasks)} chunks "
                    "never finished (out of memory? use fewer --jobs or smaller chunks)")
            warnings.warn(f"a worker process died: {len(todo)} unfinished chunk(s) run again on "
                          "a new pool (the results do not change)", RuntimeWarning, stacklevel=2)
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            self.restarts += 1
        return out

    def close(self) -> None:
        self._pool.shutdown()

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "workers": self.workers, "restarts": self.restarts}


class DaskExecutor:
    """Tasks on a Dask distributed cluster: a LocalCluster of ``workers`` processes, or the running
    scheduler at ``scheduler``."""

    kind = "dask"

    def __init__(self, scheduler: str | None = None, workers: int | None = None,
                 connect_timeout_s: float = 20.0):
        try:
            import distributed
        except ImportError:
            raise UsageError("--workers/--scheduler need Dask distributed: "
                             "pip install 'memhost[cluster]'") from None
        self._distributed = distributed
        self.cluster: Any = None
        self.scheduler = scheduler
        if scheduler:
            try:
                self.client = distributed.Client(scheduler, timeout=f"{connect_timeout_s}s")
            except (OSError, TimeoutError, ValueError) as exc:
                raise ClusterError(f"cannot reach the Dask scheduler at {scheduler} ({exc}): start "
                                   "one with 'dask scheduler' and give the address it prints"
                                   ) from None
        else:
            n = int(workers or 1)
            # single-threaded worker processes: the twin is numpy on one core per chunk; no
            # dashboard (it needs bokeh and a free port), scheduler on a free local port
            with warnings.catch_warnings():
                # the scheduler's health-check HTTP server moves to a free port when 8787 is taken
                # (another cluster on this machine) and says so: nothing for the user to do
                warnings.filterwarnings("ignore", message="Port .* is already in use")
                self.cluster = distributed.LocalCluster(
                    n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                    silence_logs=logging.ERROR)
            self.client = distributed.Client(self.cluster)
        self._token = uuid.uuid4().hex[:12]
        self._calls = itertools.count()

    @property
    def workers(self) -> int:
        return len(self.client.scheduler_info().get("workers", {}))

    @property
    def address(self) -> str:
        return str(self.client.scheduler.address)

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any],
            weights: Sequence[int] | None = None, progress: Progress | None = None) -> list[Any]:
        call = next(self._calls)
        name = getattr(fn, "__name__", "task")
        keys = [f"memhost-{name}-{self._token}-{call}-{i}" for i in range(len(tasks))]
        # one submit per chunk: each carries its own data (a chunk's level codes), and no single
        # message holds the whole run's data (Dask warns about graphs over 10 MB)
        futs = [self.client.submit(fn, t, key=k, pure=False) for t, k in zip(tasks, keys)]
        index = {f.key: i for i, f in enumerate(futs)}
        out: list[Any] = [None] * len(tasks)
        seen: set[int] = set()
        done = self._distributed.as_completed(futs, with_results=True, raise_errors=False)
        del futs
        for fut, res in done:
            i = index[fut.key]
            if fut.status == "error":
                exc = fut.exception()
                if type(exc).__name__ == "KilledWorker":
                    raise ClusterError(f"chunk {i} killed every worker that ran it ({exc}): the "
                                       "workers run out of memory? give them more, or use "
                                       "smaller chunks") from None
                raise exc
            if i in seen:       # as_completed yields a key once; kept as a guard all the same
                continue
            seen.add(i)
            out[i] = res
            fut.release()
            if progress is not None:
                progress.note = f"{self.workers} workers"
                progress.update(weights[i] if weights is not None else 1)
        if len(seen) != len(tasks):
            raise ClusterError(f"only {len(seen)} of {len(tasks)} chunks came back from the cluster")
        return out

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "workers": self.workers}
        d["scheduler"] = self.scheduler or "LocalCluster"
        return d


Executor = SerialExecutor | ProcessExecutor | DaskExecutor


def open_executor(jobs: int | None = None, workers: int | None = None,
                  scheduler: str | None = None, timeout_s: float = 20.0) -> Executor:
    """The backend the options ask for: --scheduler, else --workers, else --jobs (1 = in-line)."""
    if scheduler:
        if not timeout_s > 0:
            raise UsageError(f"--scheduler-timeout {timeout_s}: give a positive number of seconds")
        return DaskExecutor(scheduler=scheduler, connect_timeout_s=timeout_s)
    if workers is not None:
        if workers < 1:
            raise UsageError(f"--workers {workers}: give at least 1")
        return DaskExecutor(workers=workers)
    j = 1 if jobs is None else int(jobs)
    if j < 1:
        raise UsageError(f"--jobs {j}: give at least 1")
    return ProcessExecutor(j) if j > 1 else SerialExecutor()


def executor_from_args(args: Any) -> Executor:
    jobs = args.jobs if args.jobs is not None else getattr(args, "_jobs_default", 1)
    return open_executor(jobs, args.workers, args.scheduler, args.scheduler_timeout)


def default_jobs() -> int:
    return os.cpu_count() or 1
