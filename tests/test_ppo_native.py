"""The fused C++ PPO update (pgfast._C.ppo_epoch, PPOConfig.native_update) against the torch
path it replaces (ppo_minibatch_grads + FastAdam), and its input checks."""

import copy

import numpy as np
import pytest
import torch

from pgfast import _C
from pgfast.algos import flat_batch, make_config
from pgfast.trainer import Run


def _pair(env_id, **kw):
    """Two runs with the same rollout in their buffers: the native update and the torch one."""
    fields = dict(num_envs=4, num_steps=32, total_timesteps=4 * 32 * 4, num_minibatches=4,
                  update_epochs=2)
    fields.update(kw)
    runs = []
    for native in (True, False):
        cfg = make_config("ppo", native_update=native, **fields)
        runs.append(Run("ppo", env_id, cfg, seed=3, device="cpu"))
    nat, ref = runs
    nat.collector.collect()
    ref.collector.collect()
    for name in ("obs", "actions", "rewards", "terminated", "truncated"):
        assert torch.equal(getattr(nat.buffer, name), getattr(ref.buffer, name)), name
    # the native run's log-probs and values come from the C++ forward (float rounding apart);
    # both updates then start from the same numbers
    for name in ("logp", "values", "next_values"):
        a, b = getattr(nat.buffer, name), getattr(ref.buffer, name)
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=name)
        a.copy_(b)
    assert nat.updater.native() and not ref.updater.native()
    assert nat.collector.native_eval and not ref.collector.native_eval
    return nat, ref


def _update(run):
    adv, ret = run.updater.advantages(run.buffer)
    return run.updater.update(run.buffer, adv, ret)


def _assert_same_state(nat, ref, atol):
    for (name, p), q in zip(nat.policy.named_parameters(), ref.policy.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=atol, msg=name)
    on, orf = nat.updater.optimizers["ac"], ref.updater.optimizers["ac"]
    for a, b in zip(on.exp_avg + on.exp_avg_sq, orf.exp_avg + orf.exp_avg_sq):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=atol)
    assert [float(s) for s in on.steps] == [float(s) for s in orf.steps]


CASES = [
    ("CartPole-v1", {}),
    ("CartPole-v1", dict(activation="relu", clip_vloss=False, ent_coef=0.0)),
    ("CartPole-v1", dict(hidden_sizes=(33, 17), max_grad_norm=0.0, norm_adv=False)),
    ("CartPole-v1", dict(hidden_sizes=(40,), num_minibatches=1, norm_obs=True)),
    ("CartPole-v1", dict(hidden_sizes=(64, 64, 64), num_minibatches=8, ent_coef=0.05)),
    ("Acrobot-v1", dict(max_grad_norm=0.05)),
    ("Pendulum-v1", dict(norm_obs=True, ent_coef=0.01)),
    ("Pendulum-v1", dict(activation="relu", hidden_sizes=(48, 20), clip_vloss=False,
                         log_std_init=-0.5)),
    ("MountainCarContinuous-v0", dict(num_minibatches=1, max_grad_norm=0.5)),
]


@pytest.mark.parametrize("env_id,kw", CASES)
def test_native_update_equals_the_torch_path(env_id, kw):
    nat, ref = _pair(env_id, **kw)
    s_nat, s_ref = _update(nat), _update(ref)
    # the same permutations were drawn from the same generator
    assert torch.equal(nat.generator.get_state(), ref.generator.get_state())
    _assert_same_state(nat, ref, atol=2e-5)
    assert s_nat["epochs"] == s_ref["epochs"]
    for key in ("policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac"):
        assert s_nat[key] == pytest.approx(s_ref[key], rel=1e-3, abs=1e-5), key
    # the parameters really moved (the comparison is not between two untouched nets)
    init = Run("ppo", env_id, nat.config, seed=3, device="cpu").policy
    moved = max(float((p - q).detach().abs().max()) for p, q in zip(nat.policy.parameters(),
                                                           init.parameters()))
    assert moved > 1e-4


def test_native_update_over_many_iterations_tracks_the_torch_path():
    nat, ref = _pair("CartPole-v1", update_epochs=4, learning_rate=1e-3)
    for _ in range(3):
        _update(nat)
        _update(ref)
        # both learn from the same (reference) rollout so the data never diverges
        nat.buffer.logp.copy_(ref.buffer.logp)
    _assert_same_state(nat, ref, atol=2e-4)


def test_target_kl_stops_both_paths_after_the_same_epoch():
    nat, ref = _pair("CartPole-v1", update_epochs=10, target_kl=1e-4, learning_rate=3e-3)
    s_nat, s_ref = _update(nat), _update(ref)
    assert s_nat["epochs"] == s_ref["epochs"] < 10
    assert torch.equal(nat.generator.get_state(), ref.generator.get_state())
    _assert_same_state(nat, ref, atol=5e-5)


