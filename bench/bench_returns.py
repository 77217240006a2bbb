"""GAE throughput: pgfast.gae vs a NumPy loop over T (Stable-Baselines3's way) and a
torch loop, float32, in the same run. Ratios go to extra_info.

    make bench BENCH_ARGS="-k returns"

The tracked ratios compare like with like: pgfast.gae on one thread against the
one-thread loops, timed in interleaved rounds (best of each), so that the load of
the machine's other core and its memory traffic do not move them; the speed with
the automatic thread count is recorded beside them (``pgfast_threads_elements_per_s``).

Targets on the 2-core reference machine: >= 300x the NumPy loop at (2048, 1);
>= 3x at (256, 1024) on one thread; >= 50% of numpy.copyto bandwidth at (1000, 4096)
(automatic threads). Set PGFAST_BENCH_STRICT=1 to turn missed targets into failures.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import pgfast
from _peers import best_time, gae_numpy_loop, gae_torch_loop, interleaved_best

SHAPES = [(2048, 1), (128, 64), (256, 1024), (1000, 4096)]
TARGET_VS_NUMPY = {(2048, 1): 300.0, (256, 1024): 3.0}
ROUNDS = 3  # interleaved timing rounds (best of each implementation)
TARGET_BANDWIDTH = {(1000, 4096): 0.5}
STRICT = os.environ.get("PGFAST_BENCH_STRICT") == "1"


def _inputs(T, N, seed=0):
    rng = np.random.default_rng(seed)
    r, v, nv = (rng.normal(size=(T, N)).astype(np.float32) for _ in range(3))
    te = rng.random((T, N)) < 0.01
    tr = rng.random((T, N)) < 0.005
    return r, v, nv, te, tr


@pytest.fixture(autouse=True)
def _one_torch_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.mark.parametrize("T,N", SHAPES, ids=[f"{t}x{n}" for t, n in SHAPES])
def test_gae_pgfast_vs_peers(benchmark, T, N):
    r, v, nv, te, tr = _inputs(T, N)
    args = (r, v, nv, te, tr, 0.99, 0.95)
    adv, ret = benchmark(pgfast.gae, *args)

    # Peers, timed in this same run in interleaved rounds, and checked to compute the same thing.
    targs = tuple(torch.from_numpy(a) for a in (r, v, nv, te, tr)) + (0.99, 0.95)
    best = interleaved_best({"ours": lambda: pgfast.gae(*args, num_threads=1),
                             "numpy": lambda: gae_numpy_loop(*args),
                             "torch": lambda: gae_torch_loop(*targs)}, rounds=ROUNDS)
    t_ours, t_np, t_torch = best["ours"], best["numpy"], best["torch"]
    t_threads = best_time(lambda: pgfast.gae(*args))
    np.testing.assert_allclose(gae_numpy_loop(*args)[0], adv, rtol=1e-4, atol=1e-4)

    elems = T * N
    info = benchmark.extra_info
    info.update(
        shape=f"{T}x{N}",
        pgfast_elements_per_s=elems / t_ours,
        pgfast_threads_elements_per_s=elems / t_threads,
        threads=pgfast._C.plan_threads(T, N),
        numpy_loop_elements_per_s=elems / t_np,
        torch_loop_elements_per_s=elems / t_torch,
        speedup_vs_numpy_loop=t_np / t_ours,
        speedup_vs_torch_loop=t_torch / t_ours,
    )
    if (T, N) in TARGET_BANDWIDTH:
        # Bytes the kernel moves: reads r, v, nv (4 B each) and two bool flags,
        # writes advantages and returns (4 B each) = 22 B per element.
        src = np.ones(elems, np.float32)
        dst = np.empty_like(src)
        t_copy = best_time(lambda: np.copyto(dst, src))
        copy_bps = 2 * src.nbytes / t_copy
        kernel_bps = 22 * elems / min(t_ours, t_threads)
        info.update(copy_bytes_per_s=copy_bps, kernel_bytes_per_s=kernel_bps,
                    fraction_of_copy_bandwidth=kernel_bps / copy_bps)
    target = TARGET_VS_NUMPY.get((T, N))
    if target is not None:
        info["target_vs_numpy_loop"] = target
        if STRICT:
            assert t_np / t_ours >= target
    if STRICT and (T, N) in TARGET_BANDWIDTH:
        assert info["fraction_of_copy_bandwidth"] >= TARGET_BANDWIDTH[(T, N)]
    print(f"\n[gae {T}x{N}] pgfast {elems / t_ours:.3e} el/s on one thread, {elems / t_threads:.3e} on "
          f"{info['threads']}; "
          f"{t_np / t_ours:.1f}x numpy loop; {t_torch / t_ours:.1f}x torch loop"
          + (f"; {info['fraction_of_copy_bandwidth']:.0%} of copy bandwidth"
             if "fraction_of_copy_bandwidth" in info else ""))


@pytest.mark.parametrize("impl", ["numpy_loop", "torch_loop"])
def test_gae_peer_256x1024(benchmark, impl):
    """The peers on their own, so saved runs track them too."""
    r, v, nv, te, tr = _inputs(256, 1024)
    if impl == "numpy_loop":
        benchmark(gae_numpy_loop, r, v, nv, te, tr, 0.99, 0.95)
    else:
        t = [torch.from_numpy(a) for a in (r, v, nv, te, tr)]
        benchmark(gae_torch_loop, *t, 0.99, 0.95)


# --------------------------------------------------------------------------- n-step returns


def nstep_numpy_loop(r, nv, te, tr, gamma, n):
    """n-step returns in NumPy, the way one writes it without a kernel: G^(1), then
    n - 1 passes over the whole [T, N] array (cut rows keep their bootstrap)."""
    cut = te | tr
    cut[-1] = True
    g = r + np.where(te, 0.0, gamma * nv).astype(r.dtype)
    for _ in range(n - 1):
        g[:-1] = np.where(cut[:-1], g[:-1], r[:-1] + gamma * g[1:])
    return g


NSTEP_CASES = [(2048, 1, 5), (2048, 1, 20), (256, 1024, 5), (256, 1024, 20)]


@pytest.mark.parametrize("T,N,n", NSTEP_CASES, ids=[f"{t}x{m}-n{k}" for t, m, k in NSTEP_CASES])
def test_nstep_pgfast_vs_numpy_loop(benchmark, T, N, n):
    r, _, nv, te, tr = _inputs(T, N)
    args = (r, nv, te, tr, 0.99, n)
    g = benchmark(pgfast.nstep_returns, *args)
    t_np = best_time(lambda: nstep_numpy_loop(*args))
    t_ours = best_time(lambda: pgfast.nstep_returns(*args))
    np.testing.assert_allclose(nstep_numpy_loop(*args), g, rtol=1e-4, atol=1e-4)
    benchmark.extra_info.update(shape=f"{T}x{N}", n=n, pgfast_elements_per_s=T * N / t_ours,
                                numpy_loop_elements_per_s=T * N / t_np, speedup_vs_numpy_loop=t_np / t_ours)
    print(f"\n[nstep {T}x{N} n={n}] pgfast {T * N / t_ours:.3e} el/s; {t_np / t_ours:.1f}x numpy loop")
