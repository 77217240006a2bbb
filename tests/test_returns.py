"""Returns/advantage kernels: C++ vs plain-Python references, hand-computed cases,
numpy / torch CPU / torch CUDA agreement, and every bad-input error."""

import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import pgfast
from pgfast import _C
from pgfast import returns as R

TOL = {np.float32: dict(rtol=1e-5), np.float64: dict(rtol=1e-12)}


def _close(got, want, dtype, scale):
    """Relative closeness; `scale` bounds the magnitude of the partial sums, so
    cancellation near zero is judged against the size of what was summed."""
    rtol = TOL[dtype]["rtol"]
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=rtol, atol=rtol * scale)


# --------------------------------------------------------------------------- hypothesis


def _coeff():
    return st.one_of(st.just(0.0), st.just(1.0), st.floats(0.0, 1.0))


@st.composite
def problems(draw):
    T = draw(st.integers(1, 300))
    N = draw(st.integers(1, 64))
    one_d = draw(st.booleans()) and N == 1
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    p_term = draw(st.sampled_from([0.0, 0.02, 0.2]))
    p_trunc = draw(st.sampled_from([0.0, 0.02, 0.2]))
    shape = (T,) if one_d else (T, N)
    term = rng.random(shape) < p_term
    trunc = rng.random(shape) < p_trunc
    # Edge patterns: flags at t=0 and t=T-1, and both set on one step.
    if draw(st.booleans()):
        term[0] = True
        trunc[-1] = True
    if draw(st.booleans()):
        both = rng.random(shape) < 0.05
        term |= both
        trunc |= both
    arr = lambda: rng.normal(size=shape).astype(dtype)  # noqa: E731
    flag_dtype = draw(st.sampled_from([np.bool_, np.uint8, "data"]))
    fd = dtype if flag_dtype == "data" else flag_dtype
    return dict(
        rewards=arr(), values=arr(), next_values=arr(),
        terminated=term.astype(fd), truncated=trunc.astype(fd),
        gamma=draw(_coeff()), lam=draw(_coeff()), dtype=dtype,
        with_nv=draw(st.booleans()), threads=draw(st.sampled_from([0, 1, 2, 3])),
    )


def _scale(p, T):
    # Sum of |terms| is at most T * (max|r| + 2 max|v|).
    m = max(np.abs(p["rewards"]).max(), np.abs(p["values"]).max(), np.abs(p["next_values"]).max())
    return float(T * 3 * m + 1.0)


@settings(max_examples=150, deadline=None)
@given(problems())
def test_gae_matches_reference(p):
    adv, ret = pgfast.gae(p["rewards"], p["values"], p["next_values"], p["terminated"],
                          p["truncated"], p["gamma"], p["lam"], num_threads=p["threads"])
    want_adv, want_ret = R.gae_reference(p["rewards"], p["values"], p["next_values"],
                                         p["terminated"], p["truncated"], p["gamma"], p["lam"])
    assert adv.dtype == p["dtype"] and ret.dtype == p["dtype"]
    assert adv.shape == p["rewards"].shape
    s = _scale(p, len(p["rewards"]))
    _close(adv, want_adv, p["dtype"], s)
    _close(ret, want_ret, p["dtype"], s)


@settings(max_examples=150, deadline=None)
@given(problems())
def test_reward_to_go_matches_reference(p):
    nv = p["next_values"] if p["with_nv"] else None
    got = pgfast.reward_to_go(p["rewards"], p["terminated"], p["truncated"], p["gamma"], nv,
                              num_threads=p["threads"])
    want = R.reward_to_go_reference(p["rewards"], p["terminated"], p["truncated"], p["gamma"], nv)
    assert got.dtype == p["dtype"] and got.shape == p["rewards"].shape
    _close(got, want, p["dtype"], _scale(p, len(p["rewards"])))


