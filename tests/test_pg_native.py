"""The C++ updates of VPG (pgfast._C.vpg_step + value_fit) and TRPO against their autograd
reference (the torch path of the same class, native_update=False), on the same rollout:
gradients (read from Adam's first moments after one step: m = (1 - beta1) g) to float
rounding, the same parameters, optimiser state and statistics after the update."""

import numpy as np
import pytest
import torch

from pgfast import _C
from pgfast.algos import flat_batch, make_config
from pgfast.algos.base import normalize_advantages
from pgfast.trainer import Run


def _pair(algo, env_id, **kw):
    """Two runs with the same rollout in their buffers: the native update and autograd's."""
    fields = dict(num_envs=4, num_steps=32, total_timesteps=4 * 32 * 4)
    fields.update(kw)
    runs = [Run(algo, env_id, make_config(algo, update_backend=b, **fields), seed=3, device="cpu")
            for b in ("native", "torch")]
    nat, ref = runs
    nat.collector.collect()
    ref.collector.collect()
    for name in ("obs", "actions", "rewards", "terminated", "truncated"):
        assert torch.equal(getattr(nat.buffer, name), getattr(ref.buffer, name)), name
    for name in ("logp", "values", "next_values"):  # C++ vs torch forward: float rounding
        a, b = getattr(nat.buffer, name), getattr(ref.buffer, name)
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=name)
        a.copy_(b)
    assert nat.updater.update_path == "native" and ref.updater.update_path == "torch"
    assert nat.paths["update"] == "native" and ref.paths["update"] == "torch"
    return nat, ref


def _update(run):
    adv, ret = run.updater.advantages(run.buffer)
    return run.updater.update(run.buffer, adv, ret)


def _assert_same(nat, ref, atol, grad_rtol=1e-4):
    for (name, p), q in zip(nat.policy.named_parameters(), ref.policy.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=atol, msg=name)
    for key, on in nat.updater.optimizers.items():
        orf = ref.updater.optimizers[key]
        for a, b in zip(on.exp_avg, orf.exp_avg):  # (1 - beta1) x the running gradient
            scale = float(b.abs().max()) + 1e-12
            torch.testing.assert_close(a / scale, b / scale, rtol=grad_rtol, atol=grad_rtol,
                                       msg=f"{key} gradients")
        for a, b in zip(on.exp_avg_sq, orf.exp_avg_sq):
            torch.testing.assert_close(a, b, rtol=1e-3, atol=atol ** 2)
        assert [float(s) for s in on.steps] == [float(s) for s in orf.steps]
    assert torch.equal(nat.generator.get_state(), ref.generator.get_state())


def _moved(run, env_id):
    init = Run(run.updater.name, env_id, run.config, seed=3, device="cpu").policy
    return max(float((p - q).detach().abs().max())
               for p, q in zip(run.policy.parameters(), init.parameters()))


VPG_CASES = [
    ("CartPole-v1", {}),
    ("CartPole-v1", dict(baseline=False)),
    ("CartPole-v1", dict(activation="relu", hidden_sizes=(33, 17), ent_coef=0.01,
                         num_minibatches=4, max_grad_norm=0.5)),
    ("CartPole-v1", dict(hidden_sizes=(40,), norm_obs=True, norm_adv=False, gae_lambda=0.95)),
    ("Acrobot-v1", dict(hidden_sizes=(64, 64, 64), num_minibatches=2, update_epochs=3)),
    ("Pendulum-v1", dict(norm_obs=True, ent_coef=0.01, num_minibatches=4)),
    ("Pendulum-v1", dict(activation="relu", hidden_sizes=(48, 20), log_std_init=-0.5,
                         baseline=False, max_grad_norm=0.1)),
    ("MountainCarContinuous-v0", dict(num_minibatches=2, vf_learning_rate=3e-3)),
    # actor and critic of different sizes (widths and depths, 1 to 3 layers)
    ("CartPole-v1", dict(actor_hidden_sizes=(32,), critic_hidden_sizes=(48, 24),
                         num_minibatches=4, max_grad_norm=0.5)),
    ("CartPole-v1", dict(activation="relu", actor_hidden_sizes=(16, 16), critic_hidden_sizes=(),
                         baseline=False)),
    ("Acrobot-v1", dict(actor_hidden_sizes=(), critic_hidden_sizes=(40, 20), num_minibatches=2)),
    ("Pendulum-v1", dict(activation="relu", actor_hidden_sizes=(24, 24), critic_hidden_sizes=(64,),
                         log_std_init=-0.5, num_minibatches=4, max_grad_norm=0.1)),
]


