"""Gymnasium conformance of the native classic-control vector envs.

Written from gymnasium's documented vector-env semantics and checked against
``gymnasium.make_vec(id, n, vectorization_mode="sync")`` itself, for every
native classic env of the registry and every autoreset mode (NEXT_STEP,
SAME_STEP, DISABLED): seeded trajectories equal bit for bit (observations,
rewards, flags, infos, random streams), ``np_random_seed``, the spec round
trip, rendering, argument handling and the exception types.
"""

from __future__ import annotations

import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import pgfast
from pgfast import _C
from pgfast.envs.native import ClosedEnvironmentError, ResetBoundsError, ResetNeeded

IDS = list(_C.classic_envs())
MODES = list(AutoresetMode)
STEPS = 3000

# reset options widening each env's start distribution (first reset only)
# reset options per env; an env not listed takes gymnasium's usual low/high bounds
# (options_for), so a new native env needs an entry only if its options are named otherwise
OPTIONS = {
    "CartPole-v1": {"low": -0.1, "high": 0.1},
    "Pendulum-v1": {"x_init": 2.0, "y_init": 0.5},
    "MountainCar-v0": {"low": -0.7, "high": -0.3},
    "MountainCarContinuous-v0": {"low": -0.7, "high": -0.3},
    "Acrobot-v1": {"low": -0.2, "high": 0.2},
}
# options whose range high - low overflows (numpy's uniform raises OverflowError)
OVERFLOWING = {
    "CartPole-v1": {"low": -1e308, "high": 1e308},
    "Pendulum-v1": {"x_init": 1e308},
    "MountainCar-v0": {"low": -1e308, "high": 1e308},
    "MountainCarContinuous-v0": {"low": -1e308, "high": 1e308},
    "Acrobot-v1": {"low": -1e308, "high": 1e308},
}


def options_for(env_id, overflowing=False):
    """A fresh dict of ``env_id``'s reset options (OPTIONS / OVERFLOWING, else low/high)."""
    table, default = ((OVERFLOWING, {"low": -1e308, "high": 1e308}) if overflowing
                      else (OPTIONS, {"low": -0.1, "high": 0.1}))
    return dict(table.get(env_id, default))


def pair(env_id, n, mode, **kwargs):
    ours = pgfast.make_vec(env_id, n, autoreset_mode=mode, **kwargs)
    ref = gym.make_vec(env_id, n, vectorization_mode="sync", vector_kwargs={"autoreset_mode": mode},
                       **kwargs)
    return ours, ref


def assert_info_equal(a, b, where=""):
    assert a.keys() == b.keys(), where
    for k in a:
        if isinstance(a[k], dict):
            assert_info_equal(a[k], b[k], where)
        elif a[k].dtype == object:
            assert [x is None for x in a[k]] == [x is None for x in b[k]], where
            for x, y in zip(a[k], b[k]):
                if x is not None:
                    assert x.dtype == y.dtype, where
                    np.testing.assert_array_equal(x, y, err_msg=where)
        else:
            assert a[k].dtype == b[k].dtype, where
            np.testing.assert_array_equal(a[k], b[k], err_msg=where)


def assert_same_step(r1, r2, where):
    for u, v in zip(r1[:4], r2[:4]):
        assert u.dtype == v.dtype and u.shape == v.shape, where
        np.testing.assert_array_equal(u, v, err_msg=where)
    assert_info_equal(r1[4], r2[4], where)


def same_generators(ours, ref):
    return [g.bit_generator.state for g in ours.np_random] == \
        [g.bit_generator.state for g in ref.np_random]