@settings(max_examples=100, deadline=None)
@given(problems())
def test_discounted_cumsum_matches_reference(p):
    dones = p["terminated"]
    got = pgfast.discounted_cumsum(p["rewards"], dones, p["gamma"], num_threads=p["threads"])
    want = R.discounted_cumsum_reference(p["rewards"], dones, p["gamma"])
    assert got.dtype == p["dtype"]
    _close(got, want, p["dtype"], _scale(p, len(p["rewards"])))


@settings(max_examples=60, deadline=None)
@given(problems())
def test_torch_implementation_matches_kernel(p):
    """The torch path (used on CUDA) agrees with the C++ kernel, run here on CPU tensors."""
    t = {k: torch.from_numpy(np.ascontiguousarray(p[k])) for k in
         ("rewards", "values", "next_values", "terminated", "truncated")}
    adv_t, ret_t = R._gae_torch(t["rewards"], t["values"], t["next_values"], t["terminated"],
                                t["truncated"], p["gamma"], p["lam"])
    adv, ret = pgfast.gae(p["rewards"], p["values"], p["next_values"], p["terminated"],
                          p["truncated"], p["gamma"], p["lam"])
    s = _scale(p, len(p["rewards"]))
    rtol = TOL[p["dtype"]]["rtol"] * 10
    np.testing.assert_allclose(adv_t.numpy(), adv, rtol=rtol, atol=rtol * s)
    np.testing.assert_allclose(ret_t.numpy(), ret, rtol=rtol, atol=rtol * s)
    nv = t["next_values"] if p["with_nv"] else None
    g_t = R._reward_to_go_torch(t["rewards"], t["terminated"], t["truncated"], p["gamma"], nv)
    g = pgfast.reward_to_go(p["rewards"], p["terminated"], p["truncated"], p["gamma"],
                            None if nv is None else p["next_values"])
    np.testing.assert_allclose(g_t.numpy(), g, rtol=rtol, atol=rtol * s)
    y_t = R._discounted_cumsum_torch(t["rewards"], t["terminated"], p["gamma"])
    y = pgfast.discounted_cumsum(p["rewards"], p["terminated"], p["gamma"])
    np.testing.assert_allclose(y_t.numpy(), y, rtol=rtol, atol=rtol * s)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_next_values_where_terminated_are_ignored_even_if_not_finite(dtype):
    # a terminated step never bootstraps: whatever next_values holds there (e.g. V of a
    # NaN observation that ended the episode) must not reach the result
    rng = np.random.default_rng(0)
    T, N = 6, 3
    rew = rng.normal(size=(T, N)).astype(dtype)
    val = rng.normal(size=(T, N)).astype(dtype)
    nv = rng.normal(size=(T, N)).astype(dtype)
    term = np.zeros((T, N), bool)
    trunc = np.zeros((T, N), bool)
    term[1, 0] = term[T - 1, 1] = term[3, 2] = True
    trunc[3, 2] = True  # terminated and truncated at once: still no bootstrap
    bad = nv.copy()
    bad[1, 0], bad[T - 1, 1], bad[3, 2] = np.nan, np.inf, -np.inf
    want_adv, want_ret = R.gae_reference(rew, val, nv, term, trunc, 0.9, 0.8)
    want_g = R.reward_to_go_reference(rew, term, trunc, 0.9, nv)
    s = float(np.abs(rew).sum() + np.abs(val).sum() + np.abs(nv).sum())
    for kind in ("numpy", "torch", "torch-path"):
        if kind == "numpy":
            args = (rew, val, bad, term, trunc)
            gae, rtg = pgfast.gae, pgfast.reward_to_go
        else:
            args = tuple(torch.from_numpy(x) for x in (rew, val, bad, term, trunc))
            gae = pgfast.gae if kind == "torch" else (
                lambda *a: R._gae_torch(*a[:5], a[5], a[6]))
            rtg = pgfast.reward_to_go if kind == "torch" else (
                lambda r, te, tr, g, nv: R._reward_to_go_torch(r, te, tr, g, nv))
        adv, ret = gae(*args, 0.9, 0.8)
        g = rtg(args[0], args[3], args[4], 0.9, args[2])
        for got, want in ((adv, want_adv), (ret, want_ret), (g, want_g)):
            got = got.numpy() if isinstance(got, torch.Tensor) else got
            assert np.isfinite(got).all(), kind
            _close(got, want, dtype, s)
        # reward_to_go reads next_values only where a step is cut and not terminated
        unused = bad.copy()
        unused[0, :] = np.nan  # row 0 is cut nowhere
        nv_in = unused if kind == "numpy" else torch.from_numpy(unused)
        g = rtg(args[0], args[3], args[4], 0.9, nv_in)
        g = g.numpy() if isinstance(g, torch.Tensor) else g
        assert np.isfinite(g).all(), kind
        _close(g, want_g, dtype, s)


