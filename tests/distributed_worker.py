"""Worker script for tests/test_distributed.py, run under ``mpiexec -n N``.

``python distributed_worker.py MODE``: ``collectives`` checks every collective against NumPy,
``functional`` checks ``psum``/``pmean`` inside ``jit``/``grad``,
``ddp`` checks DistributedDataParallel + DistributedSampler training against single-process
training on the union of the batches, ``raise`` makes rank 1 fail while rank 0 waits,
``die`` kills rank 1 with SIGKILL.  A rank prints ``OK <mode>`` when all its checks pass.
"""

import os
import signal
import sys

import numpy as np

import fnarray as fa
import fnarray.compat as torch
import fnarray.distributed as dist
from fnarray.data import DataLoader, DistributedSampler, TensorDataset
from fnarray.nn.parallel import DistributedDataParallel


DEV = "cpu"  # where check_collectives puts its values: "cuda:<local rank>" for nccl


def arr(x):
    return fa.asarray(x, device=DEV)


def ten(x):
    return torch.tensor(x, device=DEV)


def data(rank, dtype, shape=(2, 3)):
    values = np.random.default_rng(100 + rank).standard_normal(shape) * 4
    return values.astype(dtype)


def check_collectives(r, n):
    for dtype in (np.float32, np.float64, np.int32, np.int64):
        every = [data(q, dtype) for q in range(n)]
        refs = {dist.ReduceOp.SUM: np.sum(every, 0), dist.ReduceOp.MAX: np.max(every, 0),
                dist.ReduceOp.MIN: np.min(every, 0), dist.ReduceOp.PRODUCT: np.prod(every, 0)}
        if np.dtype(dtype).kind == "f":
            refs[dist.ReduceOp.AVG] = np.sum(every, 0) / n
        tol = 1e-5 if dtype == np.float32 else 1e-12
        for op, ref in refs.items():
            got = dist.all_reduce(arr(every[r]), op=op)
            assert got.dtype == np.dtype(dtype), (op, got.dtype)
            np.testing.assert_allclose(np.asarray(got), ref.astype(dtype), rtol=tol)
            t = ten(every[r])
            assert dist.all_reduce(t, op=op) is None
            np.testing.assert_allclose(t.cpu().numpy(), ref.astype(dtype), rtol=tol)
        got = dist.broadcast(arr(every[r]), src=n - 1)
        np.testing.assert_array_equal(np.asarray(got), every[n - 1])
        t = ten(every[r])
        dist.broadcast(t, src=0)
        np.testing.assert_array_equal(t.cpu().numpy(), every[0])
        gathered = dist.all_gather(None, arr(every[r]))
        for q in range(n):
            np.testing.assert_array_equal(np.asarray(gathered[q]), every[q])
        outs = [torch.zeros(2, 3, dtype=t.dtype, device=DEV) for _ in range(n)]
        dist.all_gather(outs, ten(every[r]))
        for q in range(n):
            np.testing.assert_array_equal(outs[q].cpu().numpy(), every[q])
        chunks = [data(10 * r + q, dtype, (4,)) for q in range(n)]
        ref = np.sum([data(10 * q + r, dtype, (4,)) for q in range(n)], 0).astype(dtype)
        got = dist.reduce_scatter(None, [arr(c) for c in chunks])
        np.testing.assert_allclose(np.asarray(got), ref, rtol=tol)
        out = torch.zeros(4, dtype=ten(chunks[0]).dtype, device=DEV)
        dist.reduce_scatter(out, [ten(c) for c in chunks])
        np.testing.assert_allclose(out.cpu().numpy(), ref, rtol=tol)
    # float16 and bool travel through wider wire types and come back in their own dtype
    h = dist.all_reduce(arr(np.full(3, r + 1, np.float16)))
    assert h.dtype == np.float16 and np.all(np.asarray(h) == n * (n + 1) / 2)
    b = dist.all_reduce(arr(np.array([r == 0, False])), op=dist.ReduceOp.MAX)
    assert b.dtype == np.bool_ and np.asarray(b).tolist() == [True, False]
    # pytrees, async work handles, subgroups, barrier
    tree = {"a": arr(np.float64(r)), "b": [arr(np.arange(3) * r)]}
    work = dist.all_reduce(tree, async_op=True)
    summed = work.result()
    assert work.wait() and float(summed["a"]) == n * (n - 1) / 2
    np.testing.assert_array_equal(np.asarray(summed["b"][0]), np.arange(3) * n * (n - 1) // 2)
    t = ten([float(r)])
    work = dist.all_reduce(t, op=dist.ReduceOp.MAX, async_op=True)
    assert work.wait() and t.item() == n - 1
    group = dist.new_group([0, n - 1])
    got = dist.all_reduce(arr(np.float64(r + 1)), group=group)
    if r in (0, n - 1):
        assert float(got) == 1 + n and dist.get_world_size(group) == 2
    else:
        assert got is None and dist.get_rank(group) == -1
    try:
        dist.all_reduce(arr(np.arange(2)), op=dist.ReduceOp.AVG)
        raise AssertionError("AVG on integers must be refused")
    except TypeError as exc:
        assert "ReduceOp.AVG needs floating" in str(exc)
    dist.barrier()
    check_rooted(r, n)


def check_rooted(r, n):
    """reduce, gather, scatter, send/recv, all_gather_into_tensor, reduce_scatter_tensor."""
    every = [data(q, np.float64) for q in range(n)]
    last = n - 1
    got = dist.reduce(arr(every[r]), dst=last, op=dist.ReduceOp.MAX)
    assert (got is None) == (r != last)
    if r == last:
        np.testing.assert_array_equal(np.asarray(got), np.max(every, 0))
    t = ten(every[r])
    dist.reduce(t, dst=0, op=dist.ReduceOp.AVG)
    np.testing.assert_allclose(t.cpu().numpy(), np.mean(every, 0) if r == 0 else every[r],
                               rtol=1e-12)
    gathered = dist.gather(arr(every[r]), dst=last)
    assert (gathered is None) == (r != last)
    if r == last:
        for q in range(n):
            np.testing.assert_array_equal(np.asarray(gathered[q]), every[q])
    slots = [torch.zeros(2, 3, dtype=torch.float64, device=DEV) for _ in range(n)] if r == 0 \
        else None
    dist.gather(ten(every[r]), slots, dst=0)
    if r == 0:
        for q in range(n):
            np.testing.assert_array_equal(slots[q].cpu().numpy(), every[q])
    parts = [arr(data(50 + q, np.int64)) for q in range(n)] if r == 0 else None
    got = dist.scatter(arr(np.zeros((2, 3), np.int64)), parts, src=0)
    np.testing.assert_array_equal(np.asarray(got), data(50 + r, np.int64))
    t = torch.zeros(2, 3, dtype=torch.float64, device=DEV)
    dist.scatter(t, [ten(e) for e in every] if r == last else None, src=last)
    np.testing.assert_array_equal(t.cpu().numpy(), every[r])
    # a ring of point-to-point transfers, batched so the pairs cannot deadlock
    right, left = (r + 1) % n, (r - 1) % n
    t = torch.zeros(2, 3, dtype=torch.float64, device=DEV)
    sent, got = dist.batch_isend_irecv([dist.P2POp(dist.isend, ten(every[r]), right),
                                        dist.P2POp(dist.irecv, t, left)])
    sent.wait()
    got.wait()
    assert got.source == left
    np.testing.assert_array_equal(t.cpu().numpy(), every[left])
    if DEV == "cpu":  # MPI: separate non-blocking calls, and receiving from any rank
        sent = dist.isend(arr(every[r]), right, tag=7)  # the tag keeps later sends apart
        work = dist.irecv(arr(np.zeros((2, 3))), tag=7)
        sent.wait()
        assert work.source == left
        np.testing.assert_array_equal(np.asarray(work.result()), every[left])
    if r == 0:
        dist.send(arr(every[0]), dst=last)
    elif r == last:
        assert dist.recv(t, src=0) == 0
        np.testing.assert_array_equal(t.cpu().numpy(), every[0])
    joined = dist.all_gather_into_tensor(None, arr(every[r]))
    np.testing.assert_array_equal(np.asarray(joined), np.concatenate(every))
    stacked = torch.zeros(n, 2, 3, dtype=torch.float64, device=DEV)
    dist.all_gather_into_tensor(stacked, ten(every[r]))
    np.testing.assert_array_equal(stacked.cpu().numpy(), np.stack(every))
    big = [data(70 + q, np.float64, (2 * n, 3)) for q in range(n)]
    mine = np.sum(big, 0)[2 * r:2 * r + 2]
    np.testing.assert_allclose(np.asarray(dist.reduce_scatter_tensor(None, arr(big[r]))),
                               mine, rtol=1e-12)
    out = torch.zeros(2, 3, dtype=torch.float64, device=DEV)
    dist.reduce_scatter_tensor(out, ten(big[r]), op=dist.ReduceOp.AVG)
    np.testing.assert_allclose(out.cpu().numpy(), mine / n, rtol=1e-12)


def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 1)).double()


