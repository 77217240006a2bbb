"""Rollout buffer and collector: bootstrapping at time limits, terminations, both env paths."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from gymnasium.wrappers import TimeLimit

from pgfast.algos.ppo import PPO, PPOConfig
from pgfast.buffer import Collector, RewardScaler, RolloutBuffer


class ScriptedEnv(gym.Env):
    """Deterministic: obs = [steps taken in this episode, env tag], reward = step number
    (1, 2, ...); terminates after ``term_at`` steps if given."""

    metadata = {"render_modes": []}

    def __init__(self, tag=0.0, term_at=None):
        self.observation_space = gym.spaces.Box(-1e6, 1e6, (2,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.tag, self.term_at, self.t = float(tag), term_at, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0, self.tag], dtype=np.float32), {}

    def step(self, action):
        self.t += 1
        term = self.term_at is not None and self.t >= self.term_at
        return np.array([self.t, self.tag], dtype=np.float32), float(self.t), term, False, {}


def _scripted_vec():
    # env 0: cut by a time limit after 3 steps; env 1: terminates after 3 steps.
    return SyncVectorEnv([lambda: TimeLimit(ScriptedEnv(0.0), 3),
                          lambda: TimeLimit(ScriptedEnv(1.0, term_at=3), 100)],
                         autoreset_mode=AutoresetMode.SAME_STEP)


class DenseStepInto(gym.vector.VectorEnv):
    """Test double of a native env: same_step autoreset with a dense final_obs array and
    step_into writing into caller arrays."""

    def __init__(self, inner):
        self.inner = inner
        self.num_envs = inner.num_envs
        self.single_observation_space = inner.single_observation_space
        self.single_action_space = inner.single_action_space
        self.observation_space = inner.observation_space
        self.action_space = inner.action_space
        self.metadata = dict(inner.metadata)
        self.calls = 0

    def reset(self, *, seed=None, options=None):
        return self.inner.reset(seed=seed, options=options)

    def step_into(self, actions, obs_out, rew_out, term_out, trunc_out):
        self.calls += 1
        o, r, te, tr, info = self.inner.step(np.asarray(actions))
        obs_out[...] = o
        rew_out[...] = r
        term_out[...] = te
        trunc_out[...] = tr
        dense = np.zeros((self.num_envs, 2), dtype=np.float32)
        mask = info.get("_final_obs", np.zeros(self.num_envs, dtype=bool))
        for i in np.flatnonzero(mask):
            dense[i] = info["final_obs"][i]
        return {"final_obs": dense, "_final_obs": mask}


class StubPolicy:
    """Always action 0, logp 0, V(s) = 10 * s[0] + 1."""

    def forward(self, obs):
        return torch.zeros(obs.shape[0], 2), 10.0 * obs[:, 0] + 1.0

    def __call__(self, obs):
        return self.forward(obs)

    continuous = False
    log_std = None

    def sample(self, pi_out, deterministic=False, generator=None):
        return torch.zeros(pi_out.shape[0], dtype=torch.int64)

    def rollout_noise(self, T, N, generator=None):
        return torch.zeros(T, N, 2)

    def sample_with_noise(self, pi_out, noise, std=None):
        return self.sample(pi_out)

    def log_prob(self, pi_out, actions):
        return torch.zeros(pi_out.shape[0])

    def value(self, obs):
        return self(obs)[1]


def _collect(env, T=5):
    space = env.single_action_space
    buf = RolloutBuffer(T, env.num_envs, (2,), space, "cpu")
    col = Collector(env, StubPolicy(), buf, torch.Generator())
    col.reset(seed=0)
    col.collect()
    return buf, col


@pytest.mark.parametrize("native", [False, True])
def test_truncation_bootstraps_and_termination_does_not(native):
    env = DenseStepInto(_scripted_vec()) if native else _scripted_vec()
    buf, col = _collect(env)
    if native:
        assert env.calls == 5
    # env 0: obs rows 0,1,2 | reset 0,1 ; truncated at t=2 (final obs [3, 0])
    assert buf.obs[:, 0, 0].tolist() == [0, 1, 2, 0, 1, 2]
    assert buf.truncated[:, 0].tolist() == [False, False, True, False, False]
    assert buf.terminated[:, 1].tolist() == [False, False, True, False, False]
    assert not buf.terminated[:, 0].any() and not buf.truncated[:, 1].any()
    assert buf.rewards[:, 0].tolist() == [1, 2, 3, 1, 2]
    assert torch.equal(buf.final_obs[2, 0], torch.tensor([3.0, 0.0]))
    # next_values: V(obs[t+1]) except V(final obs) = 31 at the truncation
    assert buf.next_values[:, 0].tolist() == [11, 21, 31, 11, 21]
    assert buf.values[:, 0].tolist() == [1, 11, 21, 1, 11]
    gamma = 0.5
    ppo = PPO.__new__(PPO)
    ppo.cfg = PPOConfig(gamma=gamma, gae_lambda=1.0, num_envs=2, num_steps=5, num_minibatches=1)
    adv, ret = ppo.advantages(buf)
    # value targets: truncated episode bootstraps from V(final obs); terminated does not
    assert ret[2, 0].item() == pytest.approx(3 + gamma * 31)
    assert ret[1, 0].item() == pytest.approx(2 + gamma * (3 + gamma * 31))
    assert ret[2, 1].item() == pytest.approx(3.0)
    assert ret[1, 1].item() == pytest.approx(2 + gamma * 3)
    # the rollout's last row bootstraps from V(obs[T])
    assert ret[4, 0].item() == pytest.approx(2 + gamma * 21)
    assert torch.allclose(adv, ret - buf.values)
    # episode statistics of finished episodes
    assert sorted(col.recent_returns) == [6.0, 6.0]
    assert list(col.recent_lengths) == [3, 3]
    assert col.episodes_finished == 2
    assert col.ep_len.tolist() == [2, 2]


def test_both_env_paths_fill_identical_buffers():
    b1, _ = _collect(_scripted_vec(), T=7)
    b2, _ = _collect(DenseStepInto(_scripted_vec()), T=7)
    for name in ("obs", "actions", "rewards", "terminated", "truncated", "values",
                 "next_values", "final_obs"):
        assert torch.equal(getattr(b1, name), getattr(b2, name)), name


def test_rollouts_continue_from_last_observation():
    env = _scripted_vec()
    buf = RolloutBuffer(2, 2, (2,), env.single_action_space, "cpu")
    col = Collector(env, StubPolicy(), buf, torch.Generator())
    col.reset(seed=0)
    col.collect()
    assert buf.obs[:, 0, 0].tolist() == [0, 1, 2]
    col.collect()
    # truncation at the 3rd step: obs[1] is the reset obs, next_values[0] uses final obs
    assert buf.obs[:, 0, 0].tolist() == [2, 0, 1]
    assert buf.next_values[0, 0].item() == 31.0


def test_collector_rejects_next_step_env_and_size_mismatch():
    env = SyncVectorEnv([lambda: ScriptedEnv()], autoreset_mode=AutoresetMode.NEXT_STEP)
    buf = RolloutBuffer(2, 1, (2,), env.single_action_space)
    with pytest.raises(ValueError, match="same_step"):
        Collector(env, StubPolicy(), buf, torch.Generator())
    env2 = _scripted_vec()
    with pytest.raises(ValueError, match="envs"):
        Collector(env2, StubPolicy(), buf, torch.Generator())


def test_buffer_bad_sizes():
    with pytest.raises(ValueError, match="num_steps"):
        RolloutBuffer(0, 2, (2,), gym.spaces.Discrete(2))
    with pytest.raises(ValueError, match="num_envs"):
        RolloutBuffer(2, -1, (2,), gym.spaces.Discrete(2))


def test_box_actions_clipped_only_at_env_boundary():
    class Recorder(ScriptedEnv):
        def __init__(self):
            super().__init__()
            self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)
            self.seen = []

        def step(self, action):
            self.seen.append(np.array(action))
            return super().step(0)

    class BigPolicy(StubPolicy):
        def forward(self, obs):
            return torch.zeros(obs.shape[0], 1), torch.zeros(obs.shape[0])

        continuous = True
        log_std = torch.zeros(1)

        def sample(self, pi_out, deterministic=False, generator=None):
            return torch.full((pi_out.shape[0], 1), 5.0)

    rec = Recorder()
    env = SyncVectorEnv([lambda: rec], autoreset_mode=AutoresetMode.SAME_STEP)
    buf = RolloutBuffer(3, 1, (2,), env.single_action_space)
    col = Collector(env, BigPolicy(), buf, torch.Generator())
    col.reset(seed=0)
    col.collect()
    assert torch.all(buf.actions == 5.0)  # the buffer keeps the unclipped sample
    assert all(float(a[0]) == 1.0 for a in rec.seen)


def test_reward_scaler_matches_reference():
    rng = np.random.default_rng(0)
    rew = rng.normal(size=(50, 3))
    done = rng.random((50, 3)) < 0.1
    sc = RewardScaler(3, gamma=0.9, clip=10.0)
    got = rew.copy()
    for t in range(50):
        sc(got[t], done[t])
    # reference: plain loops
    ret = np.zeros(3)
    hist = []
    out = np.zeros_like(rew)
    for t in range(50):
        ret = ret * 0.9 + rew[t]
        hist.extend(ret.tolist())
        allr = np.array(hist)
        n = len(allr)
        # running mean/var with the 1e-4 prior count (mean 0, var 1)
        var = (1e-4 * 1.0 + ((allr - allr.mean()) ** 2).sum() + n * 1e-4 / (n + 1e-4)
               * allr.mean() ** 2) / (n + 1e-4)
        out[t] = np.clip(rew[t] / np.sqrt(var + 1e-8), -10, 10)
        ret[done[t]] = 0.0
    assert np.allclose(got, out, rtol=1e-6)
    assert sc.mean == pytest.approx(np.array(hist).sum() / (len(hist) + 1e-4))
    st = sc.state_dict()
    sc2 = RewardScaler(3, gamma=0.9)
    sc2.load_state_dict(st)
    a, b = np.ones(3), np.ones(3)
    sc(a, np.zeros(3, bool))
    sc2(b, np.zeros(3, bool))
    assert np.array_equal(a, b)


def _reward_scaler_left_to_right(rew, done, gamma, clip=10.0, eps=1e-8):
    """Reward scaling with gymnasium's / OpenAI baselines' update, products left to right."""
    ret = np.zeros(rew.shape[1])
    mean, var, count = 0.0, 1.0, 1e-4
    out, stats = rew.copy(), []
    for t in range(rew.shape[0]):
        ret = ret * gamma + out[t]
        b_mean, b_var, n = float(ret.mean()), float(ret.var()), ret.shape[0]
        delta = b_mean - mean
        tot = count + n
        mean = mean + delta * n / tot
        var = (var * count + b_var * n + delta * delta * count * n / tot) / tot
        count = tot
        out[t] = np.clip(out[t] * (1.0 / np.sqrt(var + eps)), -clip, clip)
        stats.append((mean, var, count))
        ret[done[t]] = 0.0
    return out, stats


def test_reward_scaler_is_bitwise_the_left_to_right_update():
    """The shared running-variance update keeps the reward scaler's exact rounding
    (its statistics are saved in checkpoints and scale every reward)."""
    rng = np.random.default_rng(3)
    rew = (rng.normal(size=(400, 5)) * 4).astype(np.float32)
    done = rng.random((400, 5)) < 0.05
    sc = RewardScaler(5, gamma=0.99)
    got = rew.copy()
    stats = []
    for t in range(400):
        sc(got[t], done[t])
        stats.append((sc.mean, sc.var, sc.count))
    expect, ref_stats = _reward_scaler_left_to_right(rew.astype(np.float64), done, 0.99)
    assert stats == ref_stats
    assert np.array_equal(got, expect.astype(np.float32))
    # the rounding order matters (so the check above has teeth): the observations'
    # order gives different bits on the same data
    from pgfast.nn import merge_moments
    lr = ro = (0.0, 1.0, 1e-4)
    differs = False
    for _ in range(200):
        x = rng.normal(size=5) * 4
        bm, bv = float(x.mean()), float(x.var())
        lr = merge_moments(*lr, bm, bv, 5, ratio_first=False)
        ro = merge_moments(*ro, bm, bv, 5, ratio_first=True)
        differs |= lr != ro
    assert differs


@pytest.mark.parametrize("backend", ["gymnasium", "native"])
def test_time_limit_bootstrap_with_real_cartpole(backend):
    import pgfast
    from pgfast.envs import native_ids
    from pgfast.nn import ActorCritic
    if backend == "native" and "CartPole-v1" not in native_ids():
        pytest.skip("no native CartPole-v1 registered")
    env = pgfast.make_vec("CartPole-v1", 3, autoreset_mode="same_step", backend=backend,
                          max_episode_steps=5)
    torch.manual_seed(0)
    pol = ActorCritic(4, env.single_action_space, (8,))
    buf = RolloutBuffer(12, 3, (4,), env.single_action_space)
    col = Collector(env, pol, buf, torch.Generator().manual_seed(0))
    col.reset(seed=0)
    col.collect()
    trunc, term = buf.truncated, buf.terminated
    assert trunc.sum() >= 3  # every env is cut after 5 steps unless the pole fell first
    with torch.no_grad():
        v_next = pol.value(buf.obs[1:].reshape(-1, 4)).view(12, 3)
        v_final = pol.value(buf.final_obs.reshape(-1, 4)).view(12, 3)
    cut = trunc & ~term
    # (allclose: a forward pass over a different batch size may round differently)
    assert torch.allclose(buf.next_values[cut], v_final[cut], atol=1e-6)
    assert torch.allclose(buf.next_values[~trunc], v_next[~trunc], atol=1e-6)
    assert not torch.allclose(v_final[cut], v_next[cut], atol=1e-3)
    # the final observation is not the reset observation that follows it
    assert not torch.equal(buf.final_obs[cut], buf.obs[1:][cut])
    # episodes of exactly 5 steps were truncated
    assert all(length <= 5 for length in col.recent_lengths)
    env.close()


def _episode_stats_loop(rewards, dones, carry_ret, carry_len):
    rets, lens = [], []
    for t in range(rewards.shape[0]):
        carry_ret += rewards[t]
        carry_len += 1
        for i in range(rewards.shape[1]):
            if dones[t, i]:
                rets.append(carry_ret[i])
                lens.append(carry_len[i])
                carry_ret[i] = 0.0
                carry_len[i] = 0
    return np.array(rets), np.array(lens, dtype=np.int64)


@pytest.mark.parametrize("seed", range(6))
def test_episode_stats_matches_step_by_step_loop(seed):
    from pgfast.buffer import episode_stats
    rng = np.random.default_rng(seed)
    T, N = rng.integers(1, 30), rng.integers(1, 6)
    rewards = rng.integers(-3, 4, size=(T, N)).astype(np.float32)  # exact sums
    dones = rng.random((T, N)) < rng.choice([0.0, 0.1, 0.5, 1.0])
    c_ret, c_len = rng.integers(0, 5, N).astype(np.float64), rng.integers(0, 5, N)
    ref = _episode_stats_loop(rewards, dones, c_ret.copy(), c_len.copy())
    r_ret, r_len = c_ret.copy(), c_len.copy()
    _episode_stats_loop(rewards, dones, r_ret, r_len)
    got = episode_stats(rewards, dones, c_ret, c_len)
    assert np.array_equal(got[0], ref[0]) and np.array_equal(got[1], ref[1])
    assert np.array_equal(c_ret, r_ret) and np.array_equal(c_len, r_len)


@pytest.mark.parametrize("num_envs", [1, 3])
def test_reward_scaler_scale_rollout_equals_step_by_step(num_envs):
    """scale_rollout (used after a native rollout) keeps the per-step statistics exactly and
    the scaled rewards to one float32 rounding."""
    rng = np.random.default_rng(0)
    T = 300
    rew = (rng.normal(size=(T, num_envs)) * 5 + 1).astype(np.float32)
    rew[50, 0] = 400.0  # a large reward: clipped
    dones = rng.random((T, num_envs)) < 0.02
    ref, fast = RewardScaler(num_envs, 0.99, clip=5.0), RewardScaler(num_envs, 0.99, clip=5.0)
    ref.ret[:] = fast.ret[:] = 2.5  # carried from an earlier rollout
    a, b = rew.copy(), rew.copy()
    for t in range(T):
        ref(a[t], dones[t])
    fast.scale_rollout(b, dones)
    assert (ref.mean, ref.var, ref.count) == (fast.mean, fast.var, fast.count)
    np.testing.assert_array_equal(ref.ret, fast.ret)
    np.testing.assert_allclose(b, a, rtol=2e-7, atol=0)
    assert np.abs(b).max() == 5.0 and b.dtype == np.float32