@pytest.mark.parametrize("env_id,kw", VPG_CASES)
def test_vpg_native_equals_autograd(env_id, kw):
    nat, ref = _pair("vpg", env_id, **kw)
    s_nat, s_ref = _update(nat), _update(ref)
    _assert_same(nat, ref, atol=2e-5)
    assert s_nat.keys() == s_ref.keys()
    for key in s_ref:
        assert s_nat[key] == pytest.approx(s_ref[key], rel=1e-3, abs=1e-5), key
    assert _moved(nat, env_id) > 1e-4


def test_vpg_native_tracks_autograd_over_iterations():
    nat, ref = _pair("vpg", "CartPole-v1", num_minibatches=4)
    for _ in range(3):
        _update(nat)
        _update(ref)
    _assert_same(nat, ref, atol=2e-4, grad_rtol=1e-3)


def test_vpg_native_is_bit_reproducible():
    a, _ = _pair("vpg", "Pendulum-v1", num_minibatches=4)
    b, _ = _pair("vpg", "Pendulum-v1", num_minibatches=4)
    _update(a)
    _update(b)
    for p, q in zip(a.policy.parameters(), b.policy.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize("algo", ["vpg", "trpo"])
def test_the_path_is_chosen_and_recorded(algo):
    run = Run(algo, "CartPole-v1", make_config(algo, update_backend="torch"), seed=0, device="cpu")
    assert run.paths["update"] == "torch"
    run = Run(algo, "CartPole-v1", make_config(algo), seed=0, device="cpu")
    assert run.paths["update"] == "native"  # auto: native where it applies
    run.policy.double()
    for backend, path in (("auto", "torch"), ("torch", "torch")):
        run.updater.cfg.update_backend, run.updater._update_path = backend, None
        assert run.updater.update_path == path
    run.updater.cfg.update_backend, run.updater._update_path = "native", None
    with pytest.raises(ValueError, match=r"update_backend='native': the C\+\+ update .*float64"):
        assert run.updater.update_path


def test_value_fit_checks_its_input():
    run = Run("vpg", "CartPole-v1", make_config("vpg", critic_hidden_sizes=(16,)), seed=0,
              device="cpu")
    (aw, ab), (w, b) = run.policy.native_layers()
    opt = run.updater.optimizers["v"]
    args = dict(weights=w, biases=b, activation="tanh", exp_avg=[t.numpy() for t in opt.exp_avg],
                exp_avg_sq=[t.numpy() for t in opt.exp_avg_sq], step=0, lr=1e-3,
                betas=(0.9, 0.999), eps=1e-5, obs=np.zeros((8, 4), np.float32),
                ret=np.zeros(8, np.float32), perm=None, minibatch_size=4, epochs=1,
                max_grad_norm=0.0)
    assert _C.value_fit(**args)[1] == 2
    with pytest.raises(ValueError, match="perm entry out of range"):
        _C.value_fit(**dict(args, perm=np.full(8, 8, np.int64)))
    with pytest.raises(ValueError, match="obs"):
        _C.value_fit(**dict(args, obs=np.zeros((8, 5), np.float32)))
    with pytest.raises(ValueError, match="share memory"):
        _C.value_fit(**dict(args, exp_avg_sq=args["exp_avg"]))
    with pytest.raises(ValueError, match="'tanh' or 'relu'"):
        _C.value_fit(**dict(args, activation="gelu"))
    with pytest.raises(ValueError, match="must end in 1 output column"):  # the actor is no critic
        _C.value_fit(**dict(args, weights=aw, biases=ab))
    with pytest.raises(ValueError, match="exp_avg"):
        _C.value_fit(**dict(args, exp_avg=args["exp_avg"][:-1]))
    with pytest.raises(ValueError, match="norm_width"):
        _C.value_fit(**dict(args, norm_width=0))
    # the clip's norm with the output column read as column 0 of 2 (the stacked layout's sum):
    # the same step to float rounding as the plain sum
    rng = np.random.default_rng(0)
    big = dict(args, obs=rng.normal(size=(8, 4)).astype(np.float32),
               ret=np.full(8, 50.0, np.float32), max_grad_norm=0.01)
    states = []
    for width in (1, 2):
        run2 = Run("vpg", "CartPole-v1", make_config("vpg", critic_hidden_sizes=(16,)), seed=0,
                   device="cpu")
        _, (w2, b2) = run2.policy.native_layers()
        o2 = run2.updater.optimizers["v"]
        _C.value_fit(**dict(big, weights=w2, biases=b2, exp_avg=[t.numpy() for t in o2.exp_avg],
                            exp_avg_sq=[t.numpy() for t in o2.exp_avg_sq], norm_width=width))
        states.append([p.detach().clone() for p in run2.policy.critic_params_for_grad()])
    for p, q in zip(*states):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    with pytest.raises(TypeError):
        _C.value_fit(*args.values())  # keyword-only


# ---------------------------------------------------------------- TRPO

TRPO_CASES = [
    ("CartPole-v1", {}),
    ("CartPole-v1", dict(activation="relu", hidden_sizes=(33, 17), ent_coef=0.01)),
    ("CartPole-v1", dict(hidden_sizes=(40,), norm_obs=True, fvp_subsample=0.5)),
    ("Acrobot-v1", dict(hidden_sizes=(64, 64, 64), max_kl=0.02, cg_iters=5)),
    ("Pendulum-v1", dict(norm_obs=True, ent_coef=0.01)),
    ("Pendulum-v1", dict(activation="relu", hidden_sizes=(48, 20), log_std_init=-0.5,
                         fvp_subsample=0.3)),
    ("MountainCarContinuous-v0", dict(num_minibatches=2, max_kl=0.05)),
    # actor and critic of different sizes (widths and depths, 1 to 3 layers)
    ("CartPole-v1", dict(actor_hidden_sizes=(32,), critic_hidden_sizes=(48, 24, 12))),
    ("Acrobot-v1", dict(activation="relu", actor_hidden_sizes=(24, 24), critic_hidden_sizes=(),
                        max_grad_norm=0.5)),
    ("Pendulum-v1", dict(actor_hidden_sizes=(), critic_hidden_sizes=(40,), num_minibatches=2)),
    ("Pendulum-v1", dict(activation="relu", actor_hidden_sizes=(16, 16), critic_hidden_sizes=(64,),
                         log_std_init=-0.5)),
]


@pytest.mark.parametrize("method", ["jvp", "jacobian"])
@pytest.mark.parametrize("env_id,kw", TRPO_CASES)
def test_trpo_gradient_and_fisher_vector_products_equal_autograd(env_id, kw, method):
    run = Run("trpo", env_id, make_config("trpo", update_backend="torch", num_envs=4,
                                          num_steps=32, **kw), seed=5, device="cpu")
    run.collector.collect()
    upd, pol, cfg = run.updater, run.policy, run.config
    obs, act, logp_buf, _ = flat_batch(run.buffer)
    B = obs.shape[0]
    gen = torch.Generator().manual_seed(1)
    logp_old = logp_buf + 0.2 * torch.randn(B, generator=gen)  # ratios away from 1
    adv, _ = upd.advantages(run.buffer)
    A = normalize_advantages(adv.reshape(B))
    logp, ent, _ = pol.evaluate_actions(obs, act)
    surr = ((logp - logp_old).exp() * A).mean() + cfg.ent_coef * ent.mean()
    g_ref = pol.actor_flat(torch.autograd.grad(surr, upd.pi_params))
    with torch.no_grad():
        old_out = pol(obs)[0]
        old_ls = pol.log_std.detach().clone() if pol.continuous else None
    rows = upd.fvp_rows(B)
    assert (rows is None) == (cfg.fvp_subsample == 1.0)
    fvp = upd.fisher_vector_product_fn(obs if rows is None else obs[rows],
                                       old_out if rows is None else old_out[rows], old_ls)
    vs = torch.randn(3, g_ref.numel(), generator=gen)
    vs[2] = g_ref / g_ref.norm()
    f_ref = torch.stack([fvp(v) for v in vs]).detach()
    (w, b), _ = pol.native_layers()
    g, f = _C.trpo_grad_fvp(
        weights=w, biases=b, log_std=None if old_ls is None else pol.log_std.detach().numpy(),
        activation=pol.activation, obs=pol.network_input(obs).detach().numpy(),
        actions=act.numpy(), logp_old=logp_old.numpy(), adv=A.detach().numpy(),
        ent_coef=cfg.ent_coef, cg_damping=cfg.cg_damping, fvp_subsample=cfg.fvp_subsample,
        vectors=vs.numpy(), fvp_method=method)
    g_ref = g_ref.detach()
    scale = float(g_ref.abs().max())
    torch.testing.assert_close(torch.from_numpy(g) / scale, g_ref / scale, rtol=1e-4, atol=1e-5)
    for k in range(3):
        sc = float(f_ref[k].abs().max())
        torch.testing.assert_close(torch.from_numpy(f[k]) / sc, f_ref[k] / sc, rtol=1e-4,
                                   atol=2e-5)
    # the products are not just the damping term
    assert float((f_ref[0] - cfg.cg_damping * vs[0]).abs().max()) > 1e-3 * sc


@pytest.mark.parametrize("dims,auto", [((4, 64, 64, 2), "jacobian"), ((6, 64, 64, 64, 3), "jacobian"),
                                       ((5, 8, 8, 40), "jvp"), ((3, 16, 5), "jvp")])
def test_trpo_fisher_products_pick_the_cheaper_method(dims, auto):
    """fvp_method="auto" (what trpo_step runs) is bit for bit the method with fewer
    multiply-adds: the Jacobian's rows for few outputs, forward-mode J v for many (or no
    hidden layer to save on); both give the same products to float rounding."""
    rng = np.random.default_rng(0)
    B, K = 96, dims[-1]
    w = [(rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32) for a, b in zip(dims, dims[1:])]
    b = [(0.1 * rng.standard_normal(d)).astype(np.float32) for d in dims[1:]]
    n = sum(x.size for x in w) + sum(x.size for x in b)
    args = dict(weights=w, biases=b, log_std=None, activation="tanh",
                obs=rng.standard_normal((B, dims[0])).astype(np.float32),
                actions=rng.integers(0, K, B).astype(np.int64),
                logp_old=np.full(B, -np.log(K), np.float32),
                adv=rng.standard_normal(B).astype(np.float32), ent_coef=0.0, cg_damping=0.1,
                fvp_subsample=1.0, vectors=rng.standard_normal((2, n)).astype(np.float32))
    out = {m: _C.trpo_grad_fvp(**args, fvp_method=m)[1] for m in ("auto", "jvp", "jacobian")}
    assert np.array_equal(out["auto"], out[auto])
    scale = float(np.abs(out["jvp"]).max())
    np.testing.assert_allclose(out["jacobian"] / scale, out["jvp"] / scale, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="fvp_method"):
        _C.trpo_grad_fvp(**args, fvp_method="rows")


@pytest.mark.parametrize("env_id,kw", TRPO_CASES)
def test_trpo_native_takes_the_same_step_as_autograd(env_id, kw):
    nat, ref = _pair("trpo", env_id, **kw)
    x0 = nat.policy.actor_vector()
    s_nat, s_ref = _update(nat), _update(ref)
    assert s_ref["line_search_accepted"] == 1.0  # a real step, not a rejected one
    assert s_nat["line_search_accepted"] == s_ref["line_search_accepted"]
    assert s_nat["backtracks"] == s_ref["backtracks"]
    # the policy step: conjugate gradient amplifies float32 rounding (most with ReLU, whose
    # Fisher is nearly singular); on Pendulum ReLU both float32 steps are ~1e-3 apart, and the
    # C++ one is the closer to a float64 autograd step (3e-4 vs 1.4e-3)
    d_nat, d_ref = nat.policy.actor_vector() - x0, ref.policy.actor_vector() - x0
    assert float((d_nat - d_ref).norm()) <= 3e-3 * float(d_ref.norm())
    # the value regression, parameters and optimiser state
    for p, q in zip(nat.policy.critic_params_for_grad(), ref.policy.critic_params_for_grad()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=5e-5)
    on, orf = nat.updater.optimizers["v"], ref.updater.optimizers["v"]
    for a, b in zip(on.exp_avg + on.exp_avg_sq, orf.exp_avg + orf.exp_avg_sq):
        scale = float(b.abs().max()) + 1e-12
        torch.testing.assert_close(a / scale, b / scale, rtol=5e-3, atol=1e-4)
    assert [float(s) for s in on.steps] == [float(s) for s in orf.steps]
    assert torch.equal(nat.generator.get_state(), ref.generator.get_state())
    for key in ("policy_loss", "value_loss", "entropy", "approx_kl"):
        assert s_nat[key] == pytest.approx(s_ref[key], rel=2e-3, abs=1e-5), key
    assert _moved(nat, env_id) > 1e-4


def test_trpo_line_search_rejects_and_leaves_the_policy():
    # zero advantages: no candidate improves the surrogate, so both paths reject every one
    nat, ref = _pair("trpo", "CartPole-v1", backtrack_iters=3)
    actor = [p.detach().clone() for p in nat.policy.actor_params_for_grad()]
    critic = [p.detach().clone() for p in nat.policy.critic_params_for_grad()]
    out = []
    for run in (nat, ref):
        _, ret = run.updater.advantages(run.buffer)
        out.append(run.updater.update(run.buffer, torch.zeros_like(ret), ret))
    assert out[0]["line_search_accepted"] == out[1]["line_search_accepted"] == 0.0
    assert out[0]["backtracks"] == out[1]["backtracks"] == 3
    assert out[0]["approx_kl"] == 0.0
    for p, q in zip(nat.policy.actor_params_for_grad(), actor):
        assert torch.equal(p, q)  # the actor is untouched (the critic was fit)
    assert all(not torch.equal(p, q) for p, q in zip(nat.policy.critic_params_for_grad(), critic))


def test_trpo_step_checks_its_input():
    run = Run("trpo", "CartPole-v1", make_config("trpo"), seed=0, device="cpu")
    (w, b), _ = run.policy.native_layers()
    args = dict(weights=w, biases=b, log_std=None, activation="tanh",
                obs=np.zeros((8, 4), np.float32), actions=np.zeros(8, np.int64),
                logp_old=np.zeros(8, np.float32), adv=np.ones(8, np.float32), max_kl=0.01,
                cg_iters=10, cg_damping=0.1, backtrack_iters=10, backtrack_coeff=0.8,
                ent_coef=0.0)
    assert len(_C.trpo_step(**args)) == 5
    with pytest.raises(ValueError, match=r"outside \[0, 2\)"):
        _C.trpo_step(**dict(args, actions=np.full(8, 2, np.int64)))
    with pytest.raises(ValueError, match="fvp_subsample"):
        _C.trpo_step(**dict(args, fvp_subsample=0.0))
    with pytest.raises(ValueError, match="backtrack_coeff"):
        _C.trpo_step(**dict(args, backtrack_coeff=1.0))
    with pytest.raises(ValueError, match="share memory"):
        _C.trpo_step(**dict(args, obs=w[0].reshape(-1)[:32].reshape(8, 4)))


# ---------------------------------------------------------------- separate parameter sets

@pytest.mark.parametrize("algo", ["vpg", "trpo"])
@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_each_optimiser_sees_only_its_own_parameters(algo, env_id):
    """The value optimiser's tensors are the critic's, the policy optimiser's the actor's: a
    value step with weight decay (decay reaches every tensor an optimiser holds, gradient or
    not) leaves the actor bit for bit, and an actor step with weight decay the critic."""
    run = Run(algo, env_id, make_config(algo, update_backend="torch", num_envs=2, num_steps=16,
                                        critic_hidden_sizes=(24,)), seed=0, device="cpu")
    run.collector.collect()
    pol, upd = run.policy, run.updater
    actor_ids = {id(p) for p in pol.actor_params_for_grad()}
    critic_ids = {id(p) for p in pol.critic_params_for_grad()}
    assert {id(p) for p in upd.optimizers["v"].params} == critic_ids
    if algo == "vpg":
        assert {id(p) for p in upd.optimizers["pi"].params} == actor_ids
    obs, act, _, _ = flat_batch(run.buffer)
    for params, other, loss_fn in (
            (pol.critic_params_for_grad(), pol.actor_params_for_grad(),
             lambda: pol.value(obs).square().mean()),
            (pol.actor_params_for_grad(), pol.critic_params_for_grad(),
             lambda: -pol.evaluate_actions(obs, act)[0].mean())):
        before = [p.detach().clone() for p in other]
        mine = [p.detach().clone() for p in params]
        opt = torch.optim.AdamW(params, lr=1e-2, weight_decay=0.5)
        for _ in range(3):
            opt.zero_grad()
            loss_fn().backward()
            opt.step()
        assert all(torch.equal(p, q) for p, q in zip(other, before))
        assert all(not torch.equal(p, q) for p, q in zip(params, mine))
    # and the algorithm's own update: the value fit moves the critic only (torch and C++ paths)
    for backend in ("torch", "native"):
        run = Run(algo, env_id, make_config(algo, update_backend=backend, num_envs=2, num_steps=16,
                                            critic_hidden_sizes=(24,)), seed=0, device="cpu")
        run.collector.collect()
        pol = run.policy
        actor = [p.detach().clone() for p in pol.actor_params_for_grad()]
        adv, ret = run.updater.advantages(run.buffer)
        value_opt = run.updater.optimizers["v"]
        x = pol.network_input(flat_batch(run.buffer)[0]).detach()
        if backend == "native":
            from pgfast.algos import native as nat
            nat.value_fit_native(pol, run.config, run.generator, value_opt, x.numpy(),
                                 ret.reshape(-1))
        else:
            run.updater.fit_value(flat_batch(run.buffer)[0], ret.reshape(-1), value_opt,
                                  value_opt.params)
        assert all(torch.equal(p, q) for p, q in zip(pol.actor_params_for_grad(), actor))