def check_ddp(r, n):
    rng = np.random.default_rng(7)
    x, y = torch.tensor(rng.standard_normal((24, 4))), torch.tensor(rng.standard_normal((24, 1)))
    dataset = TensorDataset(x, y)
    reference = model()
    torch.manual_seed(1000 + r)  # replicas start different: DDP must broadcast rank 0's
    replica = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(),
                                  torch.nn.Linear(5, 1)).double()
    if r == 0:
        replica.load_state_dict(reference.state_dict())
    in_flight = []  # buckets launched when backward reaches the first layer's weight
    replica[0].weight.register_post_accumulate_grad_hook(
        lambda p: in_flight.append((len(ddp._reducer.works), ddp._pending)))
    ddp = DistributedDataParallel(replica, bucket_cap_mb=40 / 2**20)  # several buckets
    assert len(ddp._reducer.buckets) == 4
    opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.1)
    sampler = DistributedSampler(dataset, shuffle=True, seed=3)
    shards = [DistributedSampler(dataset, n, q, shuffle=True, seed=3) for q in range(n)]
    for epoch in range(2):
        sampler.set_epoch(epoch)
        for s in shards:
            s.set_epoch(epoch)
        orders = [list(s) for s in shards]
        for step, (xb, yb) in enumerate(DataLoader(dataset, batch_size=4, sampler=sampler)):
            opt.zero_grad()
            torch.nn.functional.mse_loss(ddp(xb), yb).backward()
            opt.step()
            union = [i for o in orders for i in o[4 * step:4 * step + 4]]
            ref_opt.zero_grad()
            torch.nn.functional.mse_loss(reference(x[union]), y[union]).backward()
            ref_opt.step()
    # communication overlaps backward: the buckets of the second layer are in flight
    # before the walk reaches the first layer and before the end-of-backward callback
    assert in_flight and all(works >= 2 and pending for works, pending in in_flight), in_flight
    for p, q in zip(replica.parameters(), reference.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=0, atol=1e-10)
        copies = dist.all_gather(None, fa.asarray(p.detach().numpy()))
        for c in copies:
            np.testing.assert_array_equal(np.asarray(c), p.detach().numpy())
    # no_sync: local accumulation, averaged by the next synchronised backward
    opt.zero_grad()
    with ddp.no_sync():
        ddp(x[:2] * (r + 1)).sum().backward()
    local = replica[0].weight.grad.numpy().copy()
    every = dist.all_gather(None, fa.asarray(local))
    assert not np.allclose(np.asarray(every[0]), np.asarray(every[-1]))
    ddp(x[:2]).sum().backward()
    mine = replica[0].weight.grad.numpy()
    again = dist.all_gather(None, fa.asarray(mine))
    np.testing.assert_array_equal(np.asarray(again[0]), np.asarray(again[-1]))


