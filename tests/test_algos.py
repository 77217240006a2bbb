"""Loss math of PPO / VPG / TRPO on hand-made batches, CG, Fisher-vector products, configs."""

import copy
import dataclasses
import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.func import functional_call

from pgfast.algos import field_docs, flat_batch, get_algo
from pgfast.algos.ppo import PPO, PPOConfig, ppo_clip_loss, ppo_minibatch_loss, ppo_value_loss
from pgfast.algos.trpo import TRPO, TRPOConfig, conjugate_gradient, line_search
from pgfast.algos.vpg import VPG, VPGConfig, vpg_loss
from pgfast.nn import ActorCritic, categorical_log_prob
from pgfast.algos import make_config
from pgfast.trainer import Run

# --------------------------------------------------------------------------- PPO


def _clip_loss_by_hand(logp, logp_old, adv, eps):
    terms = []
    for lp, lo, a in zip(logp, logp_old, adv):
        r = math.exp(lp - lo)
        terms.append(min(r * a, min(max(r, 1 - eps), 1 + eps) * a))
    return -sum(terms) / len(terms)


def test_ppo_loss_equals_formula_with_negative_advantages_and_clipped_ratios():
    logp_old = [-1.0, -0.5, -2.0, -0.1, -1.5, -0.7]
    # ratios: e^0.5 (above 1+eps), e^-0.6 (below 1-eps), e^0.1, e^-0.1, e^0.3, e^-0.3
    logp = [-0.5, -1.1, -1.9, -0.2, -1.2, -1.0]
    adv = [1.0, -2.0, -0.5, 3.0, -1.5, 0.7]
    eps = 0.2
    got = ppo_clip_loss(torch.tensor(logp, dtype=torch.float64),
                        torch.tensor(logp_old, dtype=torch.float64),
                        torch.tensor(adv, dtype=torch.float64), eps)
    assert got.item() == pytest.approx(_clip_loss_by_hand(logp, logp_old, adv, eps), rel=1e-12)
    # the clip binds: ratio e^0.5 with A > 0 contributes (1 + eps) * A, not e^0.5 * A
    one = ppo_clip_loss(torch.tensor([-0.5]), torch.tensor([-1.0]), torch.tensor([1.0]), eps)
    assert one.item() == pytest.approx(-(1 + eps))
    # negative advantage, ratio below 1 - eps: the unclipped (more pessimistic) term is used
    neg = ppo_clip_loss(torch.tensor([-1.6]), torch.tensor([-1.0]), torch.tensor([-2.0]), eps)
    assert neg.item() == pytest.approx(2.0 * (1 - eps))
    neg2 = ppo_clip_loss(torch.tensor([-0.5]), torch.tensor([-1.0]), torch.tensor([-2.0]), eps)
    assert neg2.item() == pytest.approx(2.0 * math.exp(0.5))


def test_ppo_ratio_of_log_probs_is_wrong_and_ours_is_not():
    logp_old = torch.tensor([-1.0, -0.5, -2.0, -0.1])
    logp = torch.tensor([-0.9, -0.6, -1.7, -0.15])
    adv = torch.tensor([1.0, -1.0, 0.5, 2.0])
    ours = ppo_clip_loss(logp, logp_old, adv, 0.2)
    wrong_ratio = logp / logp_old
    wrong = -torch.min(wrong_ratio * adv, wrong_ratio.clamp(0.8, 1.2) * adv).mean()
    right_ratio = (logp - logp_old).exp()
    right = -torch.min(right_ratio * adv, right_ratio.clamp(0.8, 1.2) * adv).mean()
    assert ours.item() == pytest.approx(right.item(), rel=1e-6)
    assert abs(ours.item() - wrong.item()) > 1e-3


def test_ppo_value_loss_clipped_and_unclipped():
    v = torch.tensor([1.0, 3.0, -1.0])
    v_old = torch.tensor([0.0, 2.9, 0.0])
    ret = torch.tensor([2.0, 0.0, 0.0])
    assert ppo_value_loss(v, v_old, ret, None).item() == pytest.approx(0.5 * (1 + 9 + 1) / 3)
    # clipped predictions: 0.2, 3.0 (inside), -0.2 ; max of squared errors per element
    expect = 0.5 * (max(1, 1.8 ** 2) + max(9, 9) + max(1, 0.04)) / 3
    assert ppo_value_loss(v, v_old, ret, 0.2).item() == pytest.approx(expect)