@pytest.mark.parametrize("mode", MODES, ids=[m.name for m in MODES])
@pytest.mark.parametrize("env_id", IDS)
def test_seeded_trajectory_equals_gymnasium_sync(env_id, mode):
    """STEPS random steps from reset(seed=...) with options: every output of
    every step equals gymnasium's, through autoresets (which draw from the env's
    own stream with the default distribution: options apply once), an unseeded
    reset, a reseed with a list holding None, and DISABLED mode's masked resets."""
    n = 4
    ours, ref = pair(env_id, n, mode, max_episode_steps=120)
    assert ours.metadata["autoreset_mode"] is ref.metadata["autoreset_mode"] is mode
    o1, i1 = ours.reset(seed=11, options=options_for(env_id))
    o2, i2 = ref.reset(seed=11, options=options_for(env_id))
    np.testing.assert_array_equal(o1, o2)
    assert i1 == i2 == {}
    assert ours.np_random_seed == ref.np_random_seed == tuple(range(11, 11 + n))
    space = ours.action_space
    space.seed(3)
    ended = 0
    for t in range(STEPS):
        if t == 1000:  # continue every stream
            (o1, i1), (o2, i2) = ours.reset(), ref.reset()
            np.testing.assert_array_equal(o1, o2)
            assert i1 == i2 == {}
        if t == 2000:  # reseed some envs, continue the others
            seeds = [None, 5, None, 2**70 + 1]
            np.testing.assert_array_equal(ours.reset(seed=seeds)[0], ref.reset(seed=seeds)[0])
        a = space.sample()
        r1, r2 = ours.step(a), ref.step(a)
        assert_same_step(r1, r2, f"{env_id} {mode} t={t}")
        done = r1[2] | r1[3]
        ended += int(done.sum())
        if mode == AutoresetMode.DISABLED and done.any():
            o1, i1 = ours.reset(options={"reset_mask": done})
            o2, i2 = ref.reset(options={"reset_mask": done.copy()})
            np.testing.assert_array_equal(o1, o2)
            assert i1 == i2 == {}
    assert ended > 0
    assert ours.np_random_seed == ref.np_random_seed
    assert ours.np_random_seed[3] == 2**70 + 1
    assert same_generators(ours, ref)


@pytest.mark.parametrize("env_id", IDS)
def test_np_random_seed_like_gymnasium(env_id):
    n = 3
    ours = pgfast.make_vec(env_id, n)
    seeds = ours.np_random_seed  # never seeded: fresh 128-bit OS seeds, as np_random()
    assert len(set(seeds)) == n and all(0 <= s < 2**128 for s in seeds)
    assert seeds == ours.np_random_seed  # stable
    ours.reset()
    assert ours.np_random_seed == seeds  # an unseeded reset continues the streams
    ours.reset(seed=7)
    assert ours.np_random_seed == (7, 8, 9)
    ours.reset(seed=[1, None, 2**64 + 1])
    assert ours.np_random_seed == (1, 8, 2**64 + 1)
    ref = gym.make_vec(env_id, n, vectorization_mode="sync")
    ref.reset(seed=7)
    ref.reset(seed=[1, None, 2**64 + 1])
    ref.reset()
    ours.reset()
    assert same_generators(ours, ref)
    # a masked reset seeds the masked envs only
    ours.reset(seed=100, options={"reset_mask": np.array([False, True, False])})
    assert ours.np_random_seed == (1, 101, 2**64 + 1)


@pytest.mark.parametrize("mode", MODES, ids=[m.name for m in MODES])
@pytest.mark.parametrize("env_id", IDS)
def test_spec_round_trip(env_id, mode):
    kwargs = {"g": 3.5} if env_id == "Pendulum-v1" else {}
    env = pgfast.make_vec(env_id, 3, autoreset_mode=mode, max_episode_steps=40, **kwargs)
    spec = env.spec
    assert spec.id == env_id and spec.max_episode_steps == 40
    assert spec.kwargs["num_envs"] == 3 and spec.kwargs["autoreset_mode"] is mode
    for make in (gym.make_vec, pgfast.make_vec):
        twin = make(spec)
        assert type(twin) is type(env) and twin.num_envs == 3
        assert twin.metadata["autoreset_mode"] is mode
        assert twin.spec.max_episode_steps == 40 and twin.spec.kwargs["num_envs"] == 3
        env.reset(seed=1)
        twin.reset(seed=1)
        env.action_space.seed(0)
        for t in range(150):
            a = env.action_space.sample()
            r1, r2 = env.step(a), twin.step(a)
            assert_same_step(r1, r2, f"{env_id} t={t}")
            done = r1[2] | r1[3]
            if mode == AutoresetMode.DISABLED and done.any():
                env.reset(options={"reset_mask": done})
                twin.reset(options={"reset_mask": done})