# --------------------------------------------------------------------------- hand-computed


def _flags(T, **at):
    f = {"terminated": np.zeros(T, bool), "truncated": np.zeros(T, bool)}
    for name, idx in at.items():
        f[name][idx] = True
    return f


def test_termination_never_bootstraps():
    r = np.array([1.0, 1.0, 1.0])
    f = _flags(3, terminated=[2])
    nv = np.array([10.0, 10.0, 1000.0])  # V(s_3) must be ignored: the episode ended
    g = pgfast.reward_to_go(r, f["terminated"], f["truncated"], 0.5, nv)
    np.testing.assert_array_equal(g, [1 + 0.5 * (1 + 0.5 * 1), 1 + 0.5 * 1, 1.0])
    v = np.zeros(3)
    nv_gae = np.array([0.0, 0.0, 1000.0])  # V(s_{t+1}) = 0 inside; V(s_3) ignored
    adv, ret = pgfast.gae(r, v, nv_gae, f["terminated"], f["truncated"], 0.5, 1.0)
    np.testing.assert_array_equal(adv, [1.75, 1.5, 1.0])
    np.testing.assert_array_equal(ret, adv)


def test_truncation_bootstraps_from_next_values():
    r = np.array([1.0, 1.0, 1.0, 1.0])
    f = _flags(4, truncated=[1])  # episode A = steps 0,1 cut by time limit; B = steps 2,3
    nv = np.array([0.0, 8.0, 0.0, 4.0])  # 8 = V(final obs of A); 4 = V(s_4) at rollout end
    g = pgfast.reward_to_go(r, f["terminated"], f["truncated"], 0.5, nv)
    np.testing.assert_array_equal(g, [1 + 0.5 * (1 + 0.5 * 8), 1 + 0.5 * 8,
                                      1 + 0.5 * (1 + 0.5 * 4), 1 + 0.5 * 4])
    # GAE with lam=1 and zero values equals the bootstrapped rewards-to-go.
    v = np.zeros(4)
    nv_gae = np.array([0.0, 8.0, 0.0, 4.0])
    adv, _ = pgfast.gae(r, v, nv_gae, f["terminated"], f["truncated"], 0.5, 1.0)
    np.testing.assert_array_equal(adv, g)


def test_truncated_and_terminated_on_same_step_does_not_bootstrap():
    r = np.array([2.0, 3.0])
    f = _flags(2, terminated=[0], truncated=[0])
    g = pgfast.reward_to_go(r, f["terminated"], f["truncated"], 0.9, np.array([100.0, 0.0]))
    np.testing.assert_array_equal(g, [2.0, 3.0])


