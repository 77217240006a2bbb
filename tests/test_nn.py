"""Networks and distributions: pgfast.nn against torch.distributions and plain MLPs."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.distributions import Categorical, Normal

from pgfast import nn as pnn


def test_mlp_shapes_and_orthogonal_init():
    torch.manual_seed(0)
    net = pnn.mlp(5, (16, 8), 3, activation="relu", ortho_init=True, out_gain=0.5)
    assert net(torch.randn(7, 5)).shape == (7, 3)
    lins = [m for m in net if isinstance(m, torch.nn.Linear)]
    assert [lin.weight.shape for lin in lins] == [(16, 5), (8, 16), (3, 8)]
    w = lins[1].weight  # 8 x 16: orthonormal rows scaled by sqrt(2)
    assert torch.allclose(w @ w.T, 2.0 * torch.eye(8), atol=1e-5)
    w = lins[2].weight
    assert torch.allclose(w @ w.T, 0.25 * torch.eye(3), atol=1e-5)
    assert all(torch.all(lin.bias == 0) for lin in lins)
    assert isinstance(net[1], torch.nn.ReLU)


def test_mlp_bad_input():
    with pytest.raises(ValueError, match="activation"):
        pnn.mlp(3, (4,), 2, activation="sigmoidish")
    with pytest.raises(ValueError, match="in_dim"):
        pnn.mlp(0, (4,), 2)
    with pytest.raises(ValueError, match="hidden_sizes"):
        pnn.mlp(3, (4, -1), 2)


def test_categorical_functions_match_torch_distributions():
    torch.manual_seed(1)
    logits = torch.randn(6, 4)
    logits_q = torch.randn(6, 4)
    a = torch.randint(0, 4, (6,))
    ref = Categorical(logits=logits)
    assert torch.allclose(pnn.categorical_log_prob(logits, a), ref.log_prob(a), atol=1e-6)
    assert torch.allclose(pnn.categorical_entropy(logits), ref.entropy(), atol=1e-6)
    kl_ref = torch.distributions.kl_divergence(ref, Categorical(logits=logits_q))
    assert torch.allclose(pnn.categorical_kl(logits, logits_q), kl_ref, atol=1e-6)


def test_categorical_sample_frequencies_and_generator():
    logits = torch.log(torch.tensor([[0.1, 0.6, 0.3]])).expand(200_000, 3)
    g = torch.Generator().manual_seed(3)
    s = pnn.categorical_sample(logits, g)
    assert s.dtype == torch.int64 and s.min() >= 0 and s.max() <= 2
    freq = torch.bincount(s, minlength=3).double() / s.numel()
    assert torch.allclose(freq, torch.tensor([0.1, 0.6, 0.3], dtype=torch.float64), atol=5e-3)
    g2 = torch.Generator().manual_seed(3)
    assert torch.equal(pnn.categorical_sample(logits, g2), s)
    # a zero-probability action is never drawn
    lg = torch.tensor([[0.0, -float("inf"), 0.0]]).expand(10_000, 3)
    assert not (pnn.categorical_sample(lg, g) == 1).any()


def test_gaussian_functions_match_torch_distributions():
    torch.manual_seed(2)
    mean, mean_q = torch.randn(5, 3), torch.randn(5, 3)
    log_std, log_std_q = torch.randn(3) * 0.3, torch.randn(3) * 0.3
    a = torch.randn(5, 3) * 2
    ref = Normal(mean, log_std.exp())
    assert torch.allclose(pnn.gaussian_log_prob(mean, log_std, a), ref.log_prob(a).sum(-1),
                          atol=1e-5)
    assert torch.allclose(pnn.gaussian_entropy(log_std, 5), ref.entropy().sum(-1), atol=1e-5)
    kl_ref = torch.distributions.kl_divergence(ref, Normal(mean_q, log_std_q.exp())).sum(-1)
    assert torch.allclose(pnn.gaussian_kl(mean, log_std, mean_q, log_std_q), kl_ref, atol=1e-5)
    g = torch.Generator().manual_seed(0)
    s = pnn.gaussian_sample(torch.zeros(50_000, 3), log_std, g)
    assert torch.allclose(s.std(0), log_std.exp(), rtol=2e-2)


def _reference_forward(ac, x, k):
    """The actor (k = 0) or the critic (k = 1) as a plain loop over its layers."""
    (aw, ab), (cw, cb) = ac.layer_tensors()
    w, b = (aw, ab) if k == 0 else (cw, cb)
    h = x
    for i in range(len(w)):
        h = h @ w[i] + b[i]
        if i < len(w) - 1:
            h = torch.tanh(h)
    return h


@pytest.mark.parametrize("space", [gym.spaces.Discrete(3),
                                   gym.spaces.Box(-1, 1, (2,), dtype=np.float32)])
@pytest.mark.parametrize("sizes", [((16, 16), None, None), ((16, 16), (8,), (32, 4, 6))])
def test_actor_critic_is_two_separate_mlps(space, sizes):
    hidden, actor_hs, critic_hs = sizes
    torch.manual_seed(0)
    ac = pnn.ActorCritic(4, space, hidden, actor_hidden_sizes=actor_hs,
                         critic_hidden_sizes=critic_hs)
    want_a = hidden if actor_hs is None else actor_hs
    want_c = hidden if critic_hs is None else critic_hs
    (aw, ab), (cw, cb) = ac.layer_tensors()
    out = 3 if isinstance(space, gym.spaces.Discrete) else 2
    assert [tuple(w.shape) for w in aw] == list(zip((4,) + want_a, want_a + (out,)))
    assert [tuple(w.shape) for w in cw] == list(zip((4,) + want_c, want_c + (1,)))  # one column
    assert [tuple(b.shape) for b in cb] == [(d,) for d in want_c + (1,)]
    x = torch.randn(9, 4)
    pi, v = ac(x)
    assert torch.allclose(pi, _reference_forward(ac, x, 0), atol=1e-6)
    assert torch.allclose(v, _reference_forward(ac, x, 1)[:, 0], atol=1e-6)
    assert torch.equal(ac.value(x), v)
    actor, critic = ac.actor_params_for_grad(), ac.critic_params_for_grad()
    assert not {id(p) for p in actor} & {id(p) for p in critic}
    assert {id(p) for p in actor + critic} == {id(p) for p in ac.parameters()}


def test_actor_critic_act_and_actor_vector_roundtrip():
    torch.manual_seed(0)
    ac = pnn.ActorCritic(3, gym.spaces.Box(-1, 1, (2,), dtype=np.float32), (8,))
    a, logp, v = ac.act(torch.randn(5, 3), generator=torch.Generator().manual_seed(0))
    assert a.shape == (5, 2) and logp.shape == (5,) and v.shape == (5,)
    vec = ac.actor_vector()
    n_actor = 3 * 8 + 8 * 2 + 8 + 2 + 2  # weights, biases, log_std
    assert vec.numel() == n_actor
    critic_before = [p.clone() for p in ac.critic_params_for_grad()]
    ac.set_actor_vector(vec + 1.0)
    assert torch.allclose(ac.actor_vector(), vec + 1.0)
    assert all(torch.equal(p, c) for p, c in zip(ac.critic_params_for_grad(), critic_before))
    with pytest.raises(ValueError, match="entries"):
        ac.set_actor_vector(torch.zeros(n_actor + 1))


@pytest.mark.parametrize("ortho_init", [True, False])
@pytest.mark.parametrize("space", [gym.spaces.Discrete(3),
                                   gym.spaces.Box(-1, 1, (2,), dtype=np.float32)])
def test_actor_critic_init_draws_as_the_stacked_layout_did(ortho_init, space):
    """Equal sizes: the same draws in the same order as the stacked network of earlier
    releases (per layer the actor's [d_out, d_in] matrix, then the critic's; the critic's
    output layer a [1, d] matrix), so a seed gives the same weights."""
    torch.manual_seed(5)
    ac = pnn.ActorCritic(4, space, (8, 6), ortho_init=ortho_init)
    out = 3 if isinstance(space, gym.spaces.Discrete) else 2
    torch.manual_seed(5)
    dims = (4, 8, 6, out)
    want = []
    for i in range(3):
        for k in range(2):
            rows = 1 if (i == 2 and k == 1) else dims[i + 1]
            m = torch.empty(rows, dims[i])
            if ortho_init:
                torch.nn.init.orthogonal_(m, (0.01 if k == 0 else 1.0) if i == 2 else math.sqrt(2.0))
            else:
                m.uniform_(-1.0 / math.sqrt(dims[i]), 1.0 / math.sqrt(dims[i]))
            want.append(m.t())
    (aw, ab), (cw, cb) = ac.layer_tensors()
    got = [t for pair in zip(aw, cw) for t in pair]
    assert all(torch.equal(g, w) for g, w in zip(got, want))
    assert all(torch.all(b == 0) for b in ab + cb)


def test_actor_critic_hidden_size_checks():
    space = gym.spaces.Discrete(2)
    for name in ("hidden_sizes", "actor_hidden_sizes", "critic_hidden_sizes"):
        for bad in ((8, 0), (8, -1), (2.5,), 7, (True,)):
            with pytest.raises(ValueError, match=name):
                pnn.ActorCritic(3, space, **{name: bad})


def test_actor_critic_bad_spaces():
    with pytest.raises(TypeError, match="action_space"):
        pnn.ActorCritic(3, gym.spaces.MultiBinary(2))
    with pytest.raises(ValueError, match="1-D"):
        pnn.ActorCritic(3, gym.spaces.Box(-1, 1, (2, 2)))
    with pytest.raises(ValueError, match="start"):
        pnn.ActorCritic(3, gym.spaces.Discrete(3, start=1))


def test_running_mean_std_matches_numpy_and_state_dict():
    rng = np.random.default_rng(0)
    rms = pnn.RunningMeanStd((3,))
    chunks = [rng.normal(2.0, 3.0, size=(n, 3)) for n in (5, 50, 17)]
    for c in chunks:
        rms.update(torch.as_tensor(c, dtype=torch.float32))
    allx = np.concatenate(chunks).astype(np.float32).astype(np.float64)
    assert np.allclose(rms.mean.numpy(), allx.mean(0), atol=1e-4)
    assert np.allclose(rms.var.numpy(), allx.var(0), rtol=1e-3)
    x = torch.randn(4, 3)
    expect = ((x.double() - rms.mean) / torch.sqrt(rms.var + 1e-8)).clamp(-10, 10).float()
    assert torch.allclose(rms.normalize(x), expect, atol=1e-5)
    rms2 = pnn.RunningMeanStd((3,))
    rms2.load_state_dict(rms.state_dict())
    assert torch.equal(rms2.normalize(x), rms.normalize(x))


def test_obs_normalisation_in_actor_critic_is_applied():
    torch.manual_seed(0)
    ac = pnn.ActorCritic(2, gym.spaces.Discrete(2), (4,), norm_obs=True)
    ac.obs_rms.update(torch.tensor([[100.0, -50.0], [102.0, -52.0]]))
    x = torch.tensor([[101.0, -51.0]])
    plain = pnn.ActorCritic(2, gym.spaces.Discrete(2), (4,))
    plain.load_state_dict({k: v for k, v in ac.state_dict().items() if "obs_rms" not in k})
    assert torch.allclose(ac(x)[0], plain(ac.obs_rms.normalize(x))[0])
    with torch.no_grad():
        assert not math.isclose(float(ac(x)[1]), float(plain(x)[1]))


@pytest.mark.parametrize("continuous", [False, True])
def test_rollout_noise_sampling_has_the_policy_distribution(continuous):
    torch.manual_seed(0)
    space = gym.spaces.Box(-1, 1, (2,), dtype=np.float32) if continuous else gym.spaces.Discrete(3)
    ac = pnn.ActorCritic(2, space, (8,), log_std_init=-0.5)
    with torch.no_grad():
        pi, _ = ac(torch.randn(1, 2) * 3)
        noise = ac.rollout_noise(40_000, 1, torch.Generator().manual_seed(1))
        assert noise.shape == (40_000, 1, ac.out_dim)
        std = ac.log_std.exp() if continuous else None
        a = ac.sample_with_noise(pi.expand(40_000, -1), noise[:, 0], std)
    if continuous:
        assert torch.allclose(a.mean(0), pi[0], atol=0.02)
        assert torch.allclose(a.std(0), ac.log_std.exp().detach(), rtol=0.02)
    else:
        freq = torch.bincount(a, minlength=3).double() / a.numel()
        assert torch.allclose(freq, pi[0].softmax(-1).double(), atol=0.01)


# --------------------------------------------------------------------------- package layout / checkpoints


def test_every_name_of_the_single_module_is_importable_from_pgfast_nn():
    names = ["mlp", "activation_fn", "categorical_log_prob", "categorical_entropy",
             "categorical_sample", "categorical_kl", "gaussian_log_prob", "gaussian_entropy",
             "gaussian_sample", "gaussian_kl", "ActorCritic", "RunningMeanStd", "_LOG_2PI",
             "_ACTIVATIONS", "_check_sizes", "_space_info"]
    for n in names:
        assert hasattr(pnn, n), n
    assert pnn._LOG_2PI == math.log(2.0 * math.pi)
    from pgfast.buffer import RewardScaler
    assert RewardScaler is pnn.RewardScaler


@pytest.mark.parametrize("continuous", [False, True])
def test_actor_critic_state_dict_keys_are_those_of_saved_checkpoints(continuous):
    space = gym.spaces.Box(-1, 1, (2,), dtype=np.float32) if continuous else gym.spaces.Discrete(3)
    ac = pnn.ActorCritic(4, space, (8, 8), norm_obs=True)
    keys = ["log_std"] if continuous else []  # own parameters first, then the submodules'
    for net in ("actor", "critic"):
        keys += [f"{net}_weights.{i}" for i in range(3)] + [f"{net}_biases.{i}" for i in range(3)]
    keys += [f"obs_rms.{k}" for k in ("mean", "var", "count", "mean32", "inv_std32")]
    assert list(ac.state_dict()) == keys  # the parameter order is also the optimiser-state order
    assert [n for n, _ in ac.named_parameters()] == [k for k in keys if "obs_rms" not in k]
    out = space.shape[0] if continuous else 3
    assert [tuple(ac.state_dict()[f"actor_weights.{i}"].shape) for i in range(3)] == [(4, 8), (8, 8), (8, out)]
    assert [tuple(ac.state_dict()[f"critic_weights.{i}"].shape) for i in range(3)] == [(4, 8), (8, 8), (8, 1)]


@pytest.mark.parametrize("continuous", [False, True])
def test_actor_critic_loads_the_stacked_state_dict_of_earlier_releases(continuous):
    """weights.i [2, d_in, d_out] / biases.i [2, 1, d_out] (0 actor, 1 critic; the critic's value
    in output column 0) load as the separate networks."""
    space = gym.spaces.Box(-1, 1, (2,), dtype=np.float32) if continuous else gym.spaces.Discrete(3)
    torch.manual_seed(1)
    ac = pnn.ActorCritic(4, space, (8, 8))
    out = 2 if continuous else 3
    old = {"weights.0": torch.randn(2, 4, 8), "weights.1": torch.randn(2, 8, 8),
           "weights.2": torch.randn(2, 8, out), "biases.0": torch.randn(2, 1, 8),
           "biases.1": torch.randn(2, 1, 8), "biases.2": torch.randn(2, 1, out)}
    if continuous:
        old["log_std"] = torch.full((2,), -0.5)
    assert pnn.actor_critic.is_stacked_state(old) and not pnn.actor_critic.is_stacked_state(ac.state_dict())
    ac.load_state_dict(old)
    (aw, ab), (cw, cb) = ac.layer_tensors()
    for i in range(3):
        assert torch.equal(aw[i], old[f"weights.{i}"][0]) and torch.equal(ab[i], old[f"biases.{i}"][0, 0])
    assert torch.equal(cw[0], old["weights.0"][1]) and torch.equal(cb[1], old["biases.1"][1, 0])
    assert torch.equal(cw[2], old["weights.2"][1][:, :1]) and torch.equal(cb[2], old["biases.2"][1, 0, :1])
    x = torch.randn(5, 4)
    h = x
    for i in range(3):  # the old fused forward
        h = torch.baddbmm(old[f"biases.{i}"], h if h.dim() == 3 else h.expand(2, *h.shape),
                          old[f"weights.{i}"])
        h = torch.tanh(h) if i < 2 else h
    pi, v = ac(x)
    assert torch.allclose(pi, h[0], atol=1e-5) and torch.allclose(v, h[1, :, 0], atol=1e-5)


# --------------------------------------------------------------------------- running statistics


def test_running_mean_std_update_is_bitwise_the_ratio_first_merge():
    """Observation statistics keep their exact float64 rounding (saved in checkpoints)."""
    rng = np.random.default_rng(1)
    rms = pnn.RunningMeanStd((4,))
    mean = torch.zeros(4, dtype=torch.float64)
    var = torch.ones(4, dtype=torch.float64)
    count = torch.tensor(1e-4, dtype=torch.float64)
    for n in (3, 64, 7, 128, 1, 33):
        x = torch.as_tensor(rng.normal(1.5, 4.0, size=(n, 4)), dtype=torch.float32)
        rms.update(x)
        xd = x.double()
        b_mean, b_var = xd.mean(0), xd.var(0, unbiased=False)
        delta = b_mean - mean
        tot = count + n
        mean = mean + delta * (n / tot)
        var = (var * count + b_var * n + delta * delta * (count * n / tot)) / tot
        count = tot
        assert torch.equal(rms.mean, mean) and torch.equal(rms.var, var)
        assert torch.equal(rms.count, count)
        assert torch.equal(rms.inv_std32, (1.0 / torch.sqrt(var + 1e-8)).float())


def test_merge_moments_of_two_halves_equals_moments_of_the_whole():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 3))
    for ratio_first in (True, False):
        m, v, c = pnn.merge_moments(torch.as_tensor(x[:15].mean(0)), torch.as_tensor(x[:15].var(0)),
                                    torch.tensor(15.0, dtype=torch.float64),
                                    torch.as_tensor(x[15:].mean(0)), torch.as_tensor(x[15:].var(0)),
                                    25, ratio_first)
        assert np.allclose(m.numpy(), x.mean(0), rtol=1e-12) and np.allclose(v.numpy(), x.var(0))
        assert float(c) == 40.0
        fm, fv, fc = pnn.merge_moments(float(x[:15, 0].mean()), float(x[:15, 0].var()), 15.0,
                                       float(x[15:, 0].mean()), float(x[15:, 0].var()), 25,
                                       ratio_first)
        assert fm == pytest.approx(x[:, 0].mean(), rel=1e-12) and fv == pytest.approx(x[:, 0].var())


# --------------------------------------------------------------------------- autograd path


@pytest.mark.parametrize("continuous", [False, True])
def test_evaluate_actions_is_forward_plus_log_prob_entropy(continuous):
    torch.manual_seed(0)
    space = gym.spaces.Box(-1, 1, (2,), dtype=np.float32) if continuous else gym.spaces.Discrete(3)
    ac = pnn.ActorCritic(4, space, (16, 16), norm_obs=True)
    ac.obs_rms.update(torch.randn(30, 4) * 2)
    obs = torch.randn(12, 4)
    with torch.no_grad():
        pi, v = ac(obs)
        act = ac.sample(pi)
    logp, ent, val = ac.evaluate_actions(obs, act)
    ref_logp, ref_ent = ac.log_prob_entropy(pi, act)
    assert torch.equal(logp.detach(), ref_logp) and torch.equal(ent.detach(), ref_ent)
    assert torch.equal(val.detach(), v)
    assert logp.requires_grad and val.requires_grad


def test_critic_and_actor_parameter_groups():
    ac = pnn.ActorCritic(2, gym.spaces.Box(-1, 1, (2,), dtype=np.float32), (4,))
    (aw, ab), (cw, cb) = ac.layer_tensors()
    assert ac.critic_params_for_grad() == list(cw) + list(cb)
    assert ac.actor_params_for_grad() == list(aw) + list(ab) + [ac.log_std]


def test_modular_actor_critic_takes_actor_and_critic_sizes():
    from pgfast.nn.modular import ModularActorCritic
    m = ModularActorCritic((5,), gym.spaces.MultiDiscrete([3, 2]), (8,), actor_hidden_sizes=(4, 4),
                           critic_hidden_sizes=(16,))
    lin = [tuple(x.weight.shape) for x in m.pi_net if isinstance(x, torch.nn.Linear)]
    assert lin == [(4, 5), (4, 4), (5, 4)]
    assert [tuple(x.weight.shape) for x in m.v_net if isinstance(x, torch.nn.Linear)] == [(16, 5), (1, 16)]
    pi, v = m(torch.randn(3, 5))
    assert pi.shape == (3, 5) and v.shape == (3,)
