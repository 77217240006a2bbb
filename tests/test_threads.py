"""One run on several threads (Config.num_threads): the C++ update, the native rollout's forward
and policy_evaluate split their products into row (or column) blocks across the shared worker
pool (csrc/dense.hpp), and every result is bit-identical to one thread's. Each case checks that
the pool's workers really ran blocks, so the equality is not between two single-threaded runs."""

import numpy as np
import pytest
import torch

from pgfast import _C
from pgfast.algos import make_config
from pgfast.config import MAX_THREADS, available_threads
from pgfast.trainer import Run

THREADS = (1, 2, 3)


def _run(algo, env_id, num_threads, **kw):
    fields = dict(num_envs=32, num_steps=64, total_timesteps=32 * 64 * 2, num_minibatches=2,
                  update_epochs=2, update_backend="native", rollout_backend="native")
    fields.update(kw)
    return Run(algo, env_id, make_config(algo, num_threads=num_threads, **fields), seed=5, device="cpu")


def _state(run):
    """The parameters and every optimiser's moments, cloned."""
    out = [p.detach().clone() for p in run.policy.parameters()]
    for opt in run.updater.optimizers.values():
        out += [t.detach().clone() for t in list(opt.exp_avg) + list(opt.exp_avg_sq)]
    return out


def _assert_equal(a, b, what):
    assert len(a) == len(b)
    for k, (x, y) in enumerate(zip(a, b)):
        assert torch.equal(x, y), f"{what}: tensor {k} differs"


def _one_iteration(algo, env_id, num_threads, **kw):
    run = _run(algo, env_id, num_threads, **kw)
    assert run.paths["rollout"] == run.paths["update"] == "native"
    run.collector.collect()
    buf = run.buffer
    rollout = [buf.obs.clone(), buf.actions.clone(), buf.logp.clone(), buf.values.clone()]
    adv, ret = run.updater.advantages(buf)
    stats = run.updater.update(buf, adv, ret)
    return rollout, _state(run), stats


# odd widths: row and column blocks end inside the products' register blocks
UPDATE_CASES = [
    ("ppo", "CartPole-v1", dict(hidden_sizes=(131, 45))),
    ("ppo", "CartPole-v1", dict(activation="relu", hidden_sizes=(100,), num_minibatches=1)),
    ("ppo", "Pendulum-v1", dict(activation="relu", hidden_sizes=(70, 133), norm_obs=True)),
    ("ppo", "Pendulum-v1", dict(hidden_sizes=(64, 96, 31), ent_coef=0.01, max_grad_norm=0.0)),
    ("vpg", "CartPole-v1", dict(hidden_sizes=(131, 45))),
    ("vpg", "Pendulum-v1", dict(activation="relu", hidden_sizes=(150, 37))),
    ("trpo", "CartPole-v1", dict(activation="relu", hidden_sizes=(131, 45))),
    ("trpo", "Pendulum-v1", dict(hidden_sizes=(70, 133), fvp_subsample=0.5)),
]


@pytest.mark.parametrize("algo,env_id,kw", UPDATE_CASES)
def test_rollout_and_update_are_bit_identical_for_any_thread_count(algo, env_id, kw):
    before = _C.shared_pool_items_by_workers()
    ref_rollout, ref_state, ref_stats = _one_iteration(algo, env_id, 1, **kw)
    for n in THREADS[1:]:
        rollout, state, stats = _one_iteration(algo, env_id, n, **kw)
        _assert_equal(ref_rollout, rollout, f"{algo} {env_id} rollout, {n} threads")
        _assert_equal(ref_state, state, f"{algo} {env_id} update, {n} threads")
        assert stats == ref_stats
    # the threaded runs gave blocks to the pool's workers (the pool may be busy for a moment
    # elsewhere, but not for a whole iteration of two runs)
    assert _C.shared_pool_items_by_workers() > before