def check_functional(r, n):
    """A data-parallel ``jit(value_and_grad)`` step with ``pmean`` equals the full-batch
    gradient computed by NumPy on the union of the ranks' data."""
    rng = np.random.default_rng(11)
    xs, ys, w0 = rng.standard_normal((n, 5, 3)), rng.standard_normal((n, 5)), rng.standard_normal(3)

    def local_loss(w, x, y):
        return fa.mean((x @ w - y) ** 2)

    @fa.jit
    def step(w, x, y):
        loss, grad = fa.value_and_grad(local_loss)(w, x, y)
        return dist.pmean(loss), dist.pmean({"w": grad})

    loss, grads = step(fa.asarray(w0), fa.asarray(xs[r]), fa.asarray(ys[r]))
    x_all, y_all = xs.reshape(-1, 3), ys.reshape(-1)
    residual = x_all @ w0 - y_all
    np.testing.assert_allclose(float(loss), np.mean(residual ** 2), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(grads["w"]), 2 * x_all.T @ residual / len(y_all),
                               rtol=1e-12)
    # the collective inside the differentiated function: its VJP runs the collective too
    total = fa.jit(fa.grad(lambda w: dist.psum(local_loss(w, fa.asarray(xs[r]),
                                                          fa.asarray(ys[r])))))
    local = 2 * xs[r].T @ (xs[r] @ w0 - ys[r]) / 5
    np.testing.assert_allclose(np.asarray(total(fa.asarray(w0))), n * local, rtol=1e-12)
    tangent = fa.jvp(dist.psum, (fa.asarray(np.float64(r)),), (fa.asarray(np.float64(1.0)),))
    assert float(tangent[0]) == n * (n - 1) / 2 and float(tangent[1]) == n


