"""fnarray.distributed, DistributedSampler and DistributedDataParallel with real MPI
processes on loopback (``mpiexec -n 2`` and ``-n 3`` on tests/distributed_worker.py).

Skipped when mpi4py or mpiexec (the ``distributed`` extra) is missing.  Every launch has a
hard timeout, so a hang fails the test instead of stalling CI.
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import fnarray as fa
from fnarray.data import DistributedSampler

WORKER = Path(__file__).with_name("distributed_worker.py")
_MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent) + os.pathsep
                        + os.environ.get("PATH", ""))

needs_mpi = pytest.mark.skipif(
    _MPIEXEC is None or not __import__("importlib").util.find_spec("mpi4py"),
    reason="needs the 'distributed' extra (mpi4py and mpiexec)")


FAKE_GPU = Path(__file__).with_name("fake_gpu")  # a NumPy-backed CuPy/NCCL test double


def _launch(n: int, mode: str, timeout: float = 60, fake_gpu: bool = False):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    if fake_gpu:
        env["PYTHONPATH"] = os.pathsep.join([str(FAKE_GPU), env.get("PYTHONPATH", "")])
    return subprocess.run([_MPIEXEC, "-n", str(n), sys.executable, str(WORKER), mode],
                          capture_output=True, text=True, timeout=timeout, env=env)


@needs_mpi
@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("mode", ["collectives", "ddp", "functional"])
def test_workers_pass_on_every_rank(n, mode):
    proc = _launch(n, mode)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count(f"OK {mode}") == n, proc.stdout + proc.stderr


@needs_mpi
def test_nccl_backend_on_the_cupy_test_double():
    """The nccl backend's code, run in real MPI processes against tests/fake_gpu (CuPy's
    NcclCommunicator implemented over mpi4py on host memory): bootstrap over MPI, one device
    per local rank, every collective and dtype vs NumPy, the types and ops NCCL lacks, the
    device errors."""
    proc = _launch(2, "nccl", fake_gpu=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("OK nccl") == 2, proc.stdout + proc.stderr


def test_nccl_without_cupy_names_the_gpu_extra(monkeypatch):
    import fnarray.distributed as dist
    monkeypatch.setitem(sys.modules, "cupy", None)  # what a machine without CuPy sees
    with pytest.raises(ImportError, match=r"needs CuPy.*'gpu' extra.*fnarray\[gpu\]"):
        dist.init_process_group("nccl")
    assert not dist.is_initialized()


@needs_mpi
def test_a_failing_rank_ends_the_job_nonzero_without_hanging():
    start = time.monotonic()
    proc = _launch(2, "raise", timeout=60)
    assert proc.returncode != 0
    assert "rank 1 fails on purpose" in proc.stderr
    assert "OK raise" not in proc.stdout
    assert time.monotonic() - start < 30


@needs_mpi
def test_a_killed_rank_ends_the_job_nonzero_without_hanging():
    start = time.monotonic()
    proc = _launch(2, "die", timeout=60)
    assert proc.returncode != 0 and "OK die" not in proc.stdout
    assert time.monotonic() - start < 30


def test_import_fnarray_does_not_import_mpi():
    code = "import fnarray, fnarray.distributed, sys; print('mpi4py' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_collectives_before_init_name_the_fix():
    import fnarray.distributed as dist
    assert not dist.is_initialized()
    with pytest.raises(RuntimeError, match="init_process_group"):
        dist.all_reduce(fa.ones(2))
    with pytest.raises(ValueError, match="unknown backend 'gloo'.*'nccl'"):
        dist.init_process_group("gloo")


def test_distributed_sampler_pads_and_splits_like_pytorch():
    shards = [list(DistributedSampler(range(10), 3, r, shuffle=False)) for r in range(3)]
    assert shards == [[0, 3, 6, 9], [1, 4, 7, 0], [2, 5, 8, 1]]
    dropped = [list(DistributedSampler(range(10), 3, r, shuffle=False, drop_last=True))
               for r in range(3)]
    assert dropped == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    a = DistributedSampler(range(10), 2, 0, seed=5)
    b = DistributedSampler(range(10), 2, 1, seed=5)
    assert sorted(list(a) + list(b)) == list(range(10)) and len(a) == 5
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    with pytest.raises(ValueError, match="invalid rank 3"):
        DistributedSampler(range(10), 3, 3)
    with pytest.raises(RuntimeError, match="pass num_replicas and rank"):
        DistributedSampler(range(10))


def test_reachable_under_the_compat_names():
    import fnarray.compat as torch
    import fnarray.distributed
    from fnarray.compat.nn.parallel import DistributedDataParallel
    from fnarray.compat.utils.data import DistributedSampler as CompatSampler
    assert torch.distributed is fnarray.distributed
    assert torch.nn.parallel.DistributedDataParallel is DistributedDataParallel
    assert CompatSampler is DistributedSampler
    with pytest.raises(RuntimeError, match="call fnarray.distributed.init_process_group"):
        DistributedDataParallel(torch.nn.Linear(2, 2))


@needs_mpi
def test_mnist_example_trains_data_parallel_and_resumes_on_one_or_two_ranks(tmp_path):
    """``mpiexec -n 2 python -m fnarray.examples.mnist`` on the offline fallback digits:
    rank 0 alone prints and checkpoints; the checkpoint resumes on 1 and on 2 ranks."""
    from fnarray.examples import mnist
    closed = "http://127.0.0.1:9"
    env = {k: v for k, v in os.environ.items() if k not in ("no_proxy", "NO_PROXY")}
    for name in ("home", "cache", "data", "work"):
        (tmp_path / name).mkdir()
    env.update(HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "cache"),
               FNARRAY_DATA=str(tmp_path / "data"), http_proxy=closed, https_proxy=closed,
               HTTP_PROXY=closed, HTTPS_PROXY=closed, OMP_NUM_THREADS="1")
    job = [sys.executable, "-m", "fnarray.examples.mnist", "--no-progress", "--out", "out",
           "--epochs", "1", "--fallback-size", "600", "200"]

    def run(ranks, *extra):
        cmd = ([_MPIEXEC, "-n", str(ranks)] if ranks > 1 else []) + job + list(extra)
        proc = subprocess.run(cmd, cwd=tmp_path / "work", env=env, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    out = run(2)
    assert "data-parallel on 2 MPI ranks" in out and out.count("epoch 1: train loss") == 1
    assert "resumed from" in run(1, "--resume")
    assert out.count("checkpoint:") == 1
    assert "epoch 3: train loss" in run(2, "--resume")
    history = mnist.torch.load(tmp_path / "work" / "out" / "checkpoint.fa")["history"]
    assert [e["epoch"] for e in history["epochs"]] == [1, 2, 3]
