"""Native classic-control vector envs: parity with gymnasium, seeding, threads,
VectorEnv semantics in both autoreset modes, zero-copy step_into, bad input."""

from __future__ import annotations

import hashlib
import inspect
import os
import pickle
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Tuple

import numpy as np
import pytest
import torch

import gymnasium as gym
from gymnasium.vector import AutoresetMode

import pgfast
from pgfast import _C
from pgfast.envs.classic import CLASSIC_ENVS

PI = np.pi


def random_actions(space, n, rng):
    if isinstance(space, gym.spaces.Discrete):
        return rng.integers(0, space.n, n)
    # beyond the bounds too: gymnasium clips inside step
    return rng.uniform(-3.0, 3.0, (n, *space.shape)).astype(np.float32)


def _uniform(rng, bounds, n):
    return np.stack([rng.uniform(lo, hi, n) for lo, hi in bounds], 1)


def _mountain_car_states(rng, n):
    s = _uniform(rng, [(-1.2, 0.6), (-0.07, 0.07)], n)
    # include the walls and the goal exactly
    s[: n // 20, 0] = -1.2
    s[n // 20: n // 10, 0] = 0.6
    return s


@dataclass(frozen=True)
class Parity:
    """What the parity tests need to know about one env: the one place where a
    new env's test parameters go (every test below reads them from here).

    states(rng, n): random physics states covering (and slightly beyond) what the env visits.
    controller(states, a): writes actions of a task controller (long episodes,
        reaching goals) for ``states`` into ``a``; the tests give it half the envs.
    quiet(states): actions under which no env terminates within 7 steps of a reset.
    reset_box: (low, high) per state component of the default reset distribution.
    reset_options: (options, low, high): reset options widening it, and the new box.
    lockstep_limit: time limit of the lockstep test against gymnasium's
        SyncVectorEnv (short enough that episodes end both ways).
    terminates: whether episodes can terminate (not only truncate).
    float32_state_path: gymnasium holds the state as float32 after a step
        (then a float32-exact state takes numpy's float32 path; tests cover both).
    float32_reset: gymnasium rounds its reset state to float32.
    digests: {"next_step": ..., "same_step": ...}, digests of seeded trajectories
        pinning the env's arithmetic, random streams and autoresets (for a new env,
        test_seeded_trajectories_are_pinned's failure message prints them).
    """

    states: Callable[[np.random.Generator, int], np.ndarray]
    controller: Callable[[np.ndarray, np.ndarray], None]
    quiet: Callable[[np.ndarray], np.ndarray]
    reset_box: Tuple[List[float], List[float]]
    reset_options: Tuple[Dict[str, float], List[float], List[float]]
    lockstep_limit: int
    digests: Dict[str, str]
    terminates: bool = True
    float32_state_path: bool = False
    float32_reset: bool = False


def _set(a, values):
    a[: len(values)] = values


PARITY: Dict[str, Parity] = {
    "CartPole-v1": Parity(
        states=lambda rng, n: _uniform(rng, [(-2.5, 2.5), (-3, 3), (-0.22, 0.22), (-3.5, 3.5)], n),
        controller=lambda s, a: _set(a, (s[:, 2] * 10 + s[:, 3] + 0.1 * s[:, 1] > 0).astype(np.int64)),
        quiet=lambda s: (s[:, 2] * 10 + s[:, 3] > 0).astype(np.int64),
        reset_box=([-0.05] * 4, [0.05] * 4),
        reset_options=({"low": -0.2, "high": 0.3}, [-0.2] * 4, [0.3] * 4),
        lockstep_limit=40,
        digests={"next_step": "3fefeb7b03ae43b6798c", "same_step": "b9dc2e65d2f5ef48ee70"},
    ),
    "Pendulum-v1": Parity(
        states=lambda rng, n: _uniform(rng, [(-4 * PI, 4 * PI), (-8, 8)], n),
        controller=lambda s, a: _set(a[:, 0], np.clip(-3 * s[:, 1], -2, 2).astype(np.float32)),
        quiet=lambda s: np.zeros((len(s), 1), np.float32),
        reset_box=([-PI, -1.0], [PI, 1.0]),
        reset_options=({"x_init": 0.5, "y_init": 0.25}, [-0.5, -0.25], [0.5, 0.25]),
        lockstep_limit=40,
        digests={"next_step": "f04a2840f4a2e56d5dbf", "same_step": "e6f4592dc4fc236f3829"},
        terminates=False,
    ),
    "MountainCar-v0": Parity(
        states=_mountain_car_states,
        controller=lambda s, a: _set(a, np.where(s[:, 1] >= 0, 2, 0)),
        quiet=lambda s: np.full(len(s), 1),
        reset_box=([-0.6, 0.0], [-0.4, 0.0]),
        reset_options=({"low": -1.0, "high": 0.2}, [-1.0, 0.0], [0.2, 0.0]),
        lockstep_limit=150,
        digests={"next_step": "19c03ff64a9fceb0a55a", "same_step": "0bf1bb0fec7743ae13a8"},
    ),
    "MountainCarContinuous-v0": Parity(
        states=_mountain_car_states,
        controller=lambda s, a: _set(a[:, 0], np.where(s[:, 1] >= 0, 1.0, -1.0).astype(np.float32)),
        quiet=lambda s: np.zeros((len(s), 1), np.float32),
        reset_box=([-0.6, 0.0], [-0.4, 0.0]),
        reset_options=({"low": -1.0}, [-1.0, 0.0], [-0.4, 0.0]),
        lockstep_limit=150,
        digests={"next_step": "45a73c0d0230438f002c", "same_step": "f42541a70c8da75364d4"},
        float32_state_path=True,
    ),
    "Acrobot-v1": Parity(
        states=lambda rng, n: _uniform(rng, [(-PI, PI), (-PI, PI), (-4 * PI, 4 * PI), (-9 * PI, 9 * PI)], n),
        controller=lambda s, a: _set(a, np.where(s[:, 3] >= 0, 2, 0)),
        quiet=lambda s: np.full(len(s), 1),
        reset_box=([-0.1] * 4, [0.1] * 4),
        reset_options=({"high": 0.5}, [-0.1] * 4, [0.5] * 4),
        lockstep_limit=150,
        digests={"next_step": "a972c42b51f993e1dae5", "same_step": "6bcbd99dc48756c3eb94"},
        float32_reset=True,
    ),
}

IDS = list(CLASSIC_ENVS)  # the registry (csrc/envs/registry.hpp), in its order


def time_limit(env_id):
    return gym.spec(env_id).max_episode_steps


def random_states(env_id, n, rng):
    return PARITY[env_id].states(rng, n)


def gym_state(env_id, s):
    """What gymnasium's ``unwrapped.state`` holds for a native state row."""
    if PARITY[env_id].float32_state_path and np.array_equal(s.astype(np.float32), s):
        return s.astype(np.float32)  # gymnasium's state after a step is a float32 array
    return np.array(s, dtype=np.float64)


def test_registry_matches_parity_table_and_gymnasium():
    """Every registered env has parity parameters, and the registry's facts agree with gymnasium."""
    assert set(PARITY) == set(IDS), "add the new env's Parity entry to PARITY"
    assert {"CartPole-v1", "Pendulum-v1", "MountainCar-v0", "MountainCarContinuous-v0",
            "Acrobot-v1"} <= set(IDS)
    for env_id, info in _C.classic_envs().items():
        ref = gym.make(env_id).unwrapped
        assert info["max_episode_steps"] == time_limit(env_id)
        assert info["obs_dim"] == ref.observation_space.shape[0]
        assert info["discrete"] == isinstance(ref.action_space, gym.spaces.Discrete)
        ref.reset(seed=0)
        assert info["state_dim"] == np.asarray(ref.state).size
        assert set(info["params"]) <= set(inspect.signature(type(ref).__init__).parameters)


# ---------------------------------------------------------------- align tests

@pytest.mark.parametrize("env_id", IDS)
def test_align_single_steps_from_random_states(env_id):
    """>= 10,000 transitions: copy state into gymnasium, step both, compare."""
    rng = np.random.default_rng(123)
    n = 10_000
    env = pgfast.make_vec(env_id, n, seed=0)
    ref = gym.make(env_id).unwrapped
    states = random_states(env_id, n, rng)
    if PARITY[env_id].float32_state_path:  # half of them on gymnasium's float32 path
        states[n // 2:] = states[n // 2:].astype(np.float32)
    actions = random_actions(env.single_action_space, n, rng)
    env.set_state(states)
    obs, rew, term, trunc, _ = env.step(actions)
    new_states = env.get_state()
    for i in range(n):
        ref.state = gym_state(env_id, states[i])
        if hasattr(ref, "steps_beyond_terminated"):
            ref.steps_beyond_terminated = None
        o, r, te, tr, _ = ref.step(actions[i])
        np.testing.assert_allclose(obs[i], o, rtol=0, atol=1e-5, err_msg=f"obs of transition {i}")
        assert rew[i] == r, (i, rew[i], r)
        assert term[i] == te, (i, states[i], actions[i])
        assert not trunc[i]
        np.testing.assert_allclose(new_states[i], np.asarray(ref.state, dtype=np.float64),
                                   rtol=1e-12, atol=1e-14)
    assert obs.dtype == np.float32 and rew.dtype == np.float64


def controller(env_id, states, rng, n):
    """Half the envs follow the task controller (long episodes / reaching goals), half act randomly."""
    space = CLASSIC_ENVS[env_id](num_envs=1).single_action_space
    a = random_actions(space, n, rng)
    PARITY[env_id].controller(states[: n // 2], a)
    return a


@pytest.mark.parametrize("env_id", IDS)
def test_align_trajectories_with_time_limit(env_id):
    """Lockstep episodes against gymnasium.make(env_id) (TimeLimit included): obs,
    reward, terminated and truncated agree at every step, including the step
    count at which the time limit truncates."""
    rng = np.random.default_rng(7)
    n = 8
    limit = time_limit(env_id)
    env = pgfast.make_vec(env_id, n, seed=3)
    assert env.spec.max_episode_steps == limit
    refs = [gym.make(env_id, disable_env_checker=True) for _ in range(n)]
    assert refs[0].spec.max_episode_steps == limit
    env.reset(seed=3)

    def sync(i, states):
        refs[i].reset(seed=i)
        refs[i].unwrapped.state = gym_state(env_id, states[i])

    states = env.get_state()
    for i in range(n):
        sync(i, states)
    steps = np.zeros(n, dtype=int)
    ends = {"terminated": 0, "truncated": 0}
    total = min(2 * limit + 50, 1100)
    pending = np.zeros(n, dtype=bool)
    for _ in range(total):
        actions = controller(env_id, states, rng, n)
        obs, rew, term, trunc, _ = env.step(actions)
        states = env.get_state()
        for i in range(n):
            if pending[i]:  # next_step autoreset: this step reset env i
                assert rew[i] == 0 and not term[i] and not trunc[i]
                sync(i, states)
                steps[i] = 0
                continue
            o, r, te, tr, _ = refs[i].step(actions[i])
            steps[i] += 1
            np.testing.assert_allclose(obs[i], o, rtol=0, atol=1e-5)
            assert rew[i] == r and term[i] == te and trunc[i] == tr, (i, steps[i], rew[i], r, term[i], te,
                                                                       trunc[i], tr)
            if tr:
                assert steps[i] == limit
            ends["terminated"] += te
            ends["truncated"] += tr and not te
        pending = term | trunc
    assert ends["truncated"] > 0, ends
    if PARITY[env_id].terminates:
        assert ends["terminated"] > 0, ends


@pytest.mark.parametrize("env_id", IDS)
def test_max_episode_steps_override_matches_gymnasium(env_id):
    env = pgfast.make_vec(env_id, 2, seed=0, max_episode_steps=7)
    ref = gym.make(env_id, max_episode_steps=7, disable_env_checker=True)
    assert env.spec.max_episode_steps == ref.spec.max_episode_steps == 7
    # quiet actions: no env terminates in 7 steps from a reset state
    for t in range(1, 8):
        _, _, term, trunc, _ = env.step(PARITY[env_id].quiet(env.get_state()))
        assert not term.any()
        assert trunc.all() == (t == 7)


# ---------------------------------------------------------------- reset distribution

@pytest.mark.parametrize("env_id", IDS)
def test_reset_states_within_gymnasium_bounds(env_id):
    n = 4096
    env = pgfast.make_vec(env_id, n)
    obs, info = env.reset(seed=11)
    assert info == {}
    s = env.get_state()
    lo, hi = map(np.array, PARITY[env_id].reset_box)
    assert (s >= lo).all() and (s <= hi).all()
    width = hi - lo
    var = width > 0
    # uniform: mean in the middle, std = width / sqrt(12)
    np.testing.assert_allclose(s.mean(0)[var], ((lo + hi) / 2)[var], atol=0.02 * width.max())
    np.testing.assert_allclose(s.std(0)[var], (width / np.sqrt(12))[var], rtol=0.05)
    assert env.observation_space.contains(obs)
    if PARITY[env_id].float32_reset:  # gymnasium rounds its reset state to float32
        assert np.array_equal(s.astype(np.float32).astype(np.float64), s)
    # gymnasium's own reset draws from the same box
    ref = gym.make(env_id).unwrapped
    ref.reset(seed=0)
    rs = np.asarray(ref.state, dtype=np.float64)
    assert (rs >= lo).all() and (rs <= hi).all()


@pytest.mark.parametrize("env_id", IDS)
def test_reset_options_like_gymnasium(env_id):
    options, lo, hi = PARITY[env_id].reset_options
    n = 2048
    env = pgfast.make_vec(env_id, n)
    env.reset(seed=1, options=options)
    s = env.get_state()
    lo, hi = np.array(lo), np.array(hi)
    assert (s >= lo).all() and (s <= hi).all()
    assert (s.max(0) - s.min(0) >= 0.9 * (hi - lo)).all()  # the widened range is used
    # gymnasium accepts the same options
    ref = gym.make(env_id).unwrapped
    ref.reset(seed=0, options=options)
    # options persist for autoresets (as in gymnasium's CartPoleVectorEnv) until the next reset
    env.reset(seed=1)
    s2 = env.get_state()
    d_lo, d_hi = map(np.array, PARITY[env_id].reset_box)
    assert (s2 >= d_lo).all() and (s2 <= d_hi).all()


def test_reset_options_invalid_raise():
    env = pgfast.make_vec("CartPole-v1", 2)
    with pytest.raises(ValueError):
        env.reset(seed=0, options={"low": 0.2, "high": 0.1})
    with pytest.raises(ValueError):
        env.reset(seed=0, options={"low": "a"})
    with pytest.raises(ValueError):
        env.reset(seed=0, options={"low": -np.inf})
    p = pgfast.make_vec("Pendulum-v1", 2)
    with pytest.raises(ValueError):
        p.reset(seed=0, options={"x_init": "x"})


def test_reset_mask_resets_only_selected():
    env = pgfast.make_vec("CartPole-v1", 4, seed=0)
    for _ in range(5):
        env.step(np.ones(4, dtype=np.int64))
    before = env.get_state()
    mask = np.array([True, False, True, False])
    obs, _ = env.reset(options={"reset_mask": mask})
    after = env.get_state()
    assert np.array_equal(after[~mask], before[~mask])
    assert not np.array_equal(after[mask], before[mask])
    assert (np.abs(after[mask]) <= 0.05).all()
    np.testing.assert_array_equal(obs, after.astype(np.float32))
    with pytest.raises(ValueError):
        env.reset(options={"reset_mask": np.zeros(4, dtype=bool)})
    with pytest.raises(TypeError):
        env.reset(options={"reset_mask": np.ones(4, dtype=np.int64)})
    with pytest.raises(ValueError):
        env.reset(options={"reset_mask": np.ones(3, dtype=bool)})


# ---------------------------------------------------------------- seeding and threads

def rollout(env, steps, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        a = random_actions(env.single_action_space, env.num_envs, rng)
        o, r, te, tr, _ = env.step(a)
        out.append((o.copy(), r.copy(), te.copy(), tr.copy()))
    return out


@pytest.mark.parametrize("env_id", IDS)
def test_same_seed_same_trajectories_different_seeds_differ(env_id):
    n, steps = 16, 300
    a = pgfast.make_vec(env_id, n, seed=5)
    b = pgfast.make_vec(env_id, n, seed=5)
    c = pgfast.make_vec(env_id, n, seed=6)
    np.testing.assert_array_equal(a.get_state(), b.get_state())
    assert not np.array_equal(a.get_state(), c.get_state())
    ra, rb, rc = rollout(a, steps), rollout(b, steps), rollout(c, steps)
    for x, y in zip(ra, rb):
        for u, v in zip(x, y):
            np.testing.assert_array_equal(u, v)
    assert any(not np.array_equal(x[0], z[0]) for x, z in zip(ra, rc))
    # envs within one vector get different streams
    fresh = pgfast.make_vec(env_id, n, seed=5).get_state()
    assert len(np.unique(fresh[:, 0])) == n
    # env i's stream depends on (seed, i) only, not on num_envs
    d = pgfast.make_vec(env_id, 2 * n, seed=5)
    np.testing.assert_array_equal(d.get_state()[:n], fresh)


def test_reseeding_with_reset_restarts_streams_and_none_continues():
    env = pgfast.make_vec("Pendulum-v1", 8)
    s1 = env.reset(seed=42)[0].copy()
    s2 = env.reset()[0].copy()
    s3 = env.reset(seed=42)[0].copy()
    np.testing.assert_array_equal(s1, s3)
    assert not np.array_equal(s1, s2)
    # a list of seeds: env i from seeds[i] (an int seed s is the list s + i)
    env.reset(seed=[42 + i for i in range(8)])
    np.testing.assert_array_equal(env._obs, s1)
    unseeded = [pgfast.make_vec("Pendulum-v1", 8) for _ in range(2)]
    o = [e.reset()[0].copy() for e in unseeded]
    assert not np.array_equal(o[0], o[1])  # fresh entropy


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("mode", ["next_step", "same_step"])
def test_threads_bit_identical(env_id, mode):
    n = 4096 + 3
    one = pgfast.make_vec(env_id, n, seed=9, autoreset_mode=mode, num_threads=1)
    two = pgfast.make_vec(env_id, n, seed=9, autoreset_mode=mode, num_threads=2)
    assert one.threads_used == 1 and two.threads_used == 2
    rng = np.random.default_rng(0)
    min_steps = 60 if env_id == "Acrobot-v1" else 150
    for t in range(20 * min_steps):
        # on a busy machine the worker may join late: go on until it stepped envs
        if t >= min_steps and two._c.items_by_workers > 0:
            break
        a = random_actions(one.single_action_space, n, rng)
        r1 = one.step(a)
        r2 = two.step(a)
        for u, v in zip(r1[:4], r2[:4]):
            np.testing.assert_array_equal(u, v)
        if mode == "same_step":
            assert r1[4].keys() == r2[4].keys()
            if r1[4]:
                np.testing.assert_array_equal(r1[4]["_final_obs"], r2[4]["_final_obs"])
                m = r1[4]["_final_obs"]
                np.testing.assert_array_equal(np.stack(r1[4]["final_obs"][m]),
                                              np.stack(r2[4]["final_obs"][m]))
    np.testing.assert_array_equal(one.get_state(), two.get_state())
    assert two._c.items_by_workers > 0  # the worker thread really stepped envs


# ---------------------------------------------------------------- VectorEnv API vs gymnasium

@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("mode", ["next_step", "same_step"])
def test_spaces_dtypes_metadata_match_gymnasium(env_id, mode):
    n = 3
    env = pgfast.make_vec(env_id, n, autoreset_mode=mode)
    amode = AutoresetMode.NEXT_STEP if mode == "next_step" else AutoresetMode.SAME_STEP
    ref = gym.make_vec(env_id, num_envs=n, vectorization_mode="sync", vector_kwargs={"autoreset_mode": amode})
    assert isinstance(env, gym.vector.VectorEnv)
    assert env.num_envs == ref.num_envs
    assert env.single_observation_space == ref.single_observation_space
    assert env.single_action_space == ref.single_action_space
    assert env.observation_space == ref.observation_space
    assert env.action_space == ref.action_space
    assert env.metadata["autoreset_mode"] is ref.metadata["autoreset_mode"] is amode
    assert env.spec.id == env_id and env.render_mode is None
    o1, i1 = env.reset(seed=0)
    o2, i2 = ref.reset(seed=0)
    assert o1.dtype == o2.dtype and o1.shape == o2.shape and i1 == i2 == {}
    a = ref.action_space.sample()
    s1, s2 = env.step(a), ref.step(a)
    for u, v in zip(s1[:4], s2[:4]):
        assert u.dtype == v.dtype and u.shape == v.shape
    if mode == "next_step":
        assert s1[4] == {} and s2[4] == {}
    else:  # gymnasium's form: keys only where an env ended
        assert s1[4] == {} and s2[4] == {}
    ref.close()
    env.close()
    assert env.closed


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("mode", ["next_step", "same_step"])
def test_autoreset_semantics_lockstep_with_gymnasium_sync(env_id, mode):
    """Lockstep against gymnasium's SyncVectorEnv (states copied after every
    reset): rewards, flags, observations and, in same_step mode, final_obs agree,
    and the step after a done returns what gymnasium returns."""
    n, limit = 6, PARITY[env_id].lockstep_limit
    amode = AutoresetMode.NEXT_STEP if mode == "next_step" else AutoresetMode.SAME_STEP
    env = pgfast.make_vec(env_id, n, autoreset_mode=mode, max_episode_steps=limit)
    ref = gym.make_vec(env_id, num_envs=n, vectorization_mode="sync",
                       vector_kwargs={"autoreset_mode": amode}, max_episode_steps=limit)
    env.reset(seed=0)
    ref.reset(seed=0)
    lo, hi = map(np.array, PARITY[env_id].reset_box)

    def copy_states(idx):
        s = env.get_state()
        for i in idx:
            ref.envs[i].unwrapped.state = gym_state(env_id, s[i])

    def freshly_reset(idx):
        s = env.get_state()[idx]
        return bool(((s >= lo) & (s <= hi)).all())

    copy_states(range(n))
    rng = np.random.default_rng(0)
    seen = {"term": 0, "trunc": 0}
    prev_done = np.zeros(n, dtype=bool)
    for _ in range(3 * limit + 20):
        a = controller(env_id, env.get_state(), rng, n)
        o1, r1, te1, tr1, info1 = env.step(a)
        o2, r2, te2, tr2, info2 = ref.step(a)
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(te1, te2)
        np.testing.assert_array_equal(tr1, tr2)
        assert o1.dtype == o2.dtype and r1.dtype == r2.dtype and te1.dtype == te2.dtype
        done = te1 | tr1
        if mode == "next_step":
            assert info1 == {} and info2 == {}
            # envs done at the previous step were reset now: reward 0, flags False
            assert (r1[prev_done] == 0).all() and (r2[prev_done] == 0).all()
            assert not done[prev_done].any()
            keep = ~prev_done
            np.testing.assert_allclose(o1[keep], o2[keep], atol=1e-5)
            assert freshly_reset(prev_done)  # obs of a reset state
            copy_states(np.flatnonzero(prev_done))
        else:
            np.testing.assert_array_equal(info1.get("_final_obs", np.zeros(n, bool)), done)
            if done.any():
                assert info2["_final_obs"].tolist() == done.tolist()
                for i in np.flatnonzero(done):
                    np.testing.assert_allclose(info1["final_obs"][i], info2["final_obs"][i], atol=1e-5)
                assert freshly_reset(done)  # obs is already the reset obs
            else:
                assert "final_obs" not in info2
            np.testing.assert_allclose(o1[~done], o2[~done], atol=1e-5)
            copy_states(np.flatnonzero(done))
        seen["term"] += te1.sum()
        seen["trunc"] += tr1.sum()
        prev_done = done
    assert seen["trunc"] > 0
    if PARITY[env_id].terminates:
        assert seen["term"] > 0
    ref.close()


def test_output_buffers_are_fresh_unless_copy_false():
    env = pgfast.make_vec("CartPole-v1", 4, seed=0)
    o1, r1, t1, u1, _ = env.step(np.zeros(4, dtype=np.int64))
    o1c = o1.copy()
    o2, r2, t2, u2, _ = env.step(np.zeros(4, dtype=np.int64))
    assert o1 is not o2 and r1 is not r2 and t1 is not t2 and u1 is not u2
    np.testing.assert_array_equal(o1, o1c)  # not overwritten by the next step
    env = pgfast.make_vec("CartPole-v1", 4, seed=0, copy=False)
    o1, r1, t1, u1, _ = env.step(np.zeros(4, dtype=np.int64))
    o2, r2, t2, u2, _ = env.step(np.zeros(4, dtype=np.int64))
    assert o1 is o2 and r1 is r2 and t1 is t2 and u1 is u2


# ---------------------------------------------------------------- step_into (zero copy)

@pytest.mark.parametrize("mode", ["next_step", "same_step"])
def test_step_into_numpy_and_torch_without_copies(mode):
    n, T = 64, 30
    a_env = pgfast.make_vec("CartPole-v1", n, seed=1, autoreset_mode=mode)
    b_env = pgfast.make_vec("CartPole-v1", n, seed=1, autoreset_mode=mode)
    c_env = pgfast.make_vec("CartPole-v1", n, seed=1, autoreset_mode=mode)
    obs_np = np.zeros((T, n, 4), np.float64)
    rew_np = np.zeros((T, n), np.float32)
    obs_t = torch.zeros((T, n, 4), dtype=torch.float32)
    rew_t = torch.zeros((T, n), dtype=torch.float64)
    term_t = torch.zeros((T, n), dtype=torch.bool)
    trunc_t = torch.zeros((T, n), dtype=torch.bool)
    term_np = np.zeros((T, n), bool)
    trunc_np = np.zeros((T, n), bool)
    ptr = obs_t.data_ptr()
    rng = np.random.default_rng(0)
    for t in range(T):
        a = rng.integers(0, 2, n)
        o, r, te, tr, info = a_env.step(a)
        info_b = b_env.step_into(a, obs_np[t], rew_np[t], term_np[t], trunc_np[t])
        info_c = c_env.step_into(torch.from_numpy(a), obs_t[t], rew_t[t], term_t[t], trunc_t[t])
        np.testing.assert_array_equal(obs_np[t], o.astype(np.float64))
        np.testing.assert_array_equal(rew_np[t], r.astype(np.float32))
        np.testing.assert_array_equal(term_np[t], te)
        np.testing.assert_array_equal(trunc_np[t], tr)
        np.testing.assert_array_equal(obs_t[t].numpy(), o)
        np.testing.assert_array_equal(rew_t[t].numpy(), r)
        np.testing.assert_array_equal(term_t[t].numpy(), te)
        np.testing.assert_array_equal(trunc_t[t].numpy(), tr)
        assert set(info_b) == set(info_c)  # step_into: the dense form, always
        if mode == "same_step":
            np.testing.assert_array_equal(info_c["_final_obs"],
                                          info.get("_final_obs", np.zeros(n, bool)))
        else:
            assert info == info_b == {}
    assert obs_t.data_ptr() == ptr


def test_step_into_bad_outputs_raise_without_state_change():
    n = 8
    env = pgfast.make_vec("Pendulum-v1", n, seed=0)
    s0 = env.get_state()
    a = np.zeros((n, 1), np.float32)
    good = dict(obs=np.zeros((n, 3), np.float32), rew=np.zeros(n), term=np.zeros(n, bool),
                trunc=np.zeros(n, bool))
    bad_cases = [
        ("obs", np.zeros((n, 4), np.float32)),
        ("obs", np.zeros((n + 1, 3), np.float32)),
        ("obs", np.zeros((n, 3), np.int32)),
        ("obs", np.zeros((n, 6), np.float32)[:, ::2]),
        ("obs", np.zeros(n * 3, np.float32)),
        ("rew", np.zeros(n, np.int64)),
        ("rew", np.zeros((n, 1))),
        ("term", np.zeros(n, np.uint8)),
        ("trunc", np.zeros(n - 1, bool)),
        ("obs", torch.zeros((n, 3), dtype=torch.float32, requires_grad=True)),
        ("obs", [[0.0] * 3] * n),
    ]
    ro = np.zeros((n, 3), np.float32)
    ro.flags.writeable = False
    bad_cases.append(("obs", ro))
    for key, bad in bad_cases:
        args = dict(good, **{key: bad})
        with pytest.raises((ValueError, TypeError)):
            env.step_into(a, args["obs"], args["rew"], args["term"], args["trunc"])
        np.testing.assert_array_equal(env.get_state(), s0)


# ---------------------------------------------------------------- state access

@pytest.mark.parametrize("env_id", IDS)
def test_get_set_state_roundtrip(env_id):
    n = 32
    a = pgfast.make_vec(env_id, n, seed=0)
    b = pgfast.make_vec(env_id, n, seed=99)
    rng = np.random.default_rng(0)
    for _ in range(10):
        _, _, te, tr, _ = a.step(random_actions(a.single_action_space, n, rng))
    pending = te | tr  # a resets these at its next step; set_state cancels that in b
    s = a.get_state()
    assert s.dtype == np.float64 and s.shape == (n, _C.classic_envs()[env_id]["state_dim"])
    b.set_state(s)
    np.testing.assert_array_equal(b.get_state(), s)
    acts = random_actions(a.single_action_space, n, rng)
    ra, rb = a.step(acts), b.step(acts)
    ok = ~pending
    np.testing.assert_array_equal(ra[0][ok], rb[0][ok])
    np.testing.assert_array_equal(ra[1][ok], rb[1][ok])


def test_set_state_bad_input():
    env = pgfast.make_vec("Acrobot-v1", 4, seed=0)
    s0 = env.get_state()
    for bad, error in ((np.zeros((4, 3)), ValueError), (np.zeros((5, 4)), ValueError),
                       (np.zeros(16), ValueError), (np.full((4, 4), np.nan), ValueError),
                       (np.array([["a"] * 4] * 4), TypeError)):  # a wrong dtype is a TypeError
        with pytest.raises(error):
            env.set_state(bad)
        np.testing.assert_array_equal(env.get_state(), s0)
    env.set_state(np.zeros((4, 4), np.float32))  # other float dtypes are converted
    assert (env.get_state() == 0).all()


# ---------------------------------------------------------------- bad input

def discrete_bad_actions(n, k):
    base = np.zeros(n, np.int64)
    oob_hi = base.copy()
    oob_hi[n - 1] = k
    oob_lo = base.copy()
    oob_lo[0] = -1
    return [  # a wrong dtype is a TypeError, a wrong value or shape a ValueError
        ("out of range high", oob_hi, ValueError),
        ("out of range low", oob_lo, ValueError),
        ("int32 out of range", oob_hi.astype(np.int32), ValueError),
        ("float dtype", base.astype(np.float32), TypeError),
        ("bool dtype", base.astype(bool), TypeError),
        ("wrong shape [N, 1]", base[:, None], ValueError),
        ("wrong shape [N + 1]", np.zeros(n + 1, np.int64), ValueError),
        ("scalar", np.int64(0), TypeError),  # gymnasium: TypeError (not iterable)
        ("big-endian out of range", oob_hi.astype(">i8"), ValueError),
        ("cuda-less tensor float", torch.zeros(n), TypeError),
    ]


def box_bad_actions(n):
    base = np.zeros((n, 1), np.float32)
    nan = base.copy()
    nan[n - 1, 0] = np.nan
    inf = base.copy()
    inf[0, 0] = np.inf
    ninf = base.astype(np.float64)
    ninf[1, 0] = -np.inf
    return [  # a wrong dtype is a TypeError, a wrong value or shape a ValueError
        ("nan", nan, ValueError),
        ("inf", inf, ValueError),
        ("-inf float64", ninf, ValueError),
        ("wrong shape [N]", base[:, 0].copy(), ValueError),
        ("wrong shape [N, 2]", np.zeros((n, 2), np.float32), ValueError),
        ("bool dtype", base.astype(bool), TypeError),
        ("tensor nan", torch.full((n, 1), float("nan")), ValueError),
    ]


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("mode", ["next_step", "same_step"])
def test_bad_actions_raise_and_leave_state_unchanged(env_id, mode):
    n = 6
    env = pgfast.make_vec(env_id, n, seed=0, autoreset_mode=mode)
    twin = pgfast.make_vec(env_id, n, seed=0, autoreset_mode=mode)
    space = env.single_action_space
    cases = discrete_bad_actions(n, space.n) if isinstance(space, gym.spaces.Discrete) else box_bad_actions(n)
    s0 = env.get_state()
    obs0 = env._obs.copy()
    for name, bad, error in cases:
        with pytest.raises(error):
            env.step(bad)
        np.testing.assert_array_equal(env.get_state(), s0, err_msg=name)
        np.testing.assert_array_equal(env._obs, obs0, err_msg=name)
        with pytest.raises(error):
            env.step_into(bad, np.zeros_like(env._obs), np.zeros(n), np.zeros(n, bool), np.zeros(n, bool))
        np.testing.assert_array_equal(env.get_state(), s0, err_msg=name)
    # step counters and RNG streams are untouched too: env continues exactly like its twin
    rng = np.random.default_rng(1)
    for _ in range(250):
        a = random_actions(space, n, rng)
        for u, v in zip(env.step(a)[:4], twin.step(a)[:4]):
            np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "MountainCarContinuous-v0"])
def test_continuous_actions_clipped_like_gymnasium(env_id):
    n = 4
    a = pgfast.make_vec(env_id, n, seed=0)
    b = pgfast.make_vec(env_id, n, seed=0)
    big = np.array([[5.0], [-7.0], [1e30], [-0.5]], np.float32)
    clipped = np.clip(big, a.single_action_space.low, a.single_action_space.high)
    ra = a.step(big)
    rb = b.step(clipped)
    np.testing.assert_array_equal(a.get_state(), b.get_state())
    if env_id == "Pendulum-v1":
        np.testing.assert_array_equal(ra[1], rb[1])  # cost uses the clipped torque
    else:
        # gymnasium's reward uses the unclipped action: -0.1 * a^2
        np.testing.assert_allclose(ra[1][:2], -0.1 * big[:2, 0].astype(np.float64) ** 2)
    # float64 actions are accepted and read as the float32 action space dtype
    c = pgfast.make_vec(env_id, n, seed=0)
    c.step(big.astype(np.float64))
    np.testing.assert_array_equal(c.get_state(), a.get_state())


def test_step_before_reset_and_after_close():
    env = pgfast.make_vec("CartPole-v1", 2)
    with pytest.raises(RuntimeError, match=r"before calling env.reset\(\)"):
        env.step(np.zeros(2, np.int64))
    with pytest.raises(RuntimeError, match=r"before calling env.reset\(\)"):
        env.step_into(np.zeros(2, np.int64), np.zeros((2, 4), np.float32), np.zeros(2),
                      np.zeros(2, bool), np.zeros(2, bool))
    env.reset(seed=0)
    env.step(np.zeros(2, np.int64))
    env.close()
    for call in (lambda: env.step(np.zeros(2, np.int64)), lambda: env.reset(seed=0),
                 env.get_state, lambda: env.set_state(np.zeros((2, 4)))):
        with pytest.raises(RuntimeError, match="close"):
            call()
    env.close()  # idempotent


def test_bad_constructor_and_seed_arguments():
    with pytest.raises(ValueError):
        pgfast.make_vec("CartPole-v1", 0)
    with pytest.raises(ValueError):
        pgfast.make_vec("CartPole-v1", 2, autoreset_mode="bogus")
    with pytest.raises(ValueError):
        pgfast.make_vec("CartPole-v1", 2, num_threads=0)
    with pytest.raises(ValueError):
        pgfast.make_vec("CartPole-v1", 2, max_episode_steps=0)
    with pytest.raises(TypeError):
        pgfast.make_vec("CartPole-v1", 2, not_an_arg=1)
    with pytest.raises(ValueError):
        pgfast.make_vec("CartPole-v1", 2, render_mode="bogus")
    env = pgfast.make_vec("CartPole-v1", 2)
    with pytest.raises(ValueError):
        env.reset(seed=-1)
    with pytest.raises(ValueError):
        env.reset(seed=[1])
    with pytest.raises(TypeError):
        env.reset(seed=1.5)


def test_env_kwargs_match_gymnasium():
    """sutton_barto_reward (CartPole) and g (Pendulum) behave as in gymnasium."""
    rng = np.random.default_rng(0)
    env = pgfast.make_vec("CartPole-v1", 500, seed=0, sutton_barto_reward=True)
    ref = gym.make("CartPole-v1", sutton_barto_reward=True).unwrapped
    s = random_states("CartPole-v1", 500, rng)
    a = rng.integers(0, 2, 500)
    env.set_state(s)
    _, r, te, _, _ = env.step(a)
    for i in range(500):
        ref.state = s[i].copy()
        ref.steps_beyond_terminated = None
        _, rr, tt, _, _ = ref.step(a[i])
        assert r[i] == rr and te[i] == tt
    assert te.any() and (~te).any()
    p = pgfast.make_vec("Pendulum-v1", 200, seed=0, g=9.81)
    pr = gym.make("Pendulum-v1", g=9.81).unwrapped
    s = random_states("Pendulum-v1", 200, rng)
    a = rng.uniform(-2, 2, (200, 1)).astype(np.float32)
    p.set_state(s)
    p.step(a)
    ns = p.get_state()
    for i in range(200):
        pr.state = s[i].copy()
        pr.step(a[i])
        np.testing.assert_array_equal(ns[i], pr.state)


def test_make_vec_backends():
    env = pgfast.make_vec("CartPole-v1", 2, backend="native")
    assert type(env).__name__ == "CartPoleVectorEnv"
    g = pgfast.make_vec("CartPole-v1", 2, backend="gymnasium")
    assert not hasattr(g, "get_state")
    g.close()
    assert set(IDS) <= set(pgfast.envs.native_ids())


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("mode", ["next_step", "same_step"])
def test_pickle_continues_bit_identically(env_id, mode):
    """A pickled env carries its physics state, step counters, pending
    autoresets, random streams and reset bounds: the copy and the original
    then produce identical steps, across episode ends and autoresets."""
    n = 16
    env = pgfast.make_vec(env_id, n, seed=4, autoreset_mode=mode, max_episode_steps=25)
    env.reset(seed=4, options=None)
    rng = np.random.default_rng(2)
    for _ in range(37):  # mid-episode, some envs pending a reset
        env.step(random_actions(env.single_action_space, n, rng))
    copy = pickle.loads(pickle.dumps(env))
    assert type(copy) is type(env) and copy.num_envs == n
    assert copy.metadata["autoreset_mode"] == env.metadata["autoreset_mode"]
    np.testing.assert_array_equal(copy.get_state(), env.get_state())
    for _ in range(60):
        a = random_actions(env.single_action_space, n, rng)
        r1, r2 = env.step(a), copy.step(a)
        for u, v in zip(r1[:4], r2[:4]):
            np.testing.assert_array_equal(u, v)
        assert r1[4].keys() == r2[4].keys()
    # reset bounds from options survive too
    env.reset(seed=1, options=PARITY[env_id].reset_options[0])
    copy2 = pickle.loads(pickle.dumps(env))
    for _ in range(30):
        a = random_actions(env.single_action_space, n, rng)
        for u, v in zip(env.step(a)[:4], copy2.step(a)[:4]):
            np.testing.assert_array_equal(u, v)
    fresh = pickle.loads(pickle.dumps(pgfast.make_vec(env_id, 2)))
    with pytest.raises(RuntimeError, match=r"before calling env.reset\(\)"):
        fresh.step(random_actions(fresh.single_action_space, 2, rng))


def test_snapshot_load_validates():
    env = pgfast.make_vec("CartPole-v1", 4, seed=0)
    snap = env._c.dump()
    s0 = env.get_state()
    for key, bad, error in [("rows", np.zeros((4, 5)), ValueError),
                            ("steps", np.zeros(4, np.int32), TypeError),
                            ("rng", np.zeros((4, 3), np.uint64), ValueError),
                            ("rng_kind", "xoshiro", ValueError),
                            ("pending", [0] * 4, TypeError)]:
        with pytest.raises(error):
            env._c.load({**snap, key: bad})
        np.testing.assert_array_equal(env.get_state(), s0)
    with pytest.raises(ValueError):
        env._c.load({k: v for k, v in snap.items() if k != "rng"})


# ---------------------------------------------------------------- parameters and the core

def test_unknown_env_parameters_are_rejected():
    """A misspelt parameter never falls back to its default: gymnasium's
    constructor refuses it in make_vec (TypeError), the core in pgfast._C
    (ValueError naming the key and the valid ones)."""
    with pytest.raises(TypeError, match="gg"):
        pgfast.make_vec("Pendulum-v1", 2, gg=9.81)
    with pytest.raises(ValueError, match=r"no parameter 'gg'; valid parameters: g"):
        _C.ClassicVecEnv("Pendulum-v1", 2, params={"gg": 9.81})
    with pytest.raises(ValueError, match=r"Acrobot-v1 has no parameter 'g'; it takes none"):
        _C.ClassicVecEnv("Acrobot-v1", 2, params={"g": 1.0})
    with pytest.raises(ValueError, match="finite"):
        _C.ClassicVecEnv("Pendulum-v1", 2, params={"g": float("inf")})
    with pytest.raises(ValueError, match="registered: CartPole-v1"):
        _C.ClassicVecEnv("CartPole-v9", 2)
    with pytest.raises(TypeError):
        _C.ClassicVecEnv("CartPole-v1", 2, max_episode_steps=2.5)
    core = _C.ClassicVecEnv("CartPole-v1", 2, params={"sutton_barto_reward": 1})
    assert (core.env_id, core.state_dim, core.obs_dim, core.max_episode_steps) == ("CartPole-v1", 4, 4, 500)


def test_core_exception_policy():
    """pgfast._C raises TypeError for a wrong type or dtype and ValueError for a
    wrong shape, layout or value, in the env half as in the returns half."""
    core = _C.ClassicVecEnv("CartPole-v1", 3)
    core.reset(None, -0.05, 0.05)
    with pytest.raises(TypeError, match="numpy array"):
        core.step([0, 1, 0])
    with pytest.raises(TypeError, match="int64 or int32"):
        core.step(np.zeros(3, np.float64))
    with pytest.raises(ValueError, match="shape"):
        core.step(np.zeros(4, np.int64))
    with pytest.raises(TypeError, match="float64"):
        core.set_state(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="finite"):
        core.set_state(np.full((3, 4), np.nan))
    with pytest.raises(TypeError, match="uint32"):
        core.seed(np.zeros((3, 4), np.int64))
    with pytest.raises(TypeError, match="bool"):
        core.step_into(np.zeros(3, np.int64), np.zeros((3, 4), np.float32), np.zeros(3),
                       np.zeros(3, np.uint8), np.zeros(3, bool))
    with pytest.raises(TypeError, match="x"):
        _C.discounted_cumsum(np.zeros(3, np.int64), np.zeros(3, bool), 0.5)
    with pytest.raises(ValueError, match="dones"):
        _C.discounted_cumsum(np.zeros(3), np.zeros(4, bool), 0.5)


def _trajectory_digest(env_id, mode):
    h = hashlib.sha256()
    n = 8
    env = pgfast.make_vec(env_id, n, seed=3, autoreset_mode=mode, max_episode_steps=60)
    rng = np.random.default_rng(1)
    for t in range(200):
        if t == 70:
            env.reset(seed=7, options=PARITY[env_id].reset_options[0])
        if t == 100:
            env = pickle.loads(pickle.dumps(env))
        *out, info = env.step(random_actions(env.single_action_space, n, rng))
        for x in out:
            h.update(x.tobytes())
        if info:  # same_step, an env ended: gymnasium's form
            m = info["_final_obs"]
            h.update(m.tobytes())
            h.update(np.stack(info["final_obs"][m]).tobytes())
    h.update(env.get_state().tobytes())
    return h.hexdigest()[:20]


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("mode", ["next_step", "same_step"])
def test_seeded_trajectories_are_pinned(env_id, mode):
    """Digests of seeded trajectories (obs, rewards, flags, final observations and
    the final state, through a reset with options and a pickle round trip): any
    change to an env's arithmetic, random streams or autoreset logic changes them.
    They depend on libm's sin/cos/pow like the parity itself (glibc here)."""
    got = _trajectory_digest(env_id, mode)
    assert got == PARITY[env_id].digests.get(mode), f"{env_id} {mode} digest: {got!r}"


# ---------------------------------------------------------------- reliability (native checks)


def _child_ok(code, timeout=120):
    """Runs code in a child: a crash or hang there fails the test, not the run."""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, (r.returncode, r.stdout[-1000:], r.stderr[-2000:])
    return r.stdout


def test_outputs_aliasing_the_actions_are_rejected():
    # the reproducer: obs_out is the memory of the int64 actions
    out = _child_ok(
        "import numpy as np, pgfast\n"
        "n = 512; e = pgfast.make_vec('Acrobot-v1', n, seed=0)\n"
        "b = np.zeros(n * 6, np.float32); a = b.view(np.int64)[:n]; a[:] = 1\n"
        "try:\n"
        "    e.step_into(a, b.reshape(n, 6), np.zeros(n), np.zeros(n, bool), np.zeros(n, bool))\n"
        "except ValueError as err:\n"
        "    print('ValueError', err)\n")
    assert out.startswith("ValueError") and "actions" in out


def test_outputs_overlapping_each_other_are_rejected():
    n = 4
    env = pgfast.make_vec("CartPole-v1", n, seed=0)
    a = np.zeros(n, np.int64)
    obs, rew = np.zeros((n, 4), np.float32), np.zeros(n)
    term, trunc = np.zeros(n, bool), np.zeros(n, bool)
    with pytest.raises(ValueError, match="share memory"):
        env.step_into(a, obs, rew, term, term)
    with pytest.raises(ValueError, match="share memory"):
        env.step_into(a, obs, obs.reshape(-1)[:2 * n].view(np.float64), term, trunc)
    both = np.zeros(2 * n, bool)
    env.step_into(a, obs, rew, both[:n], both[n:])  # adjacent, not overlapping: fine
    same = pgfast.make_vec("CartPole-v1", n, seed=0, autoreset_mode="same_step")
    with pytest.raises(ValueError, match="final_obs"):
        same.step_into(a, same._final_obs, rew, term, trunc)
    with pytest.raises(ValueError, match="share memory"):
        env._c.bind_outputs(obs, rew, term, term)


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "MountainCarContinuous-v0"])
def test_actions_written_during_a_step_never_reach_the_kernel(env_id):
    """Another thread writes NaN into the action array while steps run with the
    GIL released: the kernel steps a checked copy, so the state stays finite."""
    n = 1 << 16
    env = pgfast.make_vec(env_id, n, seed=0)
    a = np.zeros((n, 1), np.float32)
    stop = threading.Event()

    def scribble():
        while not stop.is_set():
            a[:] = np.nan
            a[:] = 0.5
            time.sleep(0)  # let the stepping thread check the actions between writes

    t = threading.Thread(target=scribble)
    t.start()
    try:
        for _ in range(60):
            try:
                env.step(a)
            except ValueError:
                pass
    finally:
        stop.set()
        t.join()
    assert np.isfinite(env.get_state()).all()


def test_float64_action_that_overflows_float32_is_rejected():
    env = pgfast.make_vec("MountainCarContinuous-v0", 2, seed=0)
    before = env.get_state()
    with pytest.raises(ValueError, match="finite"):
        env.step(np.full((2, 1), 1e39))
    np.testing.assert_array_equal(env.get_state(), before)
    env.step(np.full((2, 1), 3e38))  # finite as float32: clipped, as gymnasium does
    assert np.isfinite(env._rew).all()


@pytest.mark.parametrize("env_id", IDS)
def test_load_rejects_what_set_state_rejects(env_id):
    env = pgfast.make_vec(env_id, 3, seed=0)
    good = env._c.dump()
    bad = dict(good, rows=good["rows"].copy())
    bad["rows"][0, 1] = np.nan
    with pytest.raises(ValueError, match="finite"):
        env._c.load(bad)
    bad = dict(good, steps=good["steps"].copy())
    bad["steps"][0] = 2 ** 62
    with pytest.raises(ValueError, match="steps"):
        env._c.load(bad)
    with pytest.raises(TypeError):
        env._c.load(dict(good, rows=good["rows"].astype(">f8")))
    with pytest.raises(TypeError):
        env._c.load(dict(good, ready=np.zeros(3)))
    env._c.load(good)


def test_byteswapped_env_arrays_are_rejected():
    n = 3
    env = pgfast.make_vec("CartPole-v1", n, seed=0)
    out = (np.zeros((n, 4), np.float32), np.zeros(n), np.zeros(n, bool), np.zeros(n, bool))
    with pytest.raises(TypeError):
        env._c.step(np.zeros(n, ">i8"))
    with pytest.raises(TypeError):
        env._c.step_into(np.zeros(n, np.int64), out[0].astype(">f4"), *out[1:])
    with pytest.raises(TypeError):
        env._c.set_state(np.zeros((n, 4), ">f8"))
    cont = pgfast.make_vec("Pendulum-v1", n, seed=0)
    with pytest.raises(TypeError):
        cont._c.step(np.zeros((n, 1), ">f4"))


def test_thread_and_env_counts_are_bounded():
    with pytest.raises(ValueError, match="num_threads"):
        _C.ClassicVecEnv("CartPole-v1", 4, num_threads=10 ** 6)
    with pytest.raises(ValueError, match="num_envs"):
        _C.ClassicVecEnv("CartPole-v1", 2 ** 40)
    env = _C.ClassicVecEnv("CartPole-v1", 4 * 2048, num_threads=1024)
    assert 1 <= env.threads_used <= 4 * (os.cpu_count() or 1)


def test_acrobot_step_after_a_huge_state_ends():
    # gymnasium's wrap() loops |angle| / 2 pi times: forever for 1e300 or inf
    _child_ok(
        "import numpy as np, pgfast\n"
        "e = pgfast.make_vec('Acrobot-v1', 3, seed=0)\n"
        "e.set_state(np.array([[1e300, -1e12, 0, 0], [0, 0, 1e300, 1e300], [1e7, 0, 0, 0]]))\n"
        "e.step(np.zeros(3, np.int64))\n", timeout=60)


def test_seed_entropy_of_another_dtype_is_rejected():
    # uint32 had no dtype tag: any unlisted dtype (int8: a quarter of the bytes read) passed
    env = _C.ClassicVecEnv("CartPole-v1", 3)
    for bad in (np.zeros((3, 4), np.int8), np.zeros((3, 4), ">u4"), np.zeros((3, 4), np.float16)):
        with pytest.raises(TypeError, match="uint32"):
            env.seed(bad)
    env.seed(np.zeros((3, 4), np.uint32), np.full(3, 2, np.int64))