def _small_run(algo, **kw):
    fields = dict(num_envs=4, num_steps=16, total_timesteps=64, num_minibatches=2)
    fields.update(kw)
    cfg = make_config(algo, **fields)
    return Run(algo, "CartPole-v1", cfg, seed=0, device="cpu")


@pytest.mark.parametrize("mode", ["native", "torch"])
def test_ppo_ratio_is_exactly_one_in_first_epoch(mode):
    run = _small_run("ppo", update_backend=mode, num_minibatches=1, update_epochs=1)
    assert run.paths["update"] == mode and run.collector.native_eval == (mode == "native")
    run.collector.collect()
    obs, act, logp_old, v_old = flat_batch(run.buffer)
    adv, ret = run.updater.advantages(run.buffer)
    A, R = adv.reshape(-1), ret.reshape(-1)
    # the first minibatch sees the rollout's parameters: logp equals logp_old bitwise (the
    # native update's C++ forward computed the rollout's log-probs too)
    if mode == "torch":
        _, (logp, *_) = ppo_minibatch_loss(run.policy, obs, act, logp_old, v_old, A, R, 0.2,
                                           True, 0.01, 0.5)
        assert torch.equal(logp.detach(), logp_old)
        assert torch.equal(torch.exp(logp.detach() - logp_old), torch.ones_like(logp_old))
    # the update's statistics come from that first minibatch: no KL, nothing clipped
    stats = run.updater.update(run.buffer, adv, ret)
    assert stats["approx_kl"] == 0.0 and stats["clipfrac"] == 0.0
    # after the optimiser step the ratio moves away from 1
    with torch.no_grad():
        new = run.policy.log_prob(run.policy(obs)[0], act)
    assert not torch.equal(new, logp_old)


def test_ppo_update_changes_parameters_and_reports_stats():
    run = _small_run("ppo", target_kl=None)
    before = [p.detach().clone() for p in run.policy.parameters()]
    run.collector.collect()
    adv, ret = run.updater.advantages(run.buffer)
    stats = run.updater.update(run.buffer, adv, ret)
    assert set(stats) >= {"policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac"}
    assert stats["epochs"] == run.config.update_epochs
    assert any(not torch.equal(a, b) for a, b in zip(before, run.policy.parameters()))


def test_ppo_target_kl_stops_epochs_early():
    run = _small_run("ppo", target_kl=1e-12, update_epochs=8, learning_rate=1e-2)
    run.collector.collect()
    adv, ret = run.updater.advantages(run.buffer)
    stats = run.updater.update(run.buffer, adv, ret)
    assert stats["epochs"] == 1


# --------------------------------------------------------------------------- VPG


def test_vpg_gradient_equals_hand_reinforce_estimator_one_parameter_policy():
    # pi(a=0) = sigmoid(theta), pi(a=1) = 1 - sigmoid(theta): logits [theta, 0]
    theta = torch.tensor(0.3, requires_grad=True)
    actions = torch.tensor([0, 1, 1, 0, 1])
    adv = torch.tensor([1.5, -0.5, 2.0, -1.0, 0.25])
    logits = torch.stack([theta.expand(5), torch.zeros(5)], dim=-1)
    loss = vpg_loss(categorical_log_prob(logits, actions), adv)
    loss.backward()
    p0 = 1.0 / (1.0 + math.exp(-0.3))
    dlogp = [(1.0 if a == 0 else 0.0) - p0 for a in actions.tolist()]
    hand = -sum(d * a for d, a in zip(dlogp, adv.tolist())) / 5
    assert theta.grad.item() == pytest.approx(hand, rel=1e-6)


