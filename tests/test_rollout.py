"""The native rollout (pgfast._C.policy_forward / rollout_mlp, Collector(rollout_backend="native"))
against its torch reference (the Collector's Python loop)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import pgfast
from pgfast import _C
from pgfast.buffer import Collector, RolloutBuffer
from pgfast.nn import ActorCritic, RewardScaler


def _policy(obs_dim, space, hidden=(64, 64), activation="tanh", seed=0, scale=None):
    torch.manual_seed(seed)
    pol = ActorCritic(obs_dim, space, hidden, activation)
    if scale is not None:  # larger weights: exercise saturated tanh / many active ReLUs
        with torch.no_grad():
            for p in [q for n, q in pol.named_parameters() if n != "log_std"]:
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
    (ws, bs), _ = pol.native_layers()
    out = _C.policy_forward(ws, bs, activation, x.numpy())
    assert out.shape == ref.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(ref).max()))


def test_tanh_accuracy():
    x = np.linspace(-30, 30, 400_001, dtype=np.float32)
    x = np.concatenate([x, np.array([0.0, -0.0, 1e-30, -1e-6, 3.9e-4, 4.1e-4], np.float32)])
    one = np.ones((1, 1), np.float32)
    zero = np.zeros(1, np.float32)
    y = _C.policy_forward([one, one], [zero, zero], "tanh", x[:, None])[:, 0]
    exact = np.tanh(x.astype(np.float64))
    assert np.abs(y - exact).max() < 5e-7
    assert np.all(np.abs(y) <= 1.0)


def test_policy_forward_checks():
    pol = _policy(4, gym.spaces.Discrete(2))
    (ws, bs), _ = pol.native_layers()
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


def _collect_pair(env_id, num_envs, num_steps, rollouts, activation="tanh", scale=None,
                  norm=False, core=True, native_eval=False):
    """Two collectors (torch loop, native) on identically seeded envs and policies (with
    ``norm``: observation statistics and reward scaling; ``core=False``: the native rollout
    steps the env through its Python step_into, not its C++ core)."""
    out = []
    for native in (False, True):
        env = pgfast.make_vec(env_id, num_envs, autoreset_mode="same_step")
        if not core:
            env.native_core = lambda: None
        obs_dim = int(np.prod(env.single_observation_space.shape))
        torch.manual_seed(0)
        pol = ActorCritic(obs_dim, env.single_action_space, (64, 64), activation, norm_obs=norm,
                          critic_hidden_sizes=(48,))  # actor and critic of different sizes
        if scale is not None:
            with torch.no_grad():
                for p in [q for n, q in pol.named_parameters() if n != "log_std"]:
                    p.normal_(0.0, scale)
        if norm:
            g = torch.Generator().manual_seed(4)
            pol.obs_rms.update(torch.randn(64, obs_dim, generator=g) * 0.5 + 0.3)
        buf = RolloutBuffer(num_steps, num_envs, env.single_observation_space.shape,
                            env.single_action_space)
        scaler = RewardScaler(num_envs, 0.99) if norm else None
        col = Collector(env, pol, buf, torch.Generator().manual_seed(3), scaler,
                        rollout_backend="native" if native else "torch",
                        native_eval=native_eval)
        assert col.native == native
        col.core_used = env.native_core() is not None  # type: ignore[attr-defined]
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


def _assert_rows_match(ref, nat, tol):
    """Float buffers equal to ``tol``, integer and flag buffers exactly, rollout by rollout."""
    for a, b in zip(ref, nat):
        for k in a:
            if a[k].dtype.is_floating_point:
                torch.testing.assert_close(b[k], a[k], rtol=tol, atol=tol)
            else:
                assert torch.equal(b[k], a[k]), k


@pytest.mark.parametrize("env_id,activation", [("CartPole-v1", "tanh"), ("Acrobot-v1", "relu"),
                                               ("Pendulum-v1", "tanh"),
                                               ("MountainCarContinuous-v0", "relu")])
def test_native_rollout_matches_torch_loop(env_id, activation):
    # 600 steps per env: CartPole/Pendulum episodes end (terminations, truncations at 500 /
    # 200 steps) inside the rollouts.
    (ref, col_ref), (nat, col_nat) = _collect_pair(env_id, 4, 150, 4, activation)
    tol = 1e-4 if "Continuous" in env_id or "Pendulum" in env_id else 1e-5  # Box: rounding drifts
    _assert_rows_match(ref, nat, tol)
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
    (ws, bs), _ = pol.native_layers()
    nat = torch.from_numpy(_C.policy_forward(ws, bs, "tanh", obs.numpy()))
    a_ref = (logits + noise).argmax(-1)
    a_nat = (nat + noise).argmax(-1)
    top2 = (logits + noise).topk(2, -1).values
    gap = top2[:, 0] - top2[:, 1]
    differ = a_ref != a_nat
    assert bool((gap[differ] < 1e-4).all())
    env.close()


def test_native_rollout_is_chosen_where_it_applies_and_refused_with_the_reason_elsewhere():
    env = pgfast.make_vec("CartPole-v1", 2, autoreset_mode="same_step")
    buf = RolloutBuffer(8, 2, (4,), env.single_action_space)
    for backend, native in (("auto", True), ("native", True), ("torch", False)):
        assert Collector(env, ActorCritic(4, env.single_action_space), buf, torch.Generator(),
                         rollout_backend=backend).native == native
    pol = ActorCritic(4, env.single_action_space).double()  # float64 layers: torch only
    assert not Collector(env, pol, buf, torch.Generator(), rollout_backend="auto").native
    with pytest.raises(ValueError, match=r"rollout_backend='native': .*float64"):
        Collector(env, pol, buf, torch.Generator(), rollout_backend="native")
    with pytest.raises(ValueError, match="rollout_backend must be one of auto, native, torch"):
        Collector(env, ActorCritic(4, env.single_action_space), buf, torch.Generator(), rollout_backend="c++")
    env.close()
    # gymnasium's own vector env has no step_into
    genv = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")] * 2,
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    col = Collector(genv, ActorCritic(4, genv.single_action_space), buf, torch.Generator(),
                    rollout_backend="auto")
    assert not col.native
    with pytest.raises(ValueError, match=r"rollout_backend='native': .*step_into.*SyncVectorEnv"):
        Collector(genv, ActorCritic(4, genv.single_action_space), buf, torch.Generator(),
                  rollout_backend="native")
    genv.close()


def test_train_native_rollout_learns_like_torch():
    """Same seed, native vs torch rollout: same number of updates, finite losses, and the
    run's histories agree until the first action flip at a float tie (usually never)."""
    kw = dict(total_timesteps=4 * 128 * 4, seed=0, device="cpu", tuned=False, num_envs=4,
              num_steps=128)
    ref = pgfast.train("ppo", "CartPole-v1", rollout_backend="torch", **kw)
    nat = pgfast.train("ppo", "CartPole-v1", rollout_backend="native", **kw)
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
                       rollout_backend="native")
    assert run.collector.native
    mean, std = run.evaluate(episodes=20, deterministic=True)
    assert mean >= 475, (algo, mean, std, run.history[-1])


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_native_rollout_with_observation_and_reward_normalisation(env_id):
    """The policy sees normalised observations (the same float32 operations as
    RunningMeanStd.normalize) and the rewards are scaled after the rollout in the same
    order as step by step: the buffers match the torch loop's."""
    (ref, col_ref), (nat, col_nat) = _collect_pair(env_id, 3, 120, 3, norm=True)
    assert col_nat.native and col_nat.policy.obs_rms is not None
    tol = 1e-4 if env_id == "Pendulum-v1" else 1e-5
    _assert_rows_match(ref, nat, tol)
    assert col_ref.reward_scaler.var == pytest.approx(col_nat.reward_scaler.var, rel=1e-4)
    assert col_ref.reward_scaler.var != 1.0


