"""The fused C++ PPO update (pgfast._C.ppo_epoch, update_backend="native") against the autograd
reference (ppo_minibatch_loss + FastAdam) directly, on the same data, and its input checks."""

import copy

import numpy as np
import pytest
import torch

from pgfast import _C
from pgfast.algos import flat_batch, make_config
from pgfast.trainer import Run


def _pair(env_id, **kw):
    """Two runs with the same rollout in their buffers: the native update and the autograd one."""
    fields = dict(num_envs=4, num_steps=32, total_timesteps=4 * 32 * 4, num_minibatches=4,
                  update_epochs=2)
    fields.update(kw)
    runs = []
    for native in (True, False):
        cfg = make_config("ppo", update_backend="native" if native else "torch", **fields)
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
    assert nat.paths["update"] == "native" and ref.paths["update"] == "torch"
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
    # actor and critic of different sizes (widths and depths, 1 to 3 layers)
    ("CartPole-v1", dict(actor_hidden_sizes=(32,), critic_hidden_sizes=(48, 24), max_grad_norm=0.05)),
    ("CartPole-v1", dict(activation="relu", actor_hidden_sizes=(16, 16), critic_hidden_sizes=())),
    ("Acrobot-v1", dict(actor_hidden_sizes=(), critic_hidden_sizes=(40, 20), ent_coef=0.02)),
    ("Pendulum-v1", dict(activation="relu", actor_hidden_sizes=(24, 24), critic_hidden_sizes=(64,),
                         max_grad_norm=0.1, log_std_init=-0.5)),
    ("Pendulum-v1", dict(actor_hidden_sizes=(20,), critic_hidden_sizes=(12, 12), norm_obs=True)),
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


def test_auto_update_takes_torch_where_native_does_not_apply_and_native_says_why():
    assert Run("ppo", "CartPole-v1", make_config("ppo", update_backend="torch"), seed=0,
               device="cpu").paths["update"] == "torch"
    run = Run("ppo", "CartPole-v1", make_config("ppo"), seed=0, device="cpu")
    assert run.paths["update"] == "native"
    run.policy.double()  # float64 parameters: the C++ update does not apply
    run.updater.params = list(run.policy.parameters())
    for backend, path in (("auto", "torch"), ("torch", "torch")):
        run.updater.cfg.update_backend, run.updater._update_path = backend, None
        assert run.updater.update_path == path
    run.updater.cfg.update_backend, run.updater._update_path = "native", None
    with pytest.raises(ValueError, match=r"update_backend='native': the C\+\+ update .*float64"):
        assert run.updater.update_path


# ---------------------------------------------------------------- input checks