def test_nothing_leaks_across_episode_boundary():
    # Changing anything after a boundary leaves everything before it unchanged.
    rng = np.random.default_rng(0)
    T, N = 12, 3
    r, v, nv = (rng.normal(size=(T, N)) for _ in range(3))
    te = np.zeros((T, N), bool)
    tr = np.zeros((T, N), bool)
    te[5, 0] = True
    tr[5, 1] = True
    adv1, _ = pgfast.gae(r, v, nv, te, tr, 0.99, 0.95)
    g1 = pgfast.reward_to_go(r, te, tr, 0.99, nv)
    r2, v2, nv2 = r.copy(), v.copy(), nv.copy()
    r2[6:] += 100.0
    v2[6:] -= 50.0
    nv2[6:] += 7.0
    adv2, _ = pgfast.gae(r2, v2, nv2, te, tr, 0.99, 0.95)
    g2 = pgfast.reward_to_go(r2, te, tr, 0.99, nv2)
    for n in (0, 1):
        np.testing.assert_array_equal(adv1[:6, n], adv2[:6, n])
        np.testing.assert_array_equal(g1[:6, n], g2[:6, n])
    # Column 2 had no boundary, so it does see the change.
    assert not np.array_equal(adv1[:6, 2], adv2[:6, 2])


def test_gae_lambda_zero_is_one_step_td():
    rng = np.random.default_rng(1)
    r, v, nv = (rng.normal(size=(5, 2)) for _ in range(3))
    te = np.zeros((5, 2), bool)
    te[2, 1] = True
    tr = np.zeros((5, 2), bool)
    adv, ret = pgfast.gae(r, v, nv, te, tr, 0.9, 0.0)
    np.testing.assert_allclose(adv, r + 0.9 * (1 - te) * nv - v, rtol=1e-15)
    np.testing.assert_allclose(ret, adv + v, rtol=1e-15)


def test_discounted_cumsum_hand_case():
    x = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    d = np.array([False, True, False, False])
    np.testing.assert_array_equal(pgfast.discounted_cumsum(x, d, 0.5),
                                  np.array([2.0, 2.0, 5.0, 4.0], np.float32))


# --------------------------------------------------------------------------- threads


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_threads_bit_identical(dtype):
    rng = np.random.default_rng(2)
    T, N = 257, 4099  # odd sizes: chunks do not divide evenly
    r, v, nv = (rng.normal(size=(T, N)).astype(dtype) for _ in range(3))
    te, tr = rng.random((T, N)) < 0.01, rng.random((T, N)) < 0.01
    assert _C.plan_threads(T, N, 3) == 3
    assert _C.plan_threads(T, N, 0) >= 1
    base = pgfast.gae(r, v, nv, te, tr, 0.99, 0.95, num_threads=1)
    for k in (2, 3, 7):
        got = pgfast.gae(r, v, nv, te, tr, 0.99, 0.95, num_threads=k)
        np.testing.assert_array_equal(got[0], base[0])
        np.testing.assert_array_equal(got[1], base[1])
        np.testing.assert_array_equal(pgfast.reward_to_go(r, te, tr, 0.99, nv, num_threads=k),
                                      pgfast.reward_to_go(r, te, tr, 0.99, nv, num_threads=1))
        np.testing.assert_array_equal(pgfast.discounted_cumsum(r, te, 0.9, num_threads=k),
                                      pgfast.discounted_cumsum(r, te, 0.9, num_threads=1))


def test_plan_threads_small_problem_is_single_threaded():
    assert _C.plan_threads(128, 8, 0) == 1
    assert _C.plan_threads(10, 4, 8) == 1  # fewer than one chunk of columns


# --------------------------------------------------------------------------- types


def _batch(xp, dtype=torch.float32, device="cpu"):
    rng = np.random.default_rng(3)
    arrs = [rng.normal(size=(16, 4)).astype(np.float32) for _ in range(3)]
    te = rng.random((16, 4)) < 0.1
    tr = rng.random((16, 4)) < 0.1
    if xp == "numpy":
        return arrs + [te, tr]
    return [torch.from_numpy(a).to(dtype=dtype, device=device) for a in arrs] + \
        [torch.from_numpy(te).to(device), torch.from_numpy(tr).to(device)]


