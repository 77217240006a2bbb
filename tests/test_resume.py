"""Resume matrix: for every native env and a list of gymnasium-fallback envs,
train a few iterations, save, load and learn to the end == an uninterrupted run
(history rows except wall-clock fields, and weights, bit-identical), or the
documented refusal: the checkpoint records that the env state was not captured
exactly, :func:`pgfast.load` warns (InexactResumeWarning) and the env is reset
deterministically (two loads continue identically).

Run with ``-s`` to see the matrix (env x exact / refused).
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from typing import Any, Dict, List

import pytest
import torch

import pgfast
from pgfast import checkpoint
from pgfast.envs import native_ids
from pgfast.trainer import InexactResumeWarning, Run, load

TINY = dict(num_envs=2, num_steps=16, hidden_sizes=(8,), update_epochs=1, num_minibatches=1)
TOTAL = 96  # 3 iterations of 32 steps; the run is interrupted after the first

# (id, env_kwargs, reason the resume is refused, or None: exact)
FALLBACK = [
    ("LunarLander-v3", {}, "Box2D world: LunarLander pickles only its constructor arguments"),
    ("Ant-v5", {"backend": "gymnasium"}, None),
    ("Pusher-v5", {"backend": "gymnasium"}, None),
    ("CartPole-v1", {"backend": "gymnasium"}, None),
]
CASES = [(e, {}, None) for e in native_ids()] + FALLBACK
MATRIX: Dict[str, str] = {}


def _available(env_id: str) -> bool:
    if env_id == "LunarLander-v3":
        if importlib.util.find_spec("Box2D") is None or importlib.util.find_spec("pygame") is None:
            return False
        with warnings.catch_warnings():  # SWIG's import-time DeprecationWarnings, fatal as errors
            warnings.simplefilter("ignore")
            import Box2D  # noqa: F401
            import pygame  # noqa: F401
    return True


def _rows(history: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """History rows without the wall-clock fields, NaN as a string (NaN != NaN)."""
    return [{k: ("nan" if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()
             if k not in ("sps", "time")} for r in history]


def _same_weights(a: Run, b: Run) -> bool:
    sa, sb = a.policy.state_dict(), b.policy.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _interrupted(env_id: str, kw: Dict[str, Any], path: str) -> None:
    cfg = pgfast.algos.make_config("ppo", env_id, True, total_timesteps=TOTAL, **TINY)
    run = Run("ppo", env_id, cfg, seed=3, device="cpu", env_kwargs=kw)
    run.learn(callback=lambda row: False)  # stop after the first iteration
    assert run.global_step == 32
    run.save(path)
    run.close()


@pytest.fixture(scope="module", autouse=True)
def _print_matrix():
    yield
    if MATRIX:
        print("\nresume matrix (env x exact / refused):")
        for k, v in MATRIX.items():
            print(f"  {k:32s} {v}")


@pytest.mark.parametrize("env_id,kw,refused", CASES, ids=[
    c[0] + ("-gymnasium" if c[1].get("backend") == "gymnasium" else "") for c in CASES])
def test_resume_matrix(env_id, kw, refused, tmp_path):
    if not _available(env_id):
        pytest.skip(f"{env_id} needs gymnasium[box2d]")
    name = env_id + (" (backend=gymnasium)" if kw.get("backend") == "gymnasium" else "")
    full = pgfast.train("ppo", env_id, TOTAL, seed=3, device="cpu", env_kwargs=kw, **TINY)
    path = str(tmp_path / "x.pt")
    _interrupted(env_id, kw, path)
    ck = checkpoint.read(path)
    if refused is None:
        assert ck["env_exact"] is True and ck["env_note"] is None
        with warnings.catch_warnings():
            warnings.simplefilter("error", InexactResumeWarning)
            resumed = load(path).learn()
        assert _rows(resumed.history) == _rows(full.history), f"{env_id}: resumed history differs"
        assert _same_weights(resumed, full), f"{env_id}: resumed weights differ"
        MATRIX[name] = "exact"
    else:
        assert ck["env_exact"] is False and "constructor arguments" in ck["env_note"]
        runs = []
        for _ in range(2):
            with pytest.warns(InexactResumeWarning, match="not identical to an uninterrupted one"):
                r = load(path)
            assert r.resume_note is not None and "reset with seed" in r.resume_note
            runs.append(r.learn())
        # deterministic: two resumes continue identically, from the checkpoint's first row on
        assert _rows(runs[0].history) == _rows(runs[1].history)
        assert _rows(runs[0].history)[:1] == _rows(full.history)[:1]
        assert runs[0].global_step == TOTAL
        MATRIX[name] = f"refused ({ck['env_note']})"
    full.close()


def test_mujoco_fallback_state_is_captured_exactly():
    """The gymnasium MuJoCo env restored from a checkpoint has the same MjData
    (positions, velocities, warm start, time), RNG and TimeLimit counter."""
    pytest.importorskip("mujoco")
    import numpy as np

    env = pgfast.make_vec("Ant-v5", 2, seed=1, autoreset_mode="same_step", backend="gymnasium")
    for _ in range(7):
        env.step(env.action_space.sample())
    cap = checkpoint.capture_env(env)
    assert checkpoint.inexact_reason(cap) is None
    fresh = pgfast.make_vec("Ant-v5", 2, seed=None, autoreset_mode="same_step", backend="gymnasium")
    fresh = checkpoint.restore_env(fresh, cap)
    for a, b in zip(env.envs, fresh.envs):
        ua, ub = a.unwrapped, b.unwrapped
        for f in ("qpos", "qvel", "act", "qacc_warmstart", "time"):
            np.testing.assert_array_equal(getattr(ua.data, f), getattr(ub.data, f))
        assert a._elapsed_steps == b._elapsed_steps == 7
        assert ua.np_random.bit_generator.state == ub.np_random.bit_generator.state
    act = env.action_space.sample()
    o1, r1, *_ = env.step(act)
    o2, r2, *_ = fresh.step(act)
    np.testing.assert_array_equal(o1, o2)
    np.testing.assert_array_equal(r1, r2)
    env.close()
    fresh.close()