def _args(run):
    pol, opt = run.policy, run.updater.optimizers["ac"]
    run.collector.collect()
    obs, act, lp, v = flat_batch(run.buffer)
    B = obs.shape[0]
    (aw, ab), (cw, cb) = pol.native_layers()
    order = run.updater._native_order()
    return dict(
        actor_weights=aw, actor_biases=ab, critic_weights=cw, critic_biases=cb, log_std=None,
        exp_avg=[opt.exp_avg[i].numpy() for i in order],
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
    (lambda a: a.update(exp_avg=[a["actor_weights"][0]] + a["exp_avg"][1:]), ValueError, "share memory"),
    (lambda a: a.update(critic_weights=a["actor_weights"], critic_biases=a["actor_biases"]), ValueError,
     "critic_weights must end in 1"),
    (lambda a: a.update(exp_avg=a["exp_avg"][::-1]), ValueError, "exp_avg.*shape"),
    (lambda a: a.update(log_std=np.zeros(2, np.float32)), ValueError, "exp_avg"),
    (lambda a: a.update(activation="gelu"), ValueError, "activation"),
    (lambda a: a.update(minibatch_size=0), ValueError, "minibatch_size"),
    (lambda a: a.update(clip_coef=float("nan")), ValueError, "clip_coef"),
    (lambda a: a.update(lr=-1.0), ValueError, "lr"),
    (lambda a: a.update(beta1=1.0), ValueError, "beta"),
    (lambda a: a.update(actor_weights=a["actor_weights"][:1]), ValueError, "same length"),
    (lambda a: a.update(actor_weights=[w[None] for w in a["actor_weights"]]), ValueError,
     r"actor_weights\[0\] must be \[d_in, d_out\]"),
    (lambda a: a.update(critic_biases=a["critic_biases"][::-1]), ValueError, r"critic_biases\[0\]"),
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


# ---------------------------------------------------------------- fuzzing (in a child process)

_FUZZ_CHILD = r'''
import sys
import numpy as np
from pgfast import _C

rng = np.random.default_rng(int(sys.argv[1]))
outcomes = {"ok": 0, "TypeError": 0, "ValueError": 0}


def net(obs_dim, hidden, out_dim):
    dims = [obs_dim] + hidden + [out_dim]
    w = [rng.normal(size=(a, b)).astype(np.float32) for a, b in zip(dims[:-1], dims[1:])]
    b = [rng.normal(size=d).astype(np.float32) for d in dims[1:]]
    return w, b


def mutate(a):
    """A hostile variant of an array argument (or a non-array)."""
    if not isinstance(a, np.ndarray):
        return a
    k = rng.integers(9)
    if k == 0:
        return a.astype(np.float64)
    if k == 1:
        return a[..., ::2] if a.ndim and a.shape[-1] > 1 else a.reshape(-1)[:0]
    if k == 2:
        return np.concatenate([a, a[:1]]) if a.ndim else a
    if k == 3:
        b = a.copy()
        b.setflags(write=False)
        return b
    if k == 4:
        return a.astype(">f4") if a.dtype == np.float32 else a.astype(np.int32)
    if k == 5:
        b = a.copy()
        if b.dtype.kind == "f" and b.size:
            b.reshape(-1)[rng.integers(b.size)] = rng.choice([np.nan, np.inf, -1e30])
        elif b.size:
            b.reshape(-1)[rng.integers(b.size)] = rng.choice([-1, 2 ** 40, 7])
        return b
    if k == 6:
        return list(a.tolist()) if a.ndim else 3.0
    if k == 7:
        return np.asfortranarray(a) if a.ndim == 2 else a
    return a


for probe in range(int(sys.argv[2])):
    gaussian = bool(rng.integers(2))
    obs_dim, out_dim = int(rng.integers(1, 6)), int(rng.integers(1, 4))
    hidden = [int(h) for h in rng.integers(1, 40, size=rng.integers(0, 3))]
    w, b = net(obs_dim, hidden, out_dim)
    cw, cb = net(obs_dim, [int(h) for h in rng.integers(1, 40, size=rng.integers(0, 3))], 1)
    ls = rng.normal(size=out_dim).astype(np.float32) if gaussian else None
    B = int(rng.integers(1, 70))
    obs = rng.normal(size=(B, obs_dim)).astype(np.float32)
    act = (rng.normal(size=(B, out_dim)).astype(np.float32) if gaussian
           else rng.integers(0, out_dim, size=B).astype(np.int64))
    params = w + b + ([ls] if gaussian else []) + cw + cb
    args = dict(actor_weights=w, actor_biases=b, critic_weights=cw, critic_biases=cb, log_std=ls,
                exp_avg=[np.zeros_like(x) for x in params], exp_avg_sq=[np.zeros_like(x) for x in params],
                step=int(rng.integers(0, 5)), lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-5, obs=obs,
                actions=act, logp_old=rng.normal(size=B).astype(np.float32),
                v_old=rng.normal(size=B).astype(np.float32), adv=rng.normal(size=B).astype(np.float32),
                ret=rng.normal(size=B).astype(np.float32), perm=rng.permutation(B).astype(np.int64),
                minibatch_size=int(rng.integers(1, B + 3)), clip_coef=0.2, ent_coef=0.01, vf_coef=0.5,
                max_grad_norm=float(rng.choice([0.0, 0.5])), clip_vloss=bool(rng.integers(2)),
                norm_adv=bool(rng.integers(2)), activation=str(rng.choice(["tanh", "relu"])))
    mb = args["minibatch_size"]
    n_mb = -(-B // mb)
    args["logp_last"] = np.zeros(B - mb * (n_mb - 1), np.float32)
    for _ in range(int(rng.integers(0, 3))):  # up to two hostile arguments
        name = str(rng.choice(["obs", "actions", "logp_old", "adv", "ret", "perm", "logp_last",
                               "actor_weights", "critic_biases", "exp_avg", "log_std",
                               "minibatch_size", "epochs"]))
        if name in ("actor_weights", "critic_biases", "exp_avg"):
            lst = list(args[name])
            if lst and rng.integers(2):
                i = int(rng.integers(len(lst)))
                lst[i] = mutate(lst[i])
            else:
                lst = lst[:-1]
            args[name] = lst
        elif name == "log_std":
            args[name] = None if gaussian else np.zeros(out_dim, np.float32)
        elif name == "minibatch_size":
            args[name] = int(rng.choice([0, -1, B + 100]))
        elif name == "epochs":
            args[name] = int(rng.choice([0, 2, -3]))
        else:
            args[name] = mutate(args[name])
    try:
        if rng.integers(4) == 0:
            values = np.zeros(B, np.float32)
            logp = np.zeros(B, np.float32)
            _C.policy_evaluate(**{k: args[k] for k in ("actor_weights", "actor_biases", "critic_weights",
                                                      "critic_biases", "log_std", "activation",
                                                      "obs", "actions")}, values=values, logp=logp)
        else:
            _C.ppo_epoch(**args)
        outcomes["ok"] += 1
    except (TypeError, ValueError) as e:
        outcomes[type(e).__name__] += 1
print(outcomes)
'''


@pytest.mark.parametrize("seed", [0, 1])
def test_fuzz_ppo_epoch_and_policy_evaluate_never_crash(seed, tmp_path):
    """Hostile arguments (wrong dtypes and shapes, byte-swapped, strided, read-only, NaN,
    out-of-range actions and permutations, missing layers): every call raises TypeError or
    ValueError or returns; the child process never dies of a signal."""
    import subprocess
    import sys

    script = tmp_path / "fuzz.py"
    script.write_text(_FUZZ_CHILD)
    p = subprocess.run([sys.executable, str(script), str(seed), "400"], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    outcomes = eval(p.stdout.strip().splitlines()[-1])  # the child's own dict literal
    assert outcomes["ok"] > 20 and outcomes["ValueError"] + outcomes["TypeError"] > 50, outcomes


def test_c_entry_points_take_keyword_arguments_only():
    """ppo_epoch and rollout_mlp take their many settings by name: clip_coef, ent_coef and
    vf_coef cannot be swapped by position."""
    with pytest.raises(TypeError):
        _C.ppo_epoch([], [], [], [], None, [], [], 0, 1e-3, 0.9, 0.999, 1e-8)
    with pytest.raises(TypeError):
        _C.rollout_mlp(None, [], [], "tanh")