def test_numpy_and_torch_cpu_agree_and_keep_type():
    n = _batch("numpy")
    t = _batch("torch")
    adv_n, ret_n = pgfast.gae(*n)
    adv_t, ret_t = pgfast.gae(*t)
    assert isinstance(adv_n, np.ndarray) and isinstance(adv_t, torch.Tensor)
    assert adv_t.dtype == torch.float32 and adv_t.device.type == "cpu"
    np.testing.assert_array_equal(adv_t.numpy(), adv_n)
    np.testing.assert_array_equal(ret_t.numpy(), ret_n)
    g_t = pgfast.reward_to_go(t[0], t[3], t[4], 0.99, t[2])
    assert isinstance(g_t, torch.Tensor)
    np.testing.assert_array_equal(g_t.numpy(), pgfast.reward_to_go(n[0], n[3], n[4], 0.99, n[2]))


def test_torch_cpu_inputs_are_shared_not_copied(monkeypatch):
    t = _batch("torch")
    seen = {}
    real = _C.gae

    def spy(r, v, nv, te, tr, g, lam, nt):
        seen["ptr"] = r.__array_interface__["data"][0]
        return real(r, v, nv, te, tr, g, lam, nt)

    monkeypatch.setattr(_C, "gae", spy)
    pgfast.gae(*t)
    assert seen["ptr"] == t[0].data_ptr()


def test_requires_grad_tensors_accepted():
    t = _batch("torch")
    t[1].requires_grad_(True)
    adv, _ = pgfast.gae(*t)
    assert not adv.requires_grad


def test_non_contiguous_inputs_are_made_contiguous():
    rng = np.random.default_rng(4)
    big = rng.normal(size=(16, 8))
    r = big[:, ::2]  # strided view
    assert not r.flags.c_contiguous
    te = np.zeros((16, 4), bool)
    got = pgfast.reward_to_go(r, te, te, 0.9)
    np.testing.assert_array_equal(got, pgfast.reward_to_go(np.ascontiguousarray(r), te, te, 0.9))


def test_float64_and_float_flags():
    n = _batch("numpy")
    n64 = [a.astype(np.float64) for a in n[:3]] + [n[3].astype(np.float64), n[4].astype(np.float32)]
    adv, _ = pgfast.gae(*n64)
    assert adv.dtype == np.float64
    want, _ = R.gae_reference(*n64)
    np.testing.assert_allclose(adv, want, rtol=1e-12, atol=1e-12)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_agrees_with_cpu():
    t_cpu = _batch("torch")
    t_gpu = _batch("torch", device="cuda")
    adv_c, ret_c = pgfast.gae(*t_cpu)
    adv_g, ret_g = pgfast.gae(*t_gpu)
    assert adv_g.device.type == "cuda" and adv_g.dtype == torch.float32
    torch.testing.assert_close(adv_g.cpu(), adv_c, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ret_g.cpu(), ret_c, rtol=1e-5, atol=1e-5)
    g_g = pgfast.reward_to_go(t_gpu[0], t_gpu[3], t_gpu[4], 0.99, t_gpu[2])
    g_c = pgfast.reward_to_go(t_cpu[0], t_cpu[3], t_cpu[4], 0.99, t_cpu[2])
    torch.testing.assert_close(g_g.cpu(), g_c, rtol=1e-5, atol=1e-5)
    y_g = pgfast.discounted_cumsum(t_gpu[0], t_gpu[3], 0.9)
    torch.testing.assert_close(y_g.cpu(), pgfast.discounted_cumsum(t_cpu[0], t_cpu[3], 0.9))


# --------------------------------------------------------------------------- bad input


def _good():
    r = np.zeros((4, 2), np.float32)
    f = np.zeros((4, 2), bool)
    return dict(rewards=r, values=r.copy(), next_values=r.copy(), terminated=f, truncated=f.copy())


@pytest.mark.parametrize("name", ["rewards", "values", "next_values", "terminated", "truncated"])
def test_gae_shape_mismatch_names_argument(name):
    kw = _good()
    kw[name] = kw[name][:3]
    with pytest.raises(ValueError, match=name):
        pgfast.gae(**kw)


