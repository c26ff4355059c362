"""Closed-loop sweeps on Dask distributed (memhost.cluster): the same numbers whatever runs the
chunks, and a worker killed mid-run loses and duplicates nothing. One real LocalCluster of 2 worker
processes (each single-threaded) serves the module."""

from __future__ import annotations

import json
import os
import signal
import time

import numpy as np
import pytest

distributed = pytest.importorskip("distributed", reason="pip install 'memhost[cluster]'")

from memhost import cluster  # noqa: E402
from memhost.ann import datasets, evaluate, models, transfer as tr  # noqa: E402
from memhost.cli import main  # noqa: E402
from memhost.progress import Progress  # noqa: E402


@pytest.fixture(scope="module")
def dask2():
    ex = cluster.open_executor(workers=2)
    assert isinstance(ex, cluster.DaskExecutor) and ex.workers == 2
    yield ex
    ex.close()


@pytest.fixture(scope="module")
def tiny_mlp():
    d = datasets.load_mnist_5k()
    small = datasets.Dataset(d.x_train[:600], d.y_train[:600], d.x_test[:300], d.y_test[:300],
                             d.classes, d.name, d.fingerprint)
    params = models.train_mlp(small, hidden=16, epochs=2, seed=1)
    return models.MLPNet(params, small, {"cached": True})


def _model(executor=None, min_chunk: int = 4000) -> tr.ClosedLoopModel:
    m = tr.ClosedLoopModel("tio2x-seed", "adaptive", seed=0, executor=executor)
    m.min_chunk = min_chunk                 # several chunks per layer in a small test
    return m


def test_sweep_on_two_workers_equals_one_process(dask2, tiny_mlp):
    res, counts = [], []
    for ex in (cluster.SerialExecutor(), dask2):
        m = _model(ex)
        res.append(evaluate.sweep(tiny_mlp, [2, 4], m, trials=2, seed=3))
        counts.append((m.devices_programmed, m.pulses, m.reads, m.not_converged))
    assert res[0]["bits"] == res[1]["bits"]            # every trial's accuracy, bit for bit
    assert counts[0] == counts[1]
    assert counts[0][0] == 2 * 2 * 2 * (784 * 16 + 16 * 10)   # 2 bits x 2 trials x 2 devices/w
    # the trials really differ (errors are drawn, not zero)
    assert len({a for r in res[0]["bits"] for a in r["trials"]}) > 1


def test_cli_transfer_benches_equal_on_one_process_and_two_workers(dask2, capsys):
    outs = []
    for where in (["--jobs", "1"], ["--scheduler", dask2.address]):
        assert main(["bench", "transfer", "--devices", "30k", "--part", "8000", "--json"] + where) == 0
        outs.append(json.loads(capsys.readouterr().out))
    keys = ("devices", "pulses_per_device", "reads_per_device", "converged_fraction",
            "error_mean_lsb", "error_sigma_lsb", "learned_prior")
    assert [outs[0][k] for k in keys] == [outs[1][k] for k in keys]
    assert outs[0]["executor"]["kind"] == "serial"
    assert outs[1]["executor"] == {"kind": "dask", "workers": 2, "scheduler": dask2.address}
    outs = []
    for where in (["--jobs", "1"], ["--scheduler", dask2.address]):
        assert main(["bench", "ann", "--closed-loop", "--weights", "20k", "--bits", "4",
                     "--chunk", "8000", "--json"] + where) == 0
        outs.append(json.loads(capsys.readouterr().out))
    keys = ("devices", "pulses", "reads", "not_converged", "error_rms_lsb", "error_p999_abs_lsb")
    assert [outs[0][k] for k in keys] == [outs[1][k] for k in keys]
    assert outs[0]["devices"] == 40_000


class _KillOnFirst(Progress):
    """A progress sink that, at the first finished chunk, SIGKILLs a worker process that has chunks
    assigned (the nanny starts a new one; the scheduler reruns what the dead one held)."""

    def __init__(self, ex: cluster.DaskExecutor, total: int):
        super().__init__(total, "devices", enabled=False)
        self.ex = ex
        self.pids = ex.client.run(os.getpid)          # worker address -> pid
        self.killed: tuple[str, int] | None = None
        self.updates = 0

    def update(self, n: int = 1, error_lsb: float | None = None) -> None:
        super().update(n, error_lsb)
        self.updates += 1
        if self.killed is None:
            busy = {w: k for w, k in self.ex.client.processing().items() if k}
            if busy:
                w = sorted(busy)[0]
                self.killed = (w, len(busy[w]))
                os.kill(self.pids[w], signal.SIGKILL)


def test_killed_worker_loses_and_duplicates_nothing(dask2):
    levels = np.random.default_rng(4).integers(0, 16, 240_000).astype(np.int16)
    ref = _model(cluster.SerialExecutor(), 8000)
    m = _model(dask2, 8000)
    n_chunks = len(m.pieces(levels.size))
    assert n_chunks >= 8
    want = ref.draw(levels, 16, np.random.default_rng(9))
    bar = _KillOnFirst(dask2, levels.size)
    m.progress = bar
    got = m.draw(levels, 16, np.random.default_rng(9))
    assert bar.killed is not None and bar.killed[1] >= 1      # a worker died holding chunks
    np.testing.assert_array_equal(got, want)                   # nothing lost, nothing changed
    assert (m.devices_programmed, m.pulses, m.reads, m.not_converged) == \
        (ref.devices_programmed, ref.pulses, ref.reads, ref.not_converged)   # nothing twice
    assert bar.updates == n_chunks and bar.done == levels.size
    deadline = time.monotonic() + 60                            # the nanny brings a worker back
    while dask2.workers < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert dask2.workers == 2


def test_unreachable_scheduler_is_one_clear_error(capsys):
    rc = main(["bench", "transfer", "--devices", "1000", "--scheduler", "tcp://127.0.0.1:9",
               "--scheduler-timeout", "2"])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in err
    assert "dask scheduler" in err and len(err.strip().splitlines()) == 1


def test_bench_scaling_gives_the_same_errors_on_1_and_2_workers(capsys):
    assert main(["bench", "scaling", "--weights", "20k", "--bits", "4", "--chunk", "8000",
                 "--workers", "1,2", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert [r["workers"] for r in res["runs"]] == [1, 2]
    assert res["runs"][0]["devices"] == res["runs"][1]["devices"] == 40_000
    assert res["runs"][0]["chunks"] == 6 and res["same_results"] and res["same_counts"]
    assert all(r["wall_s"] > 0 and r["speedup_vs_first"] > 0 for r in res["runs"])