@pytest.mark.parametrize("env_id", IDS)
def test_render_rgb_array_like_gymnasium(env_id):
    n = 2
    ours, ref = pair(env_id, n, AutoresetMode.NEXT_STEP, render_mode="rgb_array")
    assert ours.render_mode == ref.render_mode == "rgb_array"
    assert "rgb_array" in ours.metadata["render_modes"]
    assert ours.metadata["render_fps"] == ref.metadata["render_fps"]
    ours.reset(seed=4)
    ref.reset(seed=4)
    f1, f2 = ours.render(), ref.render()
    assert isinstance(f1, tuple) and len(f1) == len(f2) == n
    for a, b in zip(f1, f2):
        assert a.dtype == b.dtype == np.uint8 and a.shape == b.shape and a.shape[2] == 3
        np.testing.assert_array_equal(a, b)  # same state, same drawing
    ours.close()
    ref.close()


def test_render_without_mode_returns_nones_with_a_warning():
    ours, ref = pair("CartPole-v1", 2, AutoresetMode.NEXT_STEP)
    ours.reset(seed=0)
    ref.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        r1 = ours.render()
    with pytest.warns(UserWarning):
        r2 = ref.render()
    assert r1 == r2 == (None, None)


def _error(fn, *args):
    try:
        fn(*args)
    except Exception as e:  # noqa: BLE001 - the type is the result
        return e
    return None


@pytest.mark.parametrize("env_id", IDS)
def test_error_types_are_gymnasiums(env_id):
    """Each misuse raises in pgfast an exception that is an instance of the type
    gymnasium's sync vector env raises for it."""
    n = 3
    ours, ref = pair(env_id, n, AutoresetMode.NEXT_STEP)
    for env in (ours, ref):  # step before reset
        assert isinstance(_error(env.step, env.action_space.sample()), gym.error.ResetNeeded)
    assert isinstance(_error(ours.step, ours.action_space.sample()), ResetNeeded)
    ours.reset(seed=0)
    ref.reset(seed=0)
    discrete = isinstance(ours.single_action_space, gym.spaces.Discrete)
    wrong_len = np.zeros(n - 1, np.int64) if discrete else np.zeros((n - 1, 1), np.float32)
    cases = {
        "scalar action": lambda e: e.step(0),
        "too few actions": lambda e: e.step(wrong_len),
        "reset_mask not an array": lambda e: e.reset(options={"reset_mask": [True] * n}),
        "reset_mask wrong shape": lambda e: e.reset(options={"reset_mask": np.ones(n + 1, bool)}),
        "reset_mask wrong dtype": lambda e: e.reset(options={"reset_mask": np.ones(n, np.int64)}),
        "reset_mask all False": lambda e: e.reset(options={"reset_mask": np.zeros(n, bool)}),
        "negative seed": lambda e: e.reset(seed=-1),
        "seed list wrong length": lambda e: e.reset(seed=[1] * (n + 1)),
        "float seed": lambda e: e.reset(seed=1.5),
        "overflowing reset range": lambda e: e.reset(seed=0, options=options_for(env_id, overflowing=True)),
        "non-number option": lambda e: e.reset(options={next(iter(options_for(env_id))): "x"}),
    }
    for name, call in cases.items():
        with np.errstate(over="ignore"):  # numpy warns before its OverflowError
            theirs = _error(call, ref)
        mine = _error(call, ours)
        assert theirs is not None, name
        assert isinstance(mine, type(theirs)), f"{name}: {mine!r} is not a {type(theirs).__name__}"
    # pgfast's own policy holds too: values are ValueError, the lifecycle RuntimeError
    assert isinstance(_error(lambda: ours.reset(seed=-1)), ValueError)
    err = _error(lambda: ours.reset(options=options_for(env_id, overflowing=True)))
    assert isinstance(err, ResetBoundsError) and isinstance(err, ValueError)
    assert isinstance(err, OverflowError) and "not finite" in str(err)


@pytest.mark.parametrize("env_id", IDS)
def test_disabled_mode_needs_the_masked_reset(env_id):
    """DISABLED: stepping while an ended env was not reset fails as in gymnasium
    (AssertionError) without changing any env; the masked reset fixes it."""
    n = 4
    ours, ref = pair(env_id, n, AutoresetMode.DISABLED, max_episode_steps=5)
    ours.reset(seed=0)
    ref.reset(seed=0)
    a = ours.action_space.sample()
    for _ in range(5):
        r1, r2 = ours.step(a), ref.step(a)
    assert r1[3].all() and r2[3].all()
    state = ours.get_state()
    with pytest.raises(AssertionError):
        ref.step(a)
    with pytest.raises(AssertionError, match="reset_mask"):
        ours.step(a)
    with pytest.raises(RuntimeError):
        ours.step(a)
    np.testing.assert_array_equal(ours.get_state(), state)
    mask = np.array([True, True, False, True])
    ours.reset(options={"reset_mask": mask})
    with pytest.raises(AssertionError):  # env 2 still ended
        ours.step(a)
    ours.reset(options={"reset_mask": ~mask})
    ours.step(a)


