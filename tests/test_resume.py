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


# ---------------------------------------------------------------- checkpoints of the stacked layout

def _stack(a: Any, c: Any) -> torch.Tensor:
    """Actor and critic tensors of one layer as the stacked ``[2, ...]`` tensor of earlier
    releases (the critic's missing output columns zero, as they stayed there)."""
    a = a if a is not None else torch.zeros_like(c)
    out = torch.zeros((2,) + tuple(a.shape), dtype=a.dtype)
    out[0] = a
    if c is not None:
        out[1][..., :c.shape[-1]] = c
    return out


def _as_stacked_checkpoint(ck: Dict[str, Any], run: Run) -> Dict[str, Any]:
    """A current checkpoint rewritten by hand in the layout of earlier releases: the policy's
    ``weights.i`` ``[2, d_in, d_out]`` / ``biases.i`` ``[2, 1, d_out]`` and every optimiser's
    moments over those stacked tensors, in the parameter order that layout gave them."""
    pol = run.policy
    L = len(pol.actor_weights)
    sd = ck["policy"]
    old = {k: v for k, v in sd.items() if not k.startswith(("actor_", "critic_"))}
    for i in range(L):
        old[f"weights.{i}"] = _stack(sd[f"actor_weights.{i}"], sd[f"critic_weights.{i}"])
        old[f"biases.{i}"] = _stack(sd[f"actor_biases.{i}"][None], sd[f"critic_biases.{i}"][None])
    name_of = {id(p): n for n, p in pol.named_parameters()}
    updater = {}
    for key, st in ck["updater"].items():
        names = [name_of[id(p)] for p in run.updater.optimizers[key].params]
        stacked = []
        if key == "ac" and "log_std" in names:  # Module.parameters(): log_std first
            stacked.append("log_std")
        stacked += [f"weights.{i}" for i in range(L)] + [f"biases.{i}" for i in range(L)]
        if key == "pi" and "log_std" in names:  # actor_params_for_grad(): log_std last
            stacked.append("log_std")
        new_st = dict(st)
        for m in ("exp_avg", "exp_avg_sq"):
            got = dict(zip(names, st[m]))
            lst = []
            for n in stacked:
                if n == "log_std":
                    lst.append(got[n])
                    continue
                kind, i = n.split(".")
                a, c = got.get(f"actor_{kind}.{i}"), got.get(f"critic_{kind}.{i}")
                if kind == "biases":
                    a, c = (None if a is None else a[None]), (None if c is None else c[None])
                lst.append(_stack(a, c))
            new_st[m] = lst
        new_st["steps"] = [st["steps"][0].clone() for _ in stacked]
        updater[key] = new_st
    return dict(ck, policy=old, updater=updater)


@pytest.mark.parametrize("algo,env_id,extra", [
    ("ppo", "CartPole-v1", {}), ("ppo", "Pendulum-v1", {}),
    ("vpg", "Pendulum-v1", {"baseline": True}), ("vpg", "CartPole-v1", {"baseline": False}),
    ("trpo", "CartPole-v1", {}),
])
def test_a_checkpoint_of_the_stacked_layout_resumes_exactly(algo, env_id, extra, tmp_path):
    """A format-2 checkpoint of earlier releases (actor and critic stacked in one tensor per
    layer, optimiser moments over those tensors) loads, weights_only, and the resumed run
    continues exactly as the uninterrupted one: weights and Adam moments are converted."""
    kw = dict(TINY, hidden_sizes=(8, 8), num_minibatches=2, **extra)
    full = pgfast.train(algo, env_id, TOTAL, seed=3, device="cpu", **kw)
    cfg = pgfast.algos.make_config(algo, env_id, True, total_timesteps=TOTAL, **kw)
    run = Run(algo, env_id, cfg, seed=3, device="cpu")
    run.learn(callback=lambda row: False)
    old = _as_stacked_checkpoint(run.state_dict(), run)
    assert old["policy"]["weights.0"].dim() == 3 and old["format"] == checkpoint.FORMAT
    path = str(tmp_path / "old.pt")
    checkpoint.write(old, path)
    run.close()
    resumed = load(path).learn()
    assert _rows(resumed.history) == _rows(full.history)
    assert _same_weights(resumed, full)
    assert "weights.0" not in resumed.policy.state_dict()
    full.close()
    resumed.close()