def test_vpg_without_baseline_uses_rewards_to_go():
    from pgfast.returns import reward_to_go
    run = _small_run("vpg", baseline=False, gamma=0.9)
    run.collector.collect()
    adv, ret = run.updater.advantages(run.buffer)
    b = run.buffer
    expect = reward_to_go(b.rewards, b.terminated, b.truncated, 0.9)
    assert torch.equal(adv, expect) and torch.equal(ret, expect)
    assert "v" not in run.updater.optimizers
    critic = [p.clone() for p in run.policy.critic_params_for_grad()]
    stats = run.updater.update(b, adv, ret)
    assert "value_loss" not in stats
    # no baseline: the critic is never touched
    assert all(torch.equal(p, c) for p, c in zip(run.policy.critic_params_for_grad(), critic))


def test_vpg_with_baseline_refits_value_and_uses_rtg_minus_v():
    from pgfast.returns import reward_to_go
    run = _small_run("vpg", baseline=True, gamma=0.9, gae_lambda=1.0)
    run.collector.collect()
    b = run.buffer
    adv, ret = run.updater.advantages(b)
    rtg = reward_to_go(b.rewards, b.terminated, b.truncated, 0.9, next_values=b.next_values)
    assert torch.allclose(ret, rtg, atol=1e-4)
    assert torch.allclose(adv, rtg - b.values, atol=1e-4)
    obs = flat_batch(b)[0]
    with torch.no_grad():
        err0 = (run.policy.value(obs) - ret.reshape(-1)).square().mean()
    run.updater.update(b, adv, ret)
    with torch.no_grad():
        err1 = (run.policy.value(obs) - ret.reshape(-1)).square().mean()
    assert err1 < err0


# --------------------------------------------------------------------------- TRPO


def test_conjugate_gradient_solves_random_spd_system():
    g = torch.Generator().manual_seed(0)
    n = 12
    M = torch.randn(n, n, generator=g, dtype=torch.float64)
    A = M @ M.T + n * torch.eye(n, dtype=torch.float64)
    b = torch.randn(n, generator=g, dtype=torch.float64)
    x = conjugate_gradient(lambda v: A @ v, b, iters=2 * n, tol=1e-20)
    assert torch.allclose(x, torch.linalg.solve(A, b), atol=1e-8)


def _actor_hessian_of_kl(ac, obs):
    """Explicit Hessian of mean KL(pi_theta0 || pi_theta) w.r.t. the flat actor vector."""
    theta0 = ac.actor_vector().double()
    ac = copy.deepcopy(ac)
    (aw, ab), _ = ac.layer_tensors()
    names = [f"actor_weights.{i}" for i in range(len(aw))] + [
        f"actor_biases.{i}" for i in range(len(ab))]
    with torch.no_grad():
        old_out = ac(obs)[0].double()
        old_log_std = ac.log_std.detach().double() if ac.continuous else None

    def params_from(theta):
        out, i = {}, 0
        for n, p in zip(names, list(aw) + list(ab)):
            k = p.numel()
            out[n] = theta[i:i + k].view_as(p)
            i += k
        if ac.continuous:
            out["log_std"] = theta[i:]
        return out

    def kl_fn(theta):
        acd = ac.double()
        pi, _ = functional_call(acd, params_from(theta), (obs.double(),))
        if ac.continuous:
            from pgfast.nn import gaussian_kl
            return gaussian_kl(old_out, old_log_std, pi, theta[-ac.out_dim:]).mean()
        from pgfast.nn import categorical_kl
        return categorical_kl(old_out, pi).mean()

    return torch.autograd.functional.hessian(kl_fn, theta0)


@pytest.mark.parametrize("space", [gym.spaces.Discrete(3),
                                   gym.spaces.Box(-1, 1, (2,), dtype=np.float32)])
def test_fisher_vector_product_equals_explicit_hessian_of_kl(space):
    torch.manual_seed(0)
    ac = ActorCritic(2, space, (3,), log_std_init=-0.3)
    obs = torch.randn(7, 2)
    cfg = TRPOConfig(cg_damping=0.05, num_envs=1, num_steps=7, num_minibatches=1)
    trpo = TRPO(ac, cfg, torch.Generator())
    with torch.no_grad():
        old = ac(obs)[0]
    fvp = trpo.fisher_vector_product_fn(obs, old, ac.log_std.detach().clone()
                                        if ac.continuous else None)
    H = _actor_hessian_of_kl(ac, obs)
    v = torch.randn(H.shape[0])
    got = fvp(v)
    expect = (H @ v.double()).float() + 0.05 * v
    assert torch.allclose(got, expect, atol=1e-5, rtol=1e-4)