@pytest.mark.parametrize("name", ["values", "next_values"])
def test_gae_dtype_mismatch_names_argument(name):
    kw = _good()
    kw[name] = kw[name].astype(np.float64)
    with pytest.raises(TypeError, match=name):
        pgfast.gae(**kw)


@pytest.mark.parametrize("bad", [np.zeros((4, 2), np.int64), np.zeros((4, 2), np.float16)])
def test_unsupported_dtype(bad):
    kw = _good()
    kw["rewards"] = bad
    with pytest.raises(TypeError, match="rewards"):
        pgfast.gae(**kw)


def test_bad_flag_dtype():
    kw = _good()
    kw["terminated"] = np.zeros((4, 2), np.int32)
    with pytest.raises(TypeError, match="terminated"):
        pgfast.gae(**kw)


@pytest.mark.parametrize("shape", [(), (2, 2, 2)])
def test_wrong_ndim(shape):
    x = np.zeros(shape, np.float32)
    with pytest.raises(ValueError, match="x"):
        pgfast.discounted_cumsum(x, np.zeros(shape, bool), 0.9)


def test_zero_steps():
    x = np.zeros((0, 3), np.float32)
    with pytest.raises(ValueError, match="T = 0"):
        pgfast.reward_to_go(x, np.zeros((0, 3), bool), np.zeros((0, 3), bool))


@pytest.mark.parametrize("value", [math.nan, math.inf, -0.1, 1.5])
@pytest.mark.parametrize("arg", ["gamma", "lam"])
def test_bad_coefficients(arg, value):
    kw = _good()
    kw[arg] = value
    with pytest.raises(ValueError, match=arg):
        pgfast.gae(**kw)


def test_gamma_not_a_number_type():
    with pytest.raises(TypeError, match="gamma"):
        pgfast.discounted_cumsum(np.zeros(3), np.zeros(3, bool), "0.9")


def test_mixed_numpy_and_torch():
    kw = _good()
    kw["values"] = torch.from_numpy(kw["values"])
    with pytest.raises(TypeError, match="values"):
        pgfast.gae(**kw)


def test_not_an_array():
    with pytest.raises(TypeError, match="rewards"):
        pgfast.reward_to_go([1.0, 2.0], np.zeros(2, bool), np.zeros(2, bool))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="mixed devices need a CUDA device")
def test_mixed_devices():
    t = _batch("torch")
    t[1] = t[1].cuda()
    with pytest.raises(ValueError, match="values"):
        pgfast.gae(*t)


def test_mixed_devices_meta():
    # Devices are compared even without a GPU: a 'meta' tensor is on another device.
    t = _batch("torch")
    t[2] = torch.empty((16, 4), device="meta")
    with pytest.raises(ValueError, match="next_values"):
        pgfast.gae(*t)


# The extension validates on its own too: nothing reaching C++ can read out of bounds.


def test_extension_rejects_what_python_layer_would_fix():
    r = np.zeros((8, 4))[:, ::2]
    f = np.zeros((8, 2), bool)
    with pytest.raises(ValueError, match="C-contiguous"):
        _C.reward_to_go(r, f, f, 0.9)
    with pytest.raises(ValueError, match="next_values"):
        _C.gae(np.zeros((8, 2)), np.zeros((8, 2)), np.zeros((7, 2)), f, f, 0.9, 0.9)
    with pytest.raises(TypeError, match="terminated"):
        _C.gae(np.zeros((8, 2)), np.zeros((8, 2)), np.zeros((8, 2)),
               np.zeros((8, 2), np.int16), f, 0.9, 0.9)
    with pytest.raises(ValueError, match="T = 0"):
        _C.discounted_cumsum(np.zeros((0,)), np.zeros((0,), bool), 0.9)
    with pytest.raises(ValueError, match="gamma"):
        _C.discounted_cumsum(np.zeros(3), np.zeros(3, bool), float("nan"))
    with pytest.raises(TypeError, match="dones"):
        _C.discounted_cumsum(np.zeros(3), [0, 0, 0], 0.5)


