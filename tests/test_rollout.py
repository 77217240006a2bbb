"""The native rollout (pgfast._C.policy_forward / rollout_mlp, Collector(native=True))
against its torch reference (the Collector's Python loop)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import pgfast
from pgfast import _C
from pgfast.buffer import Collector, RolloutBuffer
from pgfast.nn import ActorCritic


def _policy(obs_dim, space, hidden=(64, 64), activation="tanh", seed=0, scale=None):
    torch.manual_seed(seed)
    pol = ActorCritic(obs_dim, space, hidden, activation)
    if scale is not None:  # larger weights: exercise saturated tanh / many active ReLUs
        with torch.no_grad():
            for p in pol.stacked_parameters():
                p.normal_(0.0, scale)
    return pol


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("hidden", [(64, 64), (7,), (32, 16, 8)])
@pytest.mark.parametrize("batch", [1, 5, 300])
def test_policy_forward_matches_torch(activation, hidden, batch):
    pol = _policy(4, gym.spaces.Discrete(3), hidden, activation, scale=0.4)
    x = torch.randn(batch, 4, generator=torch.Generator().manual_seed(1)) * 3
    with torch.no_grad():
        ref = pol(x)[0].numpy()
    ws, bs = pol.native_layers()
    out = _C.policy_forward(ws, bs, activation, x.numpy())
    assert out.shape == ref.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(ref).max()))


def test_tanh_accuracy():
    x = np.linspace(-30, 30, 400_001, dtype=np.float32)
    x = np.concatenate([x, np.array([0.0, -0.0, 1e-30, -1e-6, 3.9e-4, 4.1e-4], np.float32)])
    one = np.ones((2, 1, 1), np.float32)
    zero = np.zeros((2, 1, 1), np.float32)
    y = _C.policy_forward([one, one], [zero, zero], "tanh", x[:, None])[:, 0]
    exact = np.tanh(x.astype(np.float64))
    assert np.abs(y - exact).max() < 5e-7
    assert np.all(np.abs(y) <= 1.0)


def test_policy_forward_checks():
    pol = _policy(4, gym.spaces.Discrete(2))
    ws, bs = pol.native_layers()
    x = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match="activation"):
        _C.policy_forward(ws, bs, "gelu", x)
    with pytest.raises(ValueError):
        _C.policy_forward(ws, bs, "tanh", np.zeros((3, 5), np.float32))
    with pytest.raises(TypeError):
        _C.policy_forward(ws, bs, "tanh", x.astype(np.float64))
    with pytest.raises(ValueError):
        _C.policy_forward(ws[:2], bs, "tanh", x)
    with pytest.raises(ValueError):
        _C.policy_forward([ws[0], ws[0]], bs[:2], "tanh", x)


def _collect_pair(env_id, num_envs, num_steps, rollouts, activation="tanh", scale=None):
    """Two collectors (torch loop, native) on identically seeded envs and policies."""
    out = []
    for native in (False, True):
        env = pgfast.make_vec(env_id, num_envs, autoreset_mode="same_step")
        obs_dim = int(np.prod(env.single_observation_space.shape))
        pol = _policy(obs_dim, env.single_action_space, activation=activation, scale=scale)
        buf = RolloutBuffer(num_steps, num_envs, env.single_observation_space.shape,
                            env.single_action_space)
        col = Collector(env, pol, buf, torch.Generator().manual_seed(3), native=native)
        assert col.native == native
        col.reset(seed=5)
        rows = []
        for _ in range(rollouts):
            col.collect()
            rows.append({k: getattr(buf, k).clone() for k in
                         ("obs", "actions", "rewards", "terminated", "truncated", "final_obs",
                          "logp", "values", "next_values")})
        out.append((rows, col))
        env.close()
    return out


@pytest.mark.parametrize("env_id,activation", [("CartPole-v1", "tanh"), ("Acrobot-v1", "relu"),
                                               ("Pendulum-v1", "tanh"),
                                               ("MountainCarContinuous-v0", "relu")])
def test_native_rollout_matches_torch_loop(env_id, activation):
    # 600 steps per env: CartPole/Pendulum episodes end (terminations, truncations at 500 /
    # 200 steps) inside the rollouts.
    (ref, col_ref), (nat, col_nat) = _collect_pair(env_id, 4, 150, 4, activation)
    tol = 1e-4 if "Continuous" in env_id or "Pendulum" in env_id else 1e-5  # Box: rounding drifts
    for a, b in zip(ref, nat):
        for k in a:
            if a[k].dtype.is_floating_point:
                torch.testing.assert_close(b[k], a[k], rtol=tol, atol=tol)
            else:
                assert torch.equal(b[k], a[k]), k
    assert col_ref.episodes_finished == col_nat.episodes_finished
    np.testing.assert_allclose(list(col_nat.recent_returns), list(col_ref.recent_returns),
                               rtol=tol)


def test_native_rollout_truncation_bootstrap():
    """Truncations (Pendulum's 200-step limit) store the final observations and bootstrap
    from them (Box actions: the envs drift apart by action rounding only; after 300 steps
    of a chaotic pendulum that drift reaches ~2e-4, so the tolerance is 1e-3)."""
    (ref, _), (nat, _) = _collect_pair("Pendulum-v1", 3, 100, 3)
    trunc = torch.stack([r["truncated"] for r in nat])
    assert trunc.any()
    for a, b in zip(ref, nat):
        m = a["truncated"]
        torch.testing.assert_close(b["final_obs"][m], a["final_obs"][m], rtol=1e-3, atol=1e-3)
        torch.testing.assert_close(b["next_values"], a["next_values"], rtol=1e-3, atol=1e-3)


def test_native_actions_match_except_float_ties():
    """Large random weights: the native forward differs from torch's by rounding only, so
    actions differ only where the two best noisy logits are within rounding of each other."""
    env_id, N, T = "Acrobot-v1", 16, 64
    env = pgfast.make_vec(env_id, N, autoreset_mode="same_step")
    pol = _policy(6, env.single_action_space, activation="tanh", scale=1.0)
    obs = torch.randn(T * N, 6) * 2
    noise = pol.rollout_noise(T, N, torch.Generator().manual_seed(0)).reshape(T * N, -1)
    with torch.no_grad():
        logits = pol(obs)[0]
    ws, bs = pol.native_layers()
    nat = torch.from_numpy(_C.policy_forward(ws, bs, "tanh", obs.numpy()))
    a_ref = (logits + noise).argmax(-1)
    a_nat = (nat + noise).argmax(-1)
    top2 = (logits + noise).topk(2, -1).values
    gap = top2[:, 0] - top2[:, 1]
    differ = a_ref != a_nat
    assert bool((gap[differ] < 1e-4).all())
    env.close()


def test_native_rollout_falls_back_where_it_does_not_apply():
    env = pgfast.make_vec("CartPole-v1", 2, autoreset_mode="same_step")
    pol = ActorCritic(4, env.single_action_space, norm_obs=True)
    buf = RolloutBuffer(8, 2, (4,), env.single_action_space)
    assert not Collector(env, pol, buf, torch.Generator(), native=True).native
    env.close()


def test_train_native_rollout_learns_like_torch():
    """Same seed, native vs torch rollout: same number of updates, finite losses, and the
    run's histories agree until the first action flip at a float tie (usually never)."""
    kw = dict(total_timesteps=4 * 128 * 4, seed=0, device="cpu", tuned=False, num_envs=4,
              num_steps=128)
    ref = pgfast.train("ppo", "CartPole-v1", **kw)
    nat = pgfast.train("ppo", "CartPole-v1", native_rollout=True, **kw)
    assert nat.collector.native and not ref.collector.native
    assert len(nat.history) == len(ref.history) == 4
    for b in nat.history:
        assert np.isfinite(b["policy_loss"]) and np.isfinite(b["value_loss"])
    assert nat.history[0]["episodes"] == ref.history[0]["episodes"]


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["ppo", "vpg"])
def test_native_rollout_solves_cartpole(algo):
    """As tests/test_learning.py, with the native rollout: CartPole-v1 solved within 150k steps."""
    run = pgfast.train(algo, "CartPole-v1", total_timesteps=150_000, seed=0, device="cpu",
                       native_rollout=True)
    assert run.collector.native
    mean, std = run.evaluate(episodes=20, deterministic=True)
    assert mean >= 475, (algo, mean, std, run.history[-1])
