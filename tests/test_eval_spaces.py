"""Single-env evaluation (``pgfast eval --reference`` and ``--video``'s :func:`play_episode`)
feeds the policy what training fed it: observations of any space flattened as
:func:`pgfast.spaces.batch_flatten` (``gymnasium.spaces.flatten``) does."""

from __future__ import annotations

from typing import Any, List

import gymnasium as gym
import numpy as np
import pytest
import torch

import pgfast
from pgfast import cli
from pgfast.evaluation import play_episode, policy_input

ENV = "pgfast/DictObs-v0"


class _Recorder(gym.Wrapper):
    """Keeps every observation the env gave and every action it took."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.seen: List[Any] = []
        self.actions: List[Any] = []

    def reset(self, **kwargs: Any) -> Any:
        obs, info = self.env.reset(**kwargs)
        self.seen.append(obs)
        return obs, info

    def step(self, action: Any) -> Any:
        self.actions.append(action)
        obs, r, term, trunc, info = self.env.step(action)
        self.seen.append(obs)
        return obs, r, term, trunc, info


@pytest.fixture(scope="module")
def trained(tmp_path_factory: Any) -> Any:
    """PPO on the Dict probe, 2 iterations, saved as a run folder."""
    d = tmp_path_factory.mktemp("dictobs") / "run"
    run = pgfast.train("ppo", ENV, total_timesteps=128, seed=0, num_envs=4, num_steps=16,
                       num_minibatches=2, update_epochs=1)
    assert len(run.history) == 2
    run.save(d / "ckpt.pt")
    return run, d


def test_policy_input_is_gymnasiums_flatten() -> None:
    env = gym.make(ENV)
    obs, _ = env.reset(seed=3)
    x = policy_input(obs, env.observation_space)
    assert x.dtype == np.float32 and x.shape == (1, gym.spaces.flatdim(env.observation_space))
    np.testing.assert_array_equal(x[0], gym.spaces.flatten(env.observation_space, obs))
    box = gym.spaces.Box(0, 255, (4, 4, 1), np.uint8)  # images keep their axes
    assert policy_input(box.sample(), box).shape == (1, 4, 4, 1)


def test_play_episode_acts_on_flattened_observations(trained: Any) -> None:
    run, _ = trained
    env = _Recorder(gym.make(ENV))
    gen = torch.Generator().manual_seed(0)
    for ep in range(5):
        env.seen.clear()
        env.actions.clear()
        ret = play_episode(run.policy, env, True, gen, 100 + ep, run.device)
        assert ret in (0.0, 1.0) and len(env.actions) == 1  # one-step probe
        # the action is the policy's mode on gymnasium's flattening of the observation
        flat = torch.as_tensor(np.stack([gym.spaces.flatten(env.observation_space, env.seen[0])]),
                               dtype=torch.float32)
        with torch.inference_mode():
            want = run.policy.sample(run.policy(flat)[0], True, None)
        assert int(env.actions[0]) == int(want[0])
    env.close()


def test_eval_reference_on_a_dict_env(trained: Any, capsys: Any) -> None:
    _, d = trained
    rc = cli.main(["eval", str(d / "ckpt.pt"), "--episodes", "4", "--reference"])
    assert rc == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith(f"eval deterministic (mode) in gymnasium's {ENV}:")
    mean = float(line.split(":")[1].split("±")[0])
    assert 0.0 <= mean <= 1.0  # each episode scores 0 or 1