# --------------------------------------------------------------------------- reliability


def test_thread_requests_are_bounded():
    z = np.zeros((2, 64), np.float32)
    f = np.zeros((2, 64), bool)
    for bad in (10 ** 6, 1025, -1):
        with pytest.raises(ValueError, match="num_threads"):
            pgfast.gae(z, z, z, f, f, 0.99, 0.95, num_threads=bad)
        with pytest.raises(ValueError, match="num_threads"):
            _C.discounted_cumsum(z, f, 0.9, bad)
        with pytest.raises(ValueError, match="num_threads"):
            _C.reward_to_go(z, f, f, 0.9, None, bad)
    # accepted up to the limit, capped at 4x the hardware threads
    assert _C.plan_threads(2, 2 ** 20, 1024) <= 4 * (os.cpu_count() or 1)
    np.testing.assert_array_equal(pgfast.gae(z, z, z, f, f, num_threads=1024)[0], np.zeros_like(z))
    # no signed overflow in T * N
    assert 1 <= _C.plan_threads(2 ** 62, 2 ** 62, 0) <= 4 * (os.cpu_count() or 1)
    with pytest.raises(ValueError, match="T"):
        _C.plan_threads(-1, 4, 0)


_SPAWN_CHILD = textwrap.dedent('''
    import importlib.machinery, importlib.util, glob, os, resource, sys
    import numpy as np
    pkg = importlib.util.find_spec("pgfast").submodule_search_locations[0]
    path = sorted(glob.glob(os.path.join(pkg, "_C*.so")))[0]
    loader = importlib.machinery.ExtensionFileLoader("pgfast._C", path)
    spec = importlib.util.spec_from_file_location("pgfast._C", path, loader=loader)
    C = importlib.util.module_from_spec(spec); loader.exec_module(C)
    z = np.zeros((4, 2 ** 16), np.float32); b = z.astype(bool)
    ref = C.gae(z + 1, z, z, b, b, 0.99, 0.95, 1)[0]
    vm = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize")][0]
    # room for about two more 256 MiB thread stacks
    resource.setrlimit(resource.RLIMIT_AS, (vm * 1024 + (600 << 20), resource.RLIM_INFINITY))
    assert (C.gae(z + 1, z, z, b, b, 0.99, 0.95, 8)[0] == ref).all()
    e = C.ClassicVecEnv("CartPole-v1", 8 * 2048, num_threads=8)
    print("ok", e.threads_used)
''')


@pytest.mark.skipif(not sys.platform.startswith("linux") or "LD_PRELOAD" in os.environ,
                    reason="needs Linux rlimits (and no sanitizer runtime's address space)")
def test_refused_threads_fall_back_to_fewer():
    """When the OS refuses threads (here: an address-space limit that leaves room
    for two 256 MiB stacks), pools keep the threads that started, with the same
    results; it used to abort ('terminate called') or hang in the unwinding."""
    import resource

    def limits():
        resource.setrlimit(resource.RLIMIT_STACK, (256 << 20, resource.RLIM_INFINITY))

    r = subprocess.run([sys.executable, "-c", _SPAWN_CHILD], preexec_fn=limits,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("ok"), (r.returncode, r.stderr[-2000:])


@pytest.mark.parametrize("arg", range(3))
def test_byteswapped_arrays_are_rejected(arg):
    args = [np.ones((4, 3), np.float32) for _ in range(3)] + [np.zeros((4, 3), bool)] * 2
    swapped = args[arg].astype(args[arg].dtype.newbyteorder())
    args[arg] = swapped
    with pytest.raises(TypeError):
        _C.gae(*args, 0.99, 0.95)
    if arg == 0:
        with pytest.raises(TypeError):
            _C.discounted_cumsum(swapped, args[3], 0.9)
        with pytest.raises(TypeError):
            _C.reward_to_go(swapped, args[3], args[4], 0.9)
    if swapped.dtype.kind == "f":
        with pytest.raises(TypeError):
            pgfast.gae(*args)
