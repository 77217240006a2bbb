"""Learning tests (slow, still run in CI): each algorithm solves CartPole-v1 within 150k steps.

CartPole-v1's maximum return is 500; "solved" here means a mean deterministic
evaluation return >= 475 over 20 episodes after at most 150,000 env steps, seed 0,
with the tuned hyperparameters in ``pgfast.presets.PRESETS`` (applied by ``pgfast.train``).
"""

import pytest

import pgfast


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["ppo", "trpo", "vpg"])
def test_cartpole_solved_within_150k_steps(algo):
    run = pgfast.train(algo, "CartPole-v1", total_timesteps=150_000, seed=0, device="cpu")
    assert run.global_step <= 150_000
    if algo == "vpg":
        assert run.config.baseline is True
    mean, std = run.evaluate(episodes=20, deterministic=True)
    assert mean >= 475, (algo, mean, std, run.history[-1])
