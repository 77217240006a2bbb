"""The rest of gymnasium conformance of the native classic-control vector envs, each
checked side by side with ``gymnasium.make_vec(id, n, vectorization_mode="sync")``:

* ``render_mode="rgb_array_list"``: the same lists of frames (RenderCollection in each of
  gymnasium's envs) through steps, autoresets of every mode, masked resets and renders;
* partial-reset and lifecycle failures: gymnasium's exception types *and* messages;
* ``np_random_seed`` of envs never seeded: what gymnasium's vector env reports (a fresh
  128-bit OS seed per env, the seed of the env's stream from then on).
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Optional

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import pgfast
from pgfast import _C

IDS = list(_C.classic_envs())
MODES = list(AutoresetMode)


def pair(env_id: str, n: int, mode: Any, **kwargs: Any) -> Any:
    ours = pgfast.make_vec(env_id, n, autoreset_mode=mode, **kwargs)
    ref = gym.make_vec(env_id, n, vectorization_mode="sync", vector_kwargs={"autoreset_mode": mode}, **kwargs)
    return ours, ref


def assert_same_lists(mine: Any, theirs: Any, pixels: bool, where: str) -> None:
    assert isinstance(mine, tuple) and isinstance(theirs, tuple) and len(mine) == len(theirs), where
    for i, (a, b) in enumerate(zip(mine, theirs)):
        assert isinstance(a, list) and len(a) == len(b), f"{where}: env {i}: {len(a)} frames, gymnasium {len(b)}"
        for x, y in zip(a, b):
            assert x.dtype == y.dtype == np.uint8 and x.shape == y.shape, where
            if pixels:
                np.testing.assert_array_equal(x, y, err_msg=f"{where}: env {i}")


# ---------------------------------------------------------------- rgb_array_list


@pytest.mark.parametrize("mode", MODES, ids=[m.name for m in MODES])
@pytest.mark.parametrize("env_id", IDS)
def test_rgb_array_list_like_gymnasium(env_id: str, mode: AutoresetMode) -> None:
    n = 3
    ours, ref = pair(env_id, n, mode, render_mode="rgb_array_list", max_episode_steps=4)
    assert ours.render_mode == ref.render_mode == "rgb_array_list"
    assert ours.get_attr("render_mode") == ref.get_attr("render_mode")
    assert "rgb_array_list" in ours.metadata["render_modes"]
    # Pendulum's frames differ by the torque arrow (documented); the rest are drawn alike
    pixels = env_id != "Pendulum-v1"
    ours.reset(seed=5)
    ref.reset(seed=5)
    ours.action_space.seed(1)
    renders = 0
    for t in range(13):
        a = ours.action_space.sample()
        r1, r2 = ours.step(a), ref.step(a)
        np.testing.assert_array_equal(r1[0], r2[0])
        if mode == AutoresetMode.DISABLED and (r1[2] | r1[3]).any():
            mask = r1[2] | r1[3]
            ours.reset(options={"reset_mask": mask})
            ref.reset(options={"reset_mask": mask.copy()})
        if t % 5 == 2:
            assert_same_lists(ours.render(), ref.render(), pixels, f"{env_id} {mode.name} step {t}")
            renders += 1
    assert_same_lists(ours.call("render"), ref.call("render"), pixels, f"{env_id} {mode.name} call")
    assert ours.render() == ref.render() == tuple([] for _ in range(n))  # rendering empties the lists
    ours.reset(seed=[None, 7, None], options={"reset_mask": np.array([False, True, False])})
    ref.reset(seed=[None, 7, None], options={"reset_mask": np.array([False, True, False])})
    assert_same_lists(ours.render(), ref.render(), pixels, f"{env_id} {mode.name} masked reset")
    assert renders == 3
    ours.close()
    ref.close()


def test_rgb_array_list_through_step_into_and_full_reset() -> None:
    """step_into (the rollout's path) keeps the lists too; a full reset restarts every list."""
    n = 2
    ours, ref = pair("CartPole-v1", n, AutoresetMode.NEXT_STEP, render_mode="rgb_array_list",
                     max_episode_steps=3)
    ours.reset(seed=0)
    ref.reset(seed=0)
    obs, rew = np.zeros((n, 4), np.float32), np.zeros(n)
    term, trunc = np.zeros(n, bool), np.zeros(n, bool)
    for _ in range(5):
        a = np.array([0, 1])
        ours.step_into(a, obs, rew, term, trunc)
        ref.step(a)
    assert_same_lists(ours.render(), ref.render(), True, "step_into")
    assert ours.native_core() is None  # the C++ rollout would skip the lists
    ours.step(np.array([1, 1]))
    ref.step(np.array([1, 1]))
    ours.reset(seed=1)
    ref.reset(seed=1)
    mine, theirs = ours.render(), ref.render()
    assert [len(f) for f in mine] == [len(f) for f in theirs] == [1, 1]
    assert_same_lists(mine, theirs, True, "full reset")


# ---------------------------------------------------------------- partial-reset failures


def _raised(fn: Callable[[], Any]) -> Optional[BaseException]:
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - the exception is the result
        return e
    return None


@pytest.mark.parametrize("env_id", IDS)
def test_partial_reset_failures_have_gymnasiums_types_and_messages(env_id: str) -> None:
    n = 3
    ours, ref = pair(env_id, n, AutoresetMode.NEXT_STEP)
    # step before reset: gymnasium's OrderEnforcing
    e1, e2 = _raised(lambda: ours.step(ours.action_space.sample())), \
        _raised(lambda: ref.step(ref.action_space.sample()))
    assert isinstance(e1, type(e2)) and isinstance(e1, gym.error.ResetNeeded)
    assert str(e1) == str(e2) == "Cannot call env.step() before calling env.reset()"
    ours.reset(seed=0)
    ref.reset(seed=0)
    cases: Dict[str, Any] = {
        "not an array": [True] * n,
        "too short": np.array([True]),
        "too long": np.ones(n + 1, bool),
        "2-D": np.ones((1, n), bool),
        "int dtype": np.array([1, 1, 0]),
        "float dtype": np.array([1.0, 0.0, 0.0]),
        "all False": np.zeros(n, bool),
    }
    for name, mask in cases.items():
        theirs = _raised(lambda m=mask: ref.reset(options={"reset_mask": m}))
        mine = _raised(lambda m=mask: ours.reset(options={"reset_mask": m}))
        assert theirs is not None and mine is not None, name
        assert type(theirs) in (TypeError, ValueError), name
        assert isinstance(mine, type(theirs)), f"{name}: {mine!r} vs gymnasium's {theirs!r}"
        assert str(mine) == str(theirs), name


@pytest.mark.parametrize("env_id", IDS)
def test_disabled_mode_step_without_reset_says_what_gymnasium_says(env_id: str) -> None:
    n = 3
    ours, ref = pair(env_id, n, AutoresetMode.DISABLED, max_episode_steps=2)
    ours.reset(seed=0)
    ref.reset(seed=0)
    a = ours.action_space.sample()
    for _ in range(2):
        ours.step(a)
        ref.step(a)
    # env 0 reset, 1 and 2 still ended
    ours.reset(options={"reset_mask": np.array([True, False, False])})
    ref.reset(options={"reset_mask": np.array([True, False, False])})
    theirs, mine = _raised(lambda: ref.step(a)), _raised(lambda: ours.step(a))
    assert isinstance(theirs, AssertionError) and isinstance(mine, AssertionError)
    # gymnasium names the first env that cannot step; ours names them all, then the fix
    assert str(theirs) == "self._autoreset_envs=array([False,  True,  True])"
    assert str(mine).startswith(str(theirs) + "; ") and "reset_mask" in str(mine)


def test_disabled_mode_message_of_a_native_mujoco_env() -> None:
    pytest.importorskip("mujoco")
    ours, ref = pair("InvertedPendulum-v5", 3, AutoresetMode.DISABLED, max_episode_steps=2)
    ours.reset(seed=0)
    ref.reset(seed=0)
    a = np.zeros((3, 1), np.float32)
    for _ in range(2):
        ours.step(a)
        ref.step(a)
    ours.reset(options={"reset_mask": np.array([True, False, False])})
    ref.reset(options={"reset_mask": np.array([True, False, False])})
    theirs, mine = _raised(lambda: ref.step(a)), _raised(lambda: ours.step(a))
    assert isinstance(theirs, AssertionError) and isinstance(mine, AssertionError)
    assert str(mine).startswith(str(theirs) + "; ")


def test_use_after_close_says_what_gymnasiums_async_env_says() -> None:
    ours = pgfast.make_vec("CartPole-v1", 2, seed=0)
    ref = gym.make_vec("CartPole-v1", 2, vectorization_mode="async")
    ours.close()
    ref.close()
    e1 = _raised(lambda: ours.reset(seed=0))
    e2 = _raised(lambda: ref.reset(seed=0))
    assert isinstance(e1, type(e2)) and isinstance(e1, gym.error.ClosedEnvironmentError)
    assert str(e1) == str(e2).replace("AsyncVectorEnv", "CartPoleVectorEnv")
    assert re.fullmatch(r"Trying to operate on `CartPoleVectorEnv`, after a call to `close\(\)`.", str(e1))


# ---------------------------------------------------------------- np_random_seed of unseeded envs


@pytest.mark.parametrize("env_id", IDS)
def test_unseeded_np_random_seed_like_gymnasium(env_id: str) -> None:
    """Never seeded, each env reports a fresh OS seed (a Python int in [0, 2**128), as
    gymnasium's ``seeding.np_random()``), and that seed *is* its stream: gymnasium's envs
    seeded with the reported seeds reset and step exactly as ours."""
    n = 4
    ours, ref = pair(env_id, n, AutoresetMode.NEXT_STEP)
    mine, theirs = ours.np_random_seed, ref.np_random_seed
    for seeds in (mine, theirs):
        assert isinstance(seeds, tuple) and len(seeds) == n and len(set(seeds)) == n
        assert all(type(s) is int and 0 <= s < 2**128 for s in seeds)
    assert mine == ours.np_random_seed and theirs == ref.np_random_seed  # stable once read
    for g, s in zip(ours.np_random, mine):  # each stream starts from its reported seed
        assert g.bit_generator.state == np.random.PCG64(np.random.SeedSequence(s)).state
    twin = gym.make_vec(env_id, n, vectorization_mode="sync")
    o1, _ = ours.reset()  # an unseeded reset draws from the streams of the reported seeds
    o2, _ = twin.reset(seed=list(mine))
    np.testing.assert_array_equal(o1, o2)
    assert ours.np_random_seed == twin.np_random_seed == mine
    ours.action_space.seed(0)
    for _ in range(40):  # stepping: the classic parity tests' tolerance (float32 rounding of RK4 states)
        a = ours.action_space.sample()
        (o1, *rest1), (o2, *rest2) = ours.step(a)[:4], twin.step(a)[:4]
        np.testing.assert_allclose(o1, o2, rtol=0, atol=1e-5)
        for u, v in zip(rest1, rest2):
            np.testing.assert_array_equal(u, v)
    # gymnasium too: an unseeded reset keeps the seeds it reported
    ref.reset()
    assert ref.np_random_seed == theirs


@pytest.mark.parametrize("env_id", IDS)
def test_unseeded_reset_before_reading_reports_the_seeds_used(env_id: str) -> None:
    n = 3
    ours = pgfast.make_vec(env_id, n)
    o1, _ = ours.reset()  # streams made at the reset, read afterwards
    seeds: List[int] = list(ours.np_random_seed)
    twin = gym.make_vec(env_id, n, vectorization_mode="sync")
    o2, _ = twin.reset(seed=seeds)
    np.testing.assert_array_equal(o1, o2)