@pytest.mark.parametrize("env_id", ["CartPole-v1", "MountainCarContinuous-v0"])
def test_stepping_the_env_core_from_cpp_equals_stepping_through_python(env_id):
    (_, _), (via_core, col) = _collect_pair(env_id, 4, 150, 2)
    assert col.core_used
    (_, _), (via_python, col2) = _collect_pair(env_id, 4, 150, 2, core=False)
    assert not col2.core_used
    for a, b in zip(via_core, via_python):
        for k in a:
            assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("env_id", ["Acrobot-v1", "Pendulum-v1"])
def test_native_eval_log_probs_and_values_match_torch(env_id):
    (ref, _), (nat, col) = _collect_pair(env_id, 5, 130, 2, native_eval=True, norm=True)
    assert col.native_eval
    tol = 1e-4 if env_id == "Pendulum-v1" else 1e-5
    for a, b in zip(ref, nat):
        for k in ("logp", "values", "next_values"):
            torch.testing.assert_close(b[k], a[k], rtol=tol, atol=tol)


@pytest.mark.parametrize("continuous", [False, True])
@pytest.mark.parametrize("rows", [1, 300, 700])
def test_policy_evaluate_matches_torch_and_checks_input(continuous, rows):
    space = gym.spaces.Box(-1, 1, (2,), np.float32) if continuous else gym.spaces.Discrete(3)
    torch.manual_seed(1)
    pol = ActorCritic(5, space, (40, 24), "tanh", log_std_init=-0.3, critic_hidden_sizes=(17,))
    g = torch.Generator().manual_seed(2)
    obs = torch.randn(rows, 5, generator=g)
    act = torch.randn(rows, 2, generator=g) if continuous else torch.randint(0, 3, (rows,),
                                                                             generator=g)
    with torch.no_grad():
        lp_ref, _, v_ref = pol.evaluate_actions(obs, act)
    log_std = pol.log_std.detach().numpy() if continuous else None
    (aw, ab), (cw, cb) = pol.native_layers()
    nets = dict(actor_weights=aw, actor_biases=ab, critic_weights=cw, critic_biases=cb,
                activation="tanh")
    v = np.zeros(rows, np.float32)
    lp = np.zeros(rows, np.float32)
    _C.policy_evaluate(**nets, log_std=log_std, obs=obs.numpy(), actions=act.numpy(), values=v,
                       logp=lp)
    np.testing.assert_allclose(v, v_ref.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(lp, lp_ref.numpy(), rtol=1e-5, atol=1e-5)
    v2 = np.zeros(rows, np.float32)  # values only; the same numbers
    _C.policy_evaluate(**nets, log_std=log_std, obs=obs.numpy(), actions=None, values=v2, logp=None)
    assert np.array_equal(v, v2)
    if not continuous:
        bad = act.numpy().copy()
        bad[-1] = 3
        with pytest.raises(ValueError, match="outside"):
            _C.policy_evaluate(**nets, log_std=None, obs=obs.numpy(), actions=bad, values=v, logp=lp)
    with pytest.raises(ValueError, match="share memory"):
        _C.policy_evaluate(**nets, log_std=log_std, obs=obs.numpy(), actions=act.numpy(), values=v,
                           logp=v)
    with pytest.raises(TypeError):
        _C.policy_evaluate(**nets, log_std=log_std, obs=obs.double().numpy(), actions=act.numpy(),
                           values=v, logp=lp)