def test_line_search_rejects_a_step_that_breaks_the_kl_limit():
    x0 = torch.zeros(2)
    step = torch.tensor([1.0, 0.0])
    # surrogate improves along the step; KL grows quadratically, 0.04 at the full step
    evaluate = lambda x: (float(x[0]), float(0.04 * x[0] ** 2))  # noqa: E731
    ok, x, k = line_search(evaluate, x0, step, 0.0, max_kl=0.01, iters=10, coeff=0.5)
    assert ok and k == 1 and torch.allclose(x, torch.tensor([0.5, 0.0]))  # 0.04 > 0.01 rejected
    ok, x, k = line_search(evaluate, x0, step, 0.0, max_kl=1e-9, iters=3, coeff=0.5)
    assert not ok and torch.equal(x, x0) and k == 3
    # a step within the KL limit but without surrogate improvement is rejected too
    bad = lambda x: (-float(x[0]), 0.0)  # noqa: E731
    ok, x, _ = line_search(bad, x0, step, 0.0, max_kl=0.01, iters=4, coeff=0.5)
    assert not ok and torch.equal(x, x0)


def test_trpo_update_respects_trust_region():
    run = _small_run("trpo", max_kl=0.005)
    run.collector.collect()
    obs, *_ = flat_batch(run.buffer)
    with torch.no_grad():
        old = run.policy(obs)[0]
    theta0 = run.policy.actor_vector()
    adv, ret = run.updater.advantages(run.buffer)
    stats = run.updater.update(run.buffer, adv, ret)
    from pgfast.nn import categorical_kl
    with torch.no_grad():
        kl = categorical_kl(old, run.policy(obs)[0]).mean().item()
    # the line search accepts a step (a search that rejects every step leaves the policy
    # unchanged and must fail here): the policy moved, inside the trust region
    assert stats["line_search_accepted"] == 1.0
    assert 0 < kl <= 0.005 + 1e-7
    assert kl == pytest.approx(stats["approx_kl"], abs=1e-7)
    assert not torch.equal(run.policy.actor_vector(), theta0)



def test_trpo_full_step_is_scaled_to_max_kl(monkeypatch):
    """The full step s = a*x satisfies s^T (F + damping) s / 2 = max_kl (Schulman et al.),
    i.e. a = sqrt(2 max_kl / x^T F x): the quadratic KL model of the step sits on the
    trust-region boundary, not at twice it."""
    import pgfast.algos.trpo as trpo_mod

    run = _small_run("trpo", max_kl=0.01, update_backend="torch")  # the C++ step: test_pg_native
    run.collector.collect()
    seen = {}
    real = trpo_mod.line_search

    def spy(evaluate, x0, full_step, surr0, max_kl, iters, coeff):
        # evaluated before the line search moves the parameters
        seen["quad"] = 0.5 * float(full_step.dot(seen["fvp"](full_step)))
        return real(evaluate, x0, full_step, surr0, max_kl, iters, coeff)

    monkeypatch.setattr(trpo_mod, "line_search", spy)
    real_fvp_fn = run.updater.fisher_vector_product_fn

    def keep_fvp(*args):
        seen["fvp"] = real_fvp_fn(*args)
        return seen["fvp"]

    monkeypatch.setattr(run.updater, "fisher_vector_product_fn", keep_fvp)
    adv, ret = run.updater.advantages(run.buffer)
    run.updater.update(run.buffer, adv, ret)
    assert seen["quad"] == pytest.approx(0.01, rel=1e-3)


# --------------------------------------------------------------------------- configs


