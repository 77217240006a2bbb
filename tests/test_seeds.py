"""Several seeds in one process: pgfast.train(..., seed=[...]) / pgfast.trainer.train_seeds."""

import threading

import pytest
import torch

import pgfast
from pgfast.trainer import train_seeds

KW = dict(total_timesteps=4 * 64 * 3, device="cpu", tuned=False, num_envs=4, num_steps=64)


def _rows(run):
    """The history without timings, NaN (no episode finished yet) as a string."""
    return [{k: ("nan" if v != v else v) for k, v in r.items() if k not in ("time", "sps")}
            for r in run.history]


@pytest.mark.parametrize("algo,env_id", [("ppo", "CartPole-v1"), ("ppo", "Pendulum-v1"),
                                         ("vpg", "Acrobot-v1")])
def test_each_seed_equals_its_own_run_bit_for_bit(algo, env_id):
    runs = pgfast.train(algo, env_id, seed=[3, 1, 2], **KW)
    assert [r.seed for r in runs] == [3, 1, 2]
    for run in runs:
        alone = pgfast.train(algo, env_id, seed=run.seed, **KW)
        assert _rows(run) == _rows(alone)
        for p, q in zip(run.policy.parameters(), alone.policy.parameters()):
            assert torch.equal(p, q)
    # different seeds really are different runs
    assert not torch.equal(runs[0].policy.actor_weights[0], runs[1].policy.actor_weights[0])


def test_rows_reach_the_callback_one_at_a_time_with_their_seed():
    seen, active, overlap = [], [0], [False]
    lock = threading.Lock()

    def cb(row):
        with lock:
            active[0] += 1
            overlap[0] |= active[0] > 1
        seen.append((row["seed"], row["iteration"]))
        with lock:
            active[0] -= 1
        return not (row["seed"] == 1 and row["iteration"] == 2)  # stop seed 1 early

    runs = pgfast.train("ppo", "CartPole-v1", seed=[0, 1], callback=cb, **KW)
    assert not overlap[0]
    assert sorted(seen) == [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2)]
    assert [len(r.history) for r in runs] == [3, 2]


def test_one_thread_trains_the_seeds_in_turn_with_the_same_results():
    a = train_seeds("ppo", "CartPole-v1", KW["total_timesteps"], [0, 1], threads=1,
                    **{k: v for k, v in KW.items() if k != "total_timesteps"})
    b = pgfast.train("ppo", "CartPole-v1", seed=[0, 1], **KW)
    for x, y in zip(a, b):
        assert _rows(x) == _rows(y)


def test_checkpoints_get_one_path_per_seed(tmp_path):
    pgfast.train("ppo", "CartPole-v1", seed=[0, 5], checkpoint_path=tmp_path / "ck.pt", **KW)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck-seed0.pt", "ck-seed5.pt"]
    assert pgfast.load(tmp_path / "ck-seed5.pt").seed == 5


def test_an_error_in_one_run_is_raised_and_stops_the_others():
    def cb(row):
        if row["seed"] == 1:
            raise RuntimeError("boom in seed 1")

    with pytest.raises(RuntimeError, match="boom in seed 1"):
        pgfast.train("ppo", "CartPole-v1", seed=[0, 1], callback=cb,
                     **dict(KW, total_timesteps=4 * 64 * 50))


def test_seed_types():
    for bad in ("0", 1.5, [0, "1"], [True], {0, 1}):
        with pytest.raises(TypeError, match="seed"):
            pgfast.train("ppo", "CartPole-v1", seed=bad, **KW)


@pytest.mark.parametrize("seeds,match", [([], "non-empty"), ([1, 1], "distinct")])
def test_bad_seed_lists(seeds, match):
    with pytest.raises(ValueError, match=match):
        pgfast.train("ppo", "CartPole-v1", seed=seeds, **KW)
    with pytest.raises(ValueError, match="threads"):
        train_seeds("ppo", "CartPole-v1", 256, [0], threads=0)