class TwoHeads(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = (torch.nn.Linear(2, 1).double() for _ in range(3))

    def forward(self, x, use_b):
        return self.a(x) + (self.b(x) if use_b else 0.0)  # self.c is never used


def check_unused_parameters(r, n):
    x = torch.ones(1, 2, dtype=torch.float64)
    strict = DistributedDataParallel(TwoHeads())
    try:
        strict(x, True).sum().backward()  # all used but c: the error names c and the fix
        raise AssertionError("a parameter without gradient must be refused")
    except RuntimeError as exc:
        assert "['c.weight', 'c.bias']" in str(exc) and "find_unused_parameters=True" in str(exc)
    ddp = DistributedDataParallel(TwoHeads(), find_unused_parameters=True)
    ddp(x * (r + 1), r == 0).sum().backward()
    mean_scale = sum(q + 1 for q in range(n)) / n
    np.testing.assert_allclose(ddp.module.a.weight.grad.numpy(), [[mean_scale] * 2])
    np.testing.assert_allclose(ddp.module.b.weight.grad.numpy(), [[1.0 / n] * 2])
    assert ddp.module.c.weight.grad is None


def check_sync_batch_norm(r, n):
    """SyncBatchNorm on ranks with different batch sizes equals single-process BatchNorm on
    the union batch: outputs, running statistics, input gradients and (summed over ranks)
    parameter gradients of the sum of the ranks' losses, in float64."""
    rng = np.random.default_rng(5)
    sizes = [3 + q for q in range(n)]
    starts = np.cumsum([0] + sizes)
    for shape, layer in (((4, 5, 5), torch.nn.BatchNorm2d), ((4,), torch.nn.BatchNorm1d)):
        x_all = rng.standard_normal((starts[-1],) + shape) * 3 + 1
        g_all = rng.standard_normal(x_all.shape)
        reference = layer(4, momentum=0.3).double()
        with torch.no_grad():
            reference.weight.copy_(torch.tensor(rng.standard_normal(4)))
            reference.bias.copy_(torch.tensor(rng.standard_normal(4)))
        sync = torch.nn.SyncBatchNorm.convert_sync_batchnorm(
            torch.nn.Sequential(layer(4, momentum=0.3).double()))[0]
        assert isinstance(sync, torch.nn.SyncBatchNorm)
        sync.load_state_dict(reference.state_dict())
        xs = torch.tensor(x_all, requires_grad=True)
        mine = slice(starts[r], starts[r + 1])
        x = torch.tensor(x_all[mine], requires_grad=True)
        for _ in range(2):  # two steps: the running statistics are blended twice
            for p in (*reference.parameters(), *sync.parameters(), xs, x):
                p.grad = None
            out_ref = reference(xs)
            (out_ref * torch.tensor(g_all)).sum().backward()
            out = sync(x)
            (out * torch.tensor(g_all[mine])).sum().backward()
            np.testing.assert_allclose(out.detach().numpy(), out_ref.detach().numpy()[mine],
                                       rtol=0, atol=1e-10)
            np.testing.assert_allclose(x.grad.numpy(), xs.grad.numpy()[mine], rtol=0,
                                       atol=1e-10)
            for p, q in zip(sync.parameters(), reference.parameters()):
                total = dist.all_reduce(fa.asarray(p.grad.numpy()))
                np.testing.assert_allclose(np.asarray(total), q.grad.numpy(), rtol=0,
                                           atol=1e-10)
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            np.testing.assert_allclose(getattr(sync, name).numpy(),
                                       getattr(reference, name).numpy(), rtol=0, atol=1e-10)
        sync.eval()
        reference.eval()
        np.testing.assert_allclose(sync(x).detach().numpy(), reference(xs).detach().numpy()[mine],
                                   rtol=0, atol=1e-12)


def check_nccl(r, n):
    """The nccl backend, run with the CuPy test double (tests/fake_gpu) on PYTHONPATH: the
    backend's own code drives ``cupy.cuda.nccl`` with device pointers, checked against the
    NumPy references of ``check_collectives`` and the cases NCCL lacks a type or op for."""
    global DEV
    from cupy.cuda import nccl
    from mpi4py import MPI

    from fnarray.distributed.nccl import local_rank
    world = dist._group(None)
    mine = int(os.environ["MPI_LOCALRANKID"])
    assert world.nccl.comm.device_id() == mine and str(world.nccl.device) == f"cuda:{mine}"
    os.environ.pop("MPI_LOCALRANKID")  # the node-local split gives the same local rank
    assert local_rank(MPI.COMM_WORLD) == mine
    DEV = str(world.nccl.device)
    check_collectives(r, n)
    every = [data(q, np.float64) for q in range(n)]
    for native_avg in (True, False):  # NCCL_AVG, then sum and divide (NCCL < 2.10)
        if not native_avg:
            del nccl.NCCL_AVG
        got = dist.all_reduce(arr(every[r]), op=dist.ReduceOp.AVG)
        np.testing.assert_allclose(np.asarray(got), np.mean(every, 0), rtol=1e-12)
    z = [data(q, np.float64) + 1j * data(q + 50, np.float64) for q in range(n)]
    got = dist.all_reduce(arr(z[r].astype(np.complex64)))
    assert got.dtype == np.complex64 and got.device is world.nccl.device
    np.testing.assert_allclose(np.asarray(got), np.sum(z, 0), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(dist.reduce_scatter(None, [arr(z[r])] * n)),
                               np.sum(z, 0), rtol=1e-12)
    flags = np.array([r == 0, True, False])
    assert np.asarray(dist.all_reduce(arr(flags))).tolist() == [True, True, False]
    assert np.asarray(dist.all_reduce(arr(flags), op=dist.ReduceOp.PRODUCT)).tolist() == \
        [n == 1, True, False]
    small = dist.all_reduce(arr(np.array([r + 1, -3], np.int16)))
    assert small.dtype == np.int16 and np.asarray(small).tolist() == [n * (n + 1) // 2, -3 * n]
    np.testing.assert_allclose(np.asarray(dist.psum(arr(every[r]))), np.sum(every, 0))
    # DistributedDataParallel on the GPU: broadcast from rank 0, buckets averaged by NCCL
    torch.manual_seed(r)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    net = net.double().to(DEV)
    ddp = DistributedDataParallel(net, bucket_cap_mb=40 / 2**20, find_unused_parameters=True)
    xb = ten(data(r, np.float64, (5, 3)))
    ddp(xb).sum().backward()
    grads = [p.grad.cpu().numpy() for p in net.parameters()]
    local = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    local = local.double().to(DEV)
    local.load_state_dict(net.state_dict())
    local(xb).sum().backward()
    for g, p in zip(grads, local.parameters()):
        assert p.grad.device == net[0].weight.device
        mean = dist.all_reduce(p.grad._value, op=dist.ReduceOp.AVG)
        np.testing.assert_allclose(g, np.asarray(mean), rtol=1e-12)
    errors = [(lambda: dist.all_reduce(fa.asarray(every[r])), "device cpu"),
              (lambda: dist.broadcast(torch.tensor(every[r]), 0), "device cpu"),
              (lambda: dist.all_reduce(fa.asarray(every[r], device=f"cuda:{mine + n}")),
               f"device cuda:{mine + n}"),
              (lambda: dist.all_reduce(arr(z[r]), op=dist.ReduceOp.MAX), "complex")]
    for fn, words in errors:
        try:
            fn()
            raise AssertionError(f"expected an error naming {words!r}")
        except (ValueError, TypeError) as exc:
            assert words in str(exc) and (DEV in str(exc) or "complex" in words), str(exc)


def main():
    global DEV
    mode = sys.argv[1]
    dist.init_process_group("nccl" if mode == "nccl" else "mpi", timeout=30)
    r, n = dist.get_rank(), dist.get_world_size()
    if mode == "collectives":
        check_collectives(r, n)
    elif mode == "nccl":
        check_nccl(r, n)
    elif mode == "ddp":
        check_ddp(r, n)
        check_unused_parameters(r, n)
    elif mode == "functional":
        check_functional(r, n)
        check_sync_batch_norm(r, n)
    elif mode == "raise":
        if r == 1:
            raise ValueError("rank 1 fails on purpose")
        dist.all_reduce(fa.asarray(np.ones(2)))  # would wait forever without the abort
    elif mode == "die":
        if r == 1:
            os.kill(os.getpid(), signal.SIGKILL)  # no exception hook runs: the launcher must act
        dist.all_reduce(fa.asarray(np.ones(2)))
    print(f"OK {mode}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