@pytest.mark.parametrize("env_id", IDS)
def test_first_reset_may_be_masked(env_id):
    """A first reset with a reset_mask resets the masked envs (drawing what
    gymnasium's env i draws); stepping waits until every env was reset.
    (gymnasium's SyncVectorEnv itself fails here while batching the
    observations of the envs never reset.)"""
    n = 3
    env = pgfast.make_vec(env_id, n)
    mask = np.array([True, False, True])
    obs, info = env.reset(seed=3, options={"reset_mask": mask})
    assert info == {}
    for i in np.flatnonzero(mask):
        single = gym.make(env_id)
        np.testing.assert_array_equal(obs[i], single.reset(seed=3 + int(i))[0])
    assert np.isfinite(obs[1]).all()  # never reset: the observation of the all-zero state
    with pytest.raises(ResetNeeded):
        env.step(env.action_space.sample())
    obs, _ = env.reset(seed=[None, 4, None], options={"reset_mask": ~mask})
    np.testing.assert_array_equal(obs[1], gym.make(env_id).reset(seed=4)[0])
    env.step(env.action_space.sample())


@pytest.mark.parametrize("env_id", IDS)
def test_overflowing_options_rejected_without_change(env_id):
    env = pgfast.make_vec(env_id, 2, seed=0)
    state, seeds = env.get_state(), env.np_random_seed
    gens = [g.bit_generator.state for g in env.np_random]
    with pytest.raises(ResetBoundsError):
        env.reset(seed=5, options=options_for(env_id, overflowing=True))
    np.testing.assert_array_equal(env.get_state(), state)
    assert env.np_random_seed == seeds
    assert [g.bit_generator.state for g in env.np_random] == gens


def test_close_then_reset_documented_difference():
    """After close() pgfast raises ClosedEnvironmentError (a RuntimeError), as
    gymnasium's AsyncVectorEnv; gymnasium's SyncVectorEnv keeps working."""
    env = pgfast.make_vec("CartPole-v1", 2, seed=0)
    env.close()
    assert env.closed
    for call in (env.reset, lambda: env.step(np.zeros(2, np.int64)), lambda: env.np_random_seed):
        with pytest.raises(ClosedEnvironmentError):
            call()
        with pytest.raises(gym.error.ClosedEnvironmentError):
            call()
    env.close()  # idempotent


def test_make_vec_accepts_what_gymnasium_make_vec_accepts():
    env = pgfast.make_vec("CartPole-v1", num_envs=np.int64(4),
                          vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP})
    assert type(env).__module__ == "pgfast.envs.classic" and env.num_envs == 4
    assert env.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    env = pgfast.make_vec("CartPole-v1", 2, autoreset_mode=AutoresetMode.DISABLED)
    assert env.metadata["autoreset_mode"] is AutoresetMode.DISABLED
    env = pgfast.make_vec("CartPole-v1", 2, autoreset_mode="Disabled")  # the enum's value
    assert env.metadata["autoreset_mode"] is AutoresetMode.DISABLED
    env = pgfast.make_vec("CartPole-v1", 2, vector_kwargs={"copy": False})
    assert env.copy is False
    # wrappers wrap single envs: gymnasium's vector env does that
    env = pgfast.make_vec("CartPole-v1", 2, wrappers=[gym.wrappers.RecordEpisodeStatistics])
    assert isinstance(env, gym.vector.SyncVectorEnv)
    with pytest.raises(ValueError, match="wrappers"):
        pgfast.make_vec("CartPole-v1", 2, backend="native", wrappers=[gym.wrappers.ClipAction])
    with pytest.raises(ValueError, match="twice"):
        pgfast.make_vec("CartPole-v1", 2, autoreset_mode="same_step",
                        vector_kwargs={"autoreset_mode": AutoresetMode.NEXT_STEP})


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Acrobot-v1", "Pendulum-v1"])
def test_actions_of_any_integer_dtype_and_layout(env_id):
    n = 4
    envs = [pgfast.make_vec(env_id, n, seed=1) for _ in range(2)]
    rng = np.random.default_rng(0)
    discrete = isinstance(envs[0].single_action_space, gym.spaces.Discrete)
    dtypes = [np.int8, np.uint8, np.int16, np.uint32, np.int64, ">i8"] if discrete \
        else [np.float32, np.float64, np.int64, np.float16, ">f4"]
    for t in range(60):
        if discrete:
            a = rng.integers(0, envs[0].single_action_space.n, n)
        else:
            a = rng.integers(-2, 3, (n, 1)).astype(np.float64)
        ref = envs[0].step(a.astype(np.int64) if discrete else a)
        dt = dtypes[t % len(dtypes)]
        wide = np.zeros((n, 2) if discrete else (n, 2), dtype=dt)
        wide[:, 0] = a if discrete else a[:, 0]
        b = wide[:, 0] if discrete else wide[:, :1]  # non-contiguous
        assert not b.flags.c_contiguous
        assert_same_step(envs[1].step(b), ref, f"{dt}")
    if discrete:
        with pytest.raises(TypeError):  # gymnasium's Discrete refuses bools too
            envs[1].step(np.ones(n, bool))
        with pytest.raises(ValueError):
            envs[1].step(np.full(n, 2**63, np.uint64))