def test_native_update_is_bit_reproducible():
    a, _ = _pair("Pendulum-v1")
    b, _ = _pair("Pendulum-v1")
    _update(a)
    _update(b)
    for p, q in zip(a.policy.parameters(), b.policy.parameters()):
        assert torch.equal(p, q)


def test_native_update_is_skipped_where_it_does_not_apply():
    run = Run("ppo", "CartPole-v1", make_config("ppo", fast_grads=False), seed=0, device="cpu")
    assert not run.updater.native()
    run = Run("ppo", "CartPole-v1", make_config("ppo"), seed=0, device="cpu")
    run.policy.double()
    run.updater.params = list(run.policy.parameters())
    assert not run.updater.native()


# ---------------------------------------------------------------- input checks

def _args(run):
    pol, opt = run.policy, run.updater.optimizers["ac"]
    run.collector.collect()
    obs, act, lp, v = flat_batch(run.buffer)
    B = obs.shape[0]
    w, b = pol.native_layers()
    order = run.updater._native_order()
    return dict(
        weights=w, biases=b, log_std=None, exp_avg=[opt.exp_avg[i].numpy() for i in order],
        exp_avg_sq=[opt.exp_avg_sq[i].numpy() for i in order], step=0, lr=1e-3, beta1=0.9, beta2=0.999,
        eps=1e-5, obs=obs.numpy().copy(), actions=act.numpy().copy(), logp_old=lp.numpy().copy(),
        v_old=v.numpy().copy(), adv=np.ones(B, np.float32), ret=np.zeros(B, np.float32),
        perm=np.arange(B, dtype=np.int64), minibatch_size=B // 2, clip_coef=0.2, ent_coef=0.0,
        vf_coef=0.5, max_grad_norm=0.5, clip_vloss=True, norm_adv=True, activation="tanh",
        logp_last=np.zeros(B // 2, np.float32))


@pytest.mark.parametrize("change,exc,match", [
    (lambda a: a.update(perm=np.full_like(a["perm"], len(a["perm"]))), ValueError, "perm"),
    (lambda a: a.update(perm=a["perm"][:-1]), ValueError, "perm must have shape"),
    (lambda a: a.update(actions=np.full_like(a["actions"], 2)), ValueError, "outside"),
    (lambda a: a.update(actions=a["actions"].astype(np.float32)), TypeError, "actions"),
    (lambda a: a.update(obs=a["obs"].astype(np.float64)), TypeError, "obs"),
    (lambda a: a.update(obs=a["obs"][:, :3].copy()), ValueError, "obs"),
    (lambda a: a.update(adv=a["adv"][::2]), ValueError, "adv"),
    (lambda a: a.update(logp_last=np.zeros(3, np.float32)), ValueError, "logp_last"),
    (lambda a: a.update(exp_avg=a["exp_avg"][:-1]), ValueError, "exp_avg"),
    (lambda a: a.update(exp_avg=[a["weights"][0]] + a["exp_avg"][1:]), ValueError, "share memory"),
    (lambda a: a.update(log_std=np.zeros(2, np.float32)), ValueError, "exp_avg"),
    (lambda a: a.update(activation="gelu"), ValueError, "activation"),
    (lambda a: a.update(minibatch_size=0), ValueError, "minibatch_size"),
    (lambda a: a.update(clip_coef=float("nan")), ValueError, "clip_coef"),
    (lambda a: a.update(lr=-1.0), ValueError, "lr"),
    (lambda a: a.update(beta1=1.0), ValueError, "beta"),
    (lambda a: a.update(weights=a["weights"][:1]), ValueError, "d_in|same length"),
    (lambda a: a.update(weights=[w[:1] for w in a["weights"]]), ValueError, r"\[2, d_in"),
    (lambda a: a.update(obs=list(a["obs"])), TypeError, "numpy array"),
])
def test_bad_input_is_rejected_before_anything_is_written(change, exc, match):
    run = Run("ppo", "CartPole-v1", make_config("ppo", num_envs=2, num_steps=8), seed=0,
              device="cpu")
    args = _args(run)
    change(args)
    before = copy.deepcopy(list(run.policy.parameters()))
    with pytest.raises(exc, match=match):
        _C.ppo_epoch(**args)
    for p, q in zip(run.policy.parameters(), before):
        assert torch.equal(p, q)


def test_a_minibatch_of_one_row_and_an_uneven_last_minibatch():
    run = Run("ppo", "CartPole-v1", make_config("ppo", num_envs=2, num_steps=8), seed=0,
              device="cpu")
    args = _args(run)
    args.update(minibatch_size=5, norm_adv=False, logp_last=np.zeros(1, np.float32))
    pg, vl, ent, n = _C.ppo_epoch(**args)  # 16 rows: 5 + 5 + 5 + 1
    assert n == 4 and np.isfinite([pg, vl, ent]).all()
    assert np.isfinite(args["logp_last"]).all() and args["logp_last"][0] < 0
