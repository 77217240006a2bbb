"""``call``/``get_attr``/``set_attr`` of the native classic envs answer as gymnasium's
``SyncVectorEnv`` of the same id and arguments does (pgfast.envs.vector_attrs)."""

from __future__ import annotations

from typing import Any, Dict

import gymnasium as gym
import numpy as np
import pytest

import pgfast
from pgfast import _C

CASES = [(e, {}) for e in _C.classic_envs()] + [("Pendulum-v1", {"g": 9.0}),
                                                 ("MountainCar-v0", {"goal_velocity": 0.1}),
                                                 ("CartPole-v1", {"sutton_barto_reward": True})]


@pytest.mark.parametrize("env_id,kw", CASES, ids=[f"{e}-{'-'.join(k)}" for e, k in CASES])
def test_get_attr_and_call_match_sync_vector_env(env_id: str, kw: Dict[str, Any]) -> None:
    ours = pgfast.make_vec(env_id, 3, render_mode="rgb_array", **kw)
    ref = gym.make_vec(env_id, 3, vectorization_mode="sync", render_mode="rgb_array", **kw)
    ours.reset(seed=11)
    ref.reset(seed=11)
    names = ["render_mode", "metadata", "np_random_seed", "spec"] + list(kw)
    for name in names:
        try:
            want = ref.get_attr(name)
        except AttributeError:  # gymnasium keeps this parameter privately: so do we
            with pytest.raises(AttributeError):
                ours.get_attr(name)
            continue
        assert ours.get_attr(name) == want, name
        assert ours.call(name) == ref.call(name), name
    for a, b in zip(ours.get_attr("np_random"), ref.get_attr("np_random")):
        assert a.bit_generator.state == b.bit_generator.state
    frames, ref_frames = ours.call("render"), ref.call("render")
    assert len(frames) == 3 and all(np.array_equal(f, g) for f, g in zip(frames, ref_frames))
    ours.close()
    ref.close()


def test_set_attr() -> None:
    env = pgfast.make_vec("Pendulum-v1", 2, g=9.0)
    env.set_attr("note", "a")
    assert env.get_attr("note") == ("a", "a")
    env.set_attr("note", [1, 2])
    assert env.get_attr("note") == (1, 2)
    with pytest.raises(ValueError, match="Got `3` values for 2 environments"):
        env.set_attr("note", [1, 2, 3])
    with pytest.raises(AttributeError, match="'g' of a native .* is fixed at construction"):
        env.set_attr("g", 5.0)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        env.get_attr("nope")
    env.close()