@pytest.mark.parametrize("env_id,kw", [
    ("CartPole-v1", dict(hidden_sizes=(130, 67))),
    ("Acrobot-v1", dict(activation="relu", hidden_sizes=(200, 33))),
    ("Pendulum-v1", dict(activation="relu", hidden_sizes=(70, 133))),
    ("MountainCarContinuous-v0", dict(hidden_sizes=(148, 120), log_std_init=-0.5)),
])
def test_rollout_alone_is_bit_identical_with_many_envs(env_id, kw):
    """512 envs: the forward's products split within a step (and the policy_evaluate rows)."""
    runs = [_run("ppo", env_id, n, num_envs=512, num_steps=4, total_timesteps=512 * 4, **kw)
            for n in THREADS]
    for run in runs:
        before = _C.shared_pool_items_by_workers()
        run.collector.collect()
        assert (_C.shared_pool_items_by_workers() > before) == (run.config.threads > 1)
    ref = runs[0].buffer
    for run in runs[1:]:
        for name in ("obs", "actions", "rewards", "logp", "values", "next_values"):
            assert torch.equal(getattr(ref, name), getattr(run.buffer, name)), name


def test_seeded_training_is_identical_with_one_and_two_threads():
    runs = [_run("ppo", "CartPole-v1", n, total_timesteps=32 * 64 * 3, hidden_sizes=(64, 64))
            for n in (1, 2)]
    for run in runs:
        run.learn()
    a, b = runs
    assert len(a.history) == len(b.history) == 3
    for ra, rb in zip(a.history, b.history):
        strip = {"sps", "time"}
        assert {k: v for k, v in ra.items() if k not in strip} == \
            {k: v for k, v in rb.items() if k not in strip}
    _assert_equal(_state(a), _state(b), "after training")


def test_policy_evaluate_is_bit_identical_and_checks_the_thread_count():
    rng = np.random.default_rng(0)

    def layers(dims):
        return ([rng.standard_normal((dims[i], dims[i + 1])).astype(np.float32) * 0.2
                 for i in range(len(dims) - 1)],
                [rng.standard_normal(dims[i + 1]).astype(np.float32) * 0.1 for i in range(len(dims) - 1)])

    aw, ab = layers([11, 130, 67, 3])
    cw, cb = layers([11, 97, 1])
    obs = rng.standard_normal((1001, 11)).astype(np.float32)
    acts = rng.integers(0, 3, 1001).astype(np.int64)
    nets = dict(actor_weights=aw, actor_biases=ab, critic_weights=cw, critic_biases=cb, log_std=None,
                activation="tanh", obs=obs, actions=acts)
    out = []
    for n in THREADS:
        values, logp = np.zeros(1001, np.float32), np.zeros(1001, np.float32)
        _C.policy_evaluate(**nets, values=values, logp=logp, num_threads=n)
        out.append((values, logp))
    for values, logp in out[1:]:
        assert np.array_equal(values, out[0][0]) and np.array_equal(logp, out[0][1])
    for bad in (0, -1, MAX_THREADS + 1):
        with pytest.raises(ValueError, match="num_threads"):
            _C.policy_evaluate(**nets, values=values, logp=logp, num_threads=bad)


@pytest.mark.parametrize("bad", [-1, MAX_THREADS + 1, True, 1.5, "2"])
def test_config_refuses_a_bad_thread_count(bad):
    with pytest.raises(ValueError, match="num_threads"):
        make_config("ppo", num_threads=bad)


def test_zero_threads_means_all_the_machine_gives_this_process():
    cfg = make_config("ppo", num_threads=0)
    assert cfg.threads == available_threads() >= 1
    assert make_config("ppo", num_threads=3).threads == 3


@pytest.mark.parametrize("backend,expected", [("native", 1), ("torch", 2)])
def test_learn_gives_torch_the_run_s_threads_on_the_torch_path_and_restores_them(backend, expected):
    run = _run("ppo", "CartPole-v1", 2, num_envs=2, num_steps=8, total_timesteps=16,
               update_backend=backend)
    old = torch.get_num_threads()
    seen = []
    run.learn(callback=lambda row: seen.append(torch.get_num_threads()))
    assert seen == [expected] and torch.get_num_threads() == old
