"""pgfast.nstep_returns: the C++ kernel vs its plain-Python reference, hand cases,
torch paths, thread-count independence and every bad-input error."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import pgfast
from pgfast import _C
from pgfast import returns as R


@st.composite
def problems(draw):
    T = draw(st.integers(1, 120))
    N = draw(st.integers(1, 40))
    one_d = draw(st.booleans()) and N == 1
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = (T,) if one_d else (T, N)
    term = rng.random(shape) < draw(st.sampled_from([0.0, 0.03, 0.3]))
    trunc = rng.random(shape) < draw(st.sampled_from([0.0, 0.03, 0.3]))
    if draw(st.booleans()):  # flags on the first and last rows, and both on one step
        term[0] = True
        trunc[-1] = True
        both = rng.random(shape) < 0.05
        term |= both
        trunc |= both
    flag = draw(st.sampled_from([np.bool_, np.uint8, "data"]))
    fd = dtype if flag == "data" else flag
    # n from 1 to beyond T
    n = draw(st.one_of(st.integers(1, 6), st.integers(1, T + 5), st.just(T), st.just(T + 1)))
    return dict(rewards=rng.normal(size=shape).astype(dtype),
                next_values=rng.normal(size=shape).astype(dtype),
                terminated=term.astype(fd), truncated=trunc.astype(fd),
                gamma=draw(st.one_of(st.just(0.0), st.just(1.0), st.floats(0.0, 1.0))),
                n=n, dtype=dtype, threads=draw(st.sampled_from([0, 1, 2, 3])))


def _args(p):
    return p["rewards"], p["next_values"], p["terminated"], p["truncated"], p["gamma"], p["n"]


@settings(max_examples=200, deadline=None)
@given(problems())
def test_nstep_matches_reference(p):
    got = pgfast.nstep_returns(*_args(p), num_threads=p["threads"])
    want = R.nstep_returns_reference(*_args(p))
    assert got.dtype == p["dtype"] and got.shape == p["rewards"].shape
    if p["dtype"] == np.float64:
        # the kernel does the reference's operations in the same order
        np.testing.assert_array_equal(got, want)
    else:
        scale = float(len(p["rewards"]) * 2 * max(np.abs(p["rewards"]).max(),
                                                  np.abs(p["next_values"]).max()) + 1)
        np.testing.assert_allclose(got.astype(np.float64), want, rtol=1e-5, atol=1e-5 * scale)


@settings(max_examples=60, deadline=None)
@given(problems())
def test_torch_implementation_matches_kernel(p):
    args = [torch.from_numpy(np.ascontiguousarray(a)) for a in _args(p)[:4]]
    want = pgfast.nstep_returns(*_args(p))
    got = R._nstep_returns_torch(*args, p["gamma"], p["n"])
    np.testing.assert_array_equal(got.numpy(), want)


def test_n_at_least_T_is_reward_to_go_with_next_values():
    rng = np.random.default_rng(0)
    r, nv = rng.normal(size=(50, 7)), rng.normal(size=(50, 7))
    te, tr = rng.random((50, 7)) < 0.05, rng.random((50, 7)) < 0.05
    want = pgfast.reward_to_go(r, te, tr, 0.97, nv)
    for n in (50, 51, 10_000):
        np.testing.assert_array_equal(pgfast.nstep_returns(r, nv, te, tr, 0.97, n), want)


def test_n_one_is_td0_target():
    rng = np.random.default_rng(1)
    r, nv = rng.normal(size=(30, 3)), rng.normal(size=(30, 3))
    te, tr = rng.random((30, 3)) < 0.2, rng.random((30, 3)) < 0.2
    got = pgfast.nstep_returns(r, nv, te, tr, 0.9, 1)
    np.testing.assert_array_equal(got, r + np.where(te, 0.0, 0.9 * nv))


def test_hand_case():
    r = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    nv = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
    te = np.array([0, 0, 1, 0, 0], dtype=bool)
    tr = np.array([0, 0, 0, 1, 0], dtype=bool)
    g = 0.5
    got = pgfast.nstep_returns(r, nv, te, tr, g, 2)
    want = [1 + g * (2 + g * 20),  # two rewards, then V(s_2) = next_values[1]
            2 + g * 3,             # stops at the termination: no bootstrap
            3.0,                   # terminated
            4 + g * 40,            # truncated: bootstrap from V(final obs)
            5 + g * 50]            # last row: bootstrap
    np.testing.assert_allclose(got, want)


def test_nonfinite_next_value_at_termination_is_ignored():
    r = np.ones(4, np.float32)
    nv = np.array([1.0, np.nan, 1.0, 1.0], np.float32)
    te = np.array([0, 1, 0, 0], bool)
    tr = np.zeros(4, bool)
    for n in (1, 2, 3, 10):
        assert np.isfinite(pgfast.nstep_returns(r, nv, te, tr, 0.9, n)).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 3, 20, 400])
def test_threads_bit_identical(dtype, n):
    rng = np.random.default_rng(3)
    T, N = 300, 1000
    r, nv = rng.normal(size=(T, N)).astype(dtype), rng.normal(size=(T, N)).astype(dtype)
    te, tr = rng.random((T, N)) < 0.01, rng.random((T, N)) < 0.01
    assert _C.plan_threads(T, N, 3) == 3
    base = pgfast.nstep_returns(r, nv, te, tr, 0.99, n, num_threads=1)
    for k in (0, 2, 3, 7):
        np.testing.assert_array_equal(pgfast.nstep_returns(r, nv, te, tr, 0.99, n, num_threads=k), base)


def test_numpy_and_torch_cpu_agree_and_keep_type():
    rng = np.random.default_rng(4)
    r, nv = rng.normal(size=(40, 5)).astype(np.float32), rng.normal(size=(40, 5)).astype(np.float32)
    te, tr = rng.random((40, 5)) < 0.1, rng.random((40, 5)) < 0.1
    a = pgfast.nstep_returns(r, nv, te, tr, 0.99, 5)
    t = pgfast.nstep_returns(*(torch.from_numpy(x) for x in (r, nv, te, tr)), 0.99, 5)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
    np.testing.assert_array_equal(t.numpy(), a)
    fortran = np.asfortranarray(r)
    strided = pgfast.nstep_returns(fortran, nv, te.astype(np.uint8), tr.astype(np.uint8), 0.99, 5)
    np.testing.assert_array_equal(strided, a)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_agrees_with_cpu():
    rng = np.random.default_rng(5)
    r, nv = rng.normal(size=(64, 9)), rng.normal(size=(64, 9))
    te, tr = rng.random((64, 9)) < 0.1, rng.random((64, 9)) < 0.1
    for n in (1, 4, 64, 100):
        want = pgfast.nstep_returns(r, nv, te, tr, 0.95, n)
        got = pgfast.nstep_returns(*(torch.from_numpy(x).cuda() for x in (r, nv, te, tr)), 0.95, n)
        assert got.is_cuda
        np.testing.assert_allclose(got.cpu().numpy(), want, rtol=1e-12)


# --------------------------------------------------------------------------- bad input


def _ok():
    r = np.zeros((5, 2))
    return [r, r.copy(), np.zeros((5, 2), bool), np.zeros((5, 2), bool)]


@pytest.mark.parametrize("n", [0, -1])
def test_n_below_one(n):
    with pytest.raises(ValueError, match="n must be >= 1"):
        pgfast.nstep_returns(*_ok(), 0.99, n)
    with pytest.raises(ValueError, match="n must be >= 1"):
        _C.nstep_returns(*_ok(), 0.99, n)


@pytest.mark.parametrize("n", [2.0, 2.5, "3", True, None])
def test_n_not_an_int(n):
    with pytest.raises(TypeError, match="n must be an int"):
        pgfast.nstep_returns(*_ok(), 0.99, n)


def test_n_numpy_int_accepted():
    pgfast.nstep_returns(*_ok(), 0.99, np.int64(3))


@pytest.mark.parametrize("i,name", [(1, "next_values"), (2, "terminated"), (3, "truncated")])
def test_shape_mismatch_names_argument(i, name):
    args = _ok()
    args[i] = np.zeros((5, 3), args[i].dtype)
    with pytest.raises(ValueError, match=name):
        pgfast.nstep_returns(*args, 0.99, 2)
    with pytest.raises(ValueError, match=name):
        _C.nstep_returns(*args, 0.99, 2)


def test_dtype_errors():
    args = _ok()
    args[1] = args[1].astype(np.float32)
    with pytest.raises(TypeError, match="next_values"):
        pgfast.nstep_returns(*args, 0.99, 2)
    with pytest.raises(TypeError, match="next_values"):
        _C.nstep_returns(*args, 0.99, 2)
    args = _ok()
    args[0] = args[0].astype(np.int64)
    with pytest.raises(TypeError, match="rewards must be float32 or float64"):
        pgfast.nstep_returns(*args, 0.99, 2)
    args = _ok()
    args[2] = args[2].astype(np.int32)
    with pytest.raises(TypeError, match="terminated"):
        pgfast.nstep_returns(*args, 0.99, 2)


@pytest.mark.parametrize("shape", [(), (2, 3, 4)])
def test_wrong_ndim(shape):
    a = np.zeros(shape)
    with pytest.raises(ValueError, match="rewards must be 1-D"):
        pgfast.nstep_returns(a, a, a.astype(bool), a.astype(bool), 0.99, 2)


def test_zero_steps_and_bad_gamma():
    a = np.zeros((0, 2))
    with pytest.raises(ValueError, match="T = 0"):
        pgfast.nstep_returns(a, a, a.astype(bool), a.astype(bool), 0.99, 2)
    for g in (1.5, -0.1, float("nan")):
        with pytest.raises(ValueError, match="gamma"):
            pgfast.nstep_returns(*_ok(), g, 2)


def test_extension_rejects_non_contiguous_and_non_arrays():
    args = _ok()
    args[0] = np.zeros((2, 5)).T
    with pytest.raises(ValueError, match="rewards must be C-contiguous"):
        _C.nstep_returns(*args, 0.99, 2)
    args = _ok()
    args[1] = [[0.0, 0.0]] * 5
    with pytest.raises(TypeError, match="next_values must be a numpy array"):
        _C.nstep_returns(*args, 0.99, 2)


# --------------------------------------------------------------------------- advantage option


class _Buf:
    def __init__(self, seed=0, T=20, N=3):
        g = torch.Generator().manual_seed(seed)
        self.rewards = torch.randn(T, N, generator=g)
        self.values = torch.randn(T, N, generator=g)
        self.next_values = torch.randn(T, N, generator=g)
        self.terminated = torch.rand(T, N, generator=g) < 0.1
        self.truncated = torch.rand(T, N, generator=g) < 0.1


def _algo(name, **fields):
    from pgfast import algos

    cls = algos.ALGOS[name]
    return cls.__new__(cls), cls.Config(**fields)


@pytest.mark.parametrize("algo", ["ppo", "trpo", "vpg"])
def test_advantage_option_in_every_algorithm(algo):
    from pgfast.algos.base import AlgoBase

    b = _Buf()
    for kind, want in [
        ("gae", pgfast.gae(b.rewards, b.values, b.next_values, b.terminated, b.truncated, 0.9, 0.8)),
        ("nstep", (pgfast.nstep_returns(b.rewards, b.next_values, b.terminated, b.truncated, 0.9, 3),)),
        ("mc", (pgfast.reward_to_go(b.rewards, b.terminated, b.truncated, 0.9, b.next_values),)),
    ]:
        a, cfg = _algo(algo, advantage=kind, nstep=3, gamma=0.9, gae_lambda=0.8)
        AlgoBase.__init__(a, None, cfg, torch.Generator())
        adv, ret = a.advantages(b)
        if kind == "gae":
            torch.testing.assert_close(adv, want[0], rtol=0, atol=0)
            torch.testing.assert_close(ret, want[1], rtol=0, atol=0)
        else:
            torch.testing.assert_close(ret, want[0], rtol=0, atol=0)
            torch.testing.assert_close(adv, want[0] - b.values, rtol=0, atol=0)


def test_vpg_without_baseline_keeps_plain_rewards_to_go():
    from pgfast.algos.base import AlgoBase

    b = _Buf(1)
    a, cfg = _algo("vpg", baseline=False, gamma=0.9)
    AlgoBase.__init__(a, None, cfg, torch.Generator())
    adv, ret = a.advantages(b)
    want = pgfast.reward_to_go(b.rewards, b.terminated, b.truncated, 0.9)
    torch.testing.assert_close(adv, want, rtol=0, atol=0)
    with pytest.raises(ValueError, match="needs a value baseline"):
        _algo("vpg", baseline=False, advantage="nstep")


@pytest.mark.parametrize("fields,match", [
    (dict(advantage="td"), "advantage must be one of gae, nstep, mc"),
    (dict(advantage="nsteps"), "did you mean nstep"),
    (dict(nstep=0), "nstep must be a positive int"),
    (dict(nstep=2.0), "nstep must be a positive int"),
])
def test_advantage_config_validation(fields, match):
    from pgfast.algos.ppo import PPOConfig

    with pytest.raises(ValueError, match=match):
        PPOConfig(**fields)


@pytest.mark.parametrize("kind", ["nstep", "mc"])
def test_training_with_advantage_option_runs(kind):
    run = pgfast.train("ppo", "CartPole-v1", total_timesteps=256, seed=0, num_envs=4, num_steps=32,
                       advantage=kind, nstep=4)
    assert len(run.history) >= 1


def test_thread_count_outside_limits_is_a_value_error():
    z = np.zeros((4, 3), np.float32)
    b = z.astype(bool)
    with pytest.raises(ValueError, match="num_threads"):
        pgfast.nstep_returns(z, z, b, b, 0.99, 2, num_threads=10**6)
    with pytest.raises(ValueError, match="num_threads"):
        pgfast.nstep_returns(z, z, b, b, 0.99, 2, num_threads=-1)