@pytest.mark.parametrize("cls", [PPOConfig, VPGConfig, TRPOConfig])
def test_every_config_field_has_a_one_line_docstring(cls):
    docs = field_docs(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    assert set(docs) == set(names)
    for n in names:
        assert docs[n] and "\n" not in docs[n], n


def test_config_names_and_derived_values():
    common = {"num_envs", "num_steps", "total_timesteps", "learning_rate", "anneal_lr", "gamma",
              "gae_lambda", "num_minibatches", "update_epochs", "norm_adv", "ent_coef",
              "max_grad_norm"}
    assert common | {"clip_coef", "clip_vloss", "vf_coef", "target_kl"} <= set(
        PPOConfig.field_names())
    assert common | {"baseline"} <= set(VPGConfig.field_names())
    assert common | {"max_kl", "cg_iters", "cg_damping", "backtrack_iters",
                     "backtrack_coeff"} <= set(TRPOConfig.field_names())
    c = PPOConfig(num_envs=4, num_steps=128, num_minibatches=4, total_timesteps=10_000)
    assert (c.batch_size, c.minibatch_size, c.num_iterations) == (512, 128, 19)


@pytest.mark.parametrize("kw,match", [
    (dict(num_envs=0), "num_envs"), (dict(gamma=1.5), "gamma"),
    (dict(num_steps=3, num_envs=1, num_minibatches=2), "divisible"),
    (dict(clip_coef=0.0), "clip_coef"), (dict(target_kl=-1.0), "target_kl"),
    (dict(activation="gelu"), "activation"), (dict(learning_rate=float("nan")), "learning_rate"),
])
def test_config_validation(kw, match):
    with pytest.raises(ValueError, match=match):
        PPOConfig(**kw)


def test_trpo_config_validation():
    with pytest.raises(ValueError, match="max_kl"):
        TRPOConfig(max_kl=0.0)
    with pytest.raises(ValueError, match="backtrack_coeff"):
        TRPOConfig(backtrack_coeff=1.0)


def test_get_algo():
    assert get_algo("PPO") is PPO and get_algo("vpg") is VPG and get_algo("trpo") is TRPO
    with pytest.raises(ValueError, match="algo"):
        get_algo("a2c")


@pytest.mark.parametrize("max_grad_norm", [0.0, 0.5, 1e3])
def test_fast_adam_equals_torch_adam_with_grad_clipping(max_grad_norm):
    from pgfast.algos import FastAdam
    torch.manual_seed(0)
    shapes = [(3, 4), (4,), (2, 1, 5)]
    ps1 = [torch.randn(s, requires_grad=True) for s in shapes]
    ps2 = [p.detach().clone().requires_grad_(True) for p in ps1]
    ref = torch.optim.Adam(ps1, lr=1e-2, eps=1e-5, fused=True)
    fast = FastAdam(ps2, lr=1e-2, eps=1e-5)
    for it in range(5):
        grads = [torch.randn(s) * (it + 1) for s in shapes]
        for p, g in zip(ps1, grads):
            p.grad = g.clone()
        if max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(ps1, max_grad_norm)
        ref.step()
        fast.zero_grad()
        for p, g in zip(ps2, grads):
            p.grad.add_(g)
        fast.param_groups[0]["lr"] = 1e-2
        fast.step(max_grad_norm)
        for a, b in zip(ps1, ps2):
            assert torch.allclose(a, b, atol=1e-6, rtol=1e-5)
    # state round trip
    st = fast.state_dict()
    fast2 = FastAdam([p.detach().clone() for p in ps2], lr=1.0)
    fast2.load_state_dict(st)
    assert fast2.param_groups[0]["lr"] == 1e-2
    assert all(torch.equal(a, b) for a, b in zip(fast2.exp_avg_sq, fast.exp_avg_sq))


@pytest.mark.cuda
def test_explained_variance():
    from pgfast.algos import explained_variance
    ret = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert explained_variance(ret, ret) == 1.0
    assert explained_variance(torch.zeros(4), ret) == pytest.approx(0.0)
    # residuals [-3, -1, 1, 3]: var 20/3 against var(returns) 5/3
    assert explained_variance(ret.flip(0), ret) == pytest.approx(1.0 - 4.0)
    assert math.isnan(explained_variance(ret, torch.ones(4)))