def test_fresh_arrays_by_default_and_copy_false():
    env = pgfast.make_vec("CartPole-v1", 3, seed=0, autoreset_mode="same_step")
    obs0, _ = env.reset(seed=0)
    o1 = env.step(np.ones(3, np.int64))[0]
    assert not np.shares_memory(obs0, o1)
    o2 = env.step(np.ones(3, np.int64))[0]
    assert not np.array_equal(o1, o2) and not np.shares_memory(o1, o2)
    raw = pgfast.make_vec("CartPole-v1", 3, seed=0, copy=False)
    assert raw.reset(seed=0)[0] is raw.step(np.ones(3, np.int64))[0]


@pytest.mark.parametrize("mode", MODES, ids=[m.name for m in MODES])
def test_pickle_carries_the_random_streams(mode):
    """A pickled env continues exactly, unseeded resets and autoresets included."""
    env, ref = pair("Acrobot-v1", 3, mode, max_episode_steps=30)
    env.reset(seed=9)
    ref.reset(seed=9)
    env.action_space.seed(0)
    for _ in range(45):
        a = env.action_space.sample()
        r = env.step(a)
        ref.step(a)
        if mode == AutoresetMode.DISABLED and (r[2] | r[3]).any():
            env.reset(options={"reset_mask": r[2] | r[3]})
            ref.reset(options={"reset_mask": r[2] | r[3]})
    twin = pickle.loads(pickle.dumps(env))
    assert twin.np_random_seed == env.np_random_seed == ref.np_random_seed
    np.testing.assert_array_equal(twin.reset()[0], ref.reset()[0])
    for t in range(100):
        a = env.action_space.sample()
        r1, r2 = twin.step(a), ref.step(a)
        assert_same_step(r1, r2, f"t={t}")
        done = r1[2] | r1[3]
        if mode == AutoresetMode.DISABLED and done.any():
            twin.reset(options={"reset_mask": done})
            ref.reset(options={"reset_mask": done})


def test_step_into_keeps_the_dense_final_obs():
    """step_into (the zero-copy path of the rollout) reports a dense final_obs."""
    n = 5
    env = pgfast.make_vec("CartPole-v1", n, seed=0, autoreset_mode="same_step", max_episode_steps=3)
    ref = pgfast.make_vec("CartPole-v1", n, seed=0, autoreset_mode="same_step", max_episode_steps=3)
    obs = np.zeros((n, 4), np.float32)
    rew, term, trunc = np.zeros(n), np.zeros(n, bool), np.zeros(n, bool)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3):
            a = np.zeros(n, np.int64)
            info = env.step_into(a, obs, rew, term, trunc)
            r = ref.step(a)
    assert info["final_obs"].shape == (n, 4) and info["_final_obs"].all()
    np.testing.assert_array_equal(info["final_obs"], np.stack(r[4]["final_obs"]))
    np.testing.assert_array_equal(obs, r[0])
