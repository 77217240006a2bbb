"""Learning checks of the presets: minutes to an hour each, so they run only when asked.

    make bench BENCH_ARGS="-m learning"                 # every case (about 3 h on 2 cores)
    make bench BENCH_ARGS="-m learning -k Acrobot"      # one env (seconds)

Each case trains ALGO on ENV_ID with its preset (``pgfast.train`` with no overrides) for
STEPS env steps, one test per seed 0, 1, 2, and requires the deterministic evaluation
return over 20 episodes to reach the target on every seed. Without ``-m learning`` the
cases are skipped with that reason (bench/conftest.py), so ``make test``'s smoke run of
bench/ does not train for an hour. ``python scripts/check_presets.py ALGO ENV_ID --steps N``
prints the same numbers (deterministic and stochastic) without asserting; docs/PRESETS.md
lists the results.
"""

from __future__ import annotations

import importlib.util
import warnings

import gymnasium
import pytest

import pgfast

SEEDS = (0, 1, 2)
# (algo, env id, env steps, deterministic eval target on every seed)
CASES = [
    ("ppo", "CartPole-v1", 100_000, 475.0),
    ("ppo", "Acrobot-v1", 100_000, -85.0),
    ("ppo", "MountainCar-v0", 1_000_000, -130.0),
    ("ppo", "MountainCarContinuous-v0", 300_000, 90.0),
    ("ppo", "InvertedPendulum-v5", 100_000, 950.0),
    ("ppo", "InvertedDoublePendulum-v5", 1_000_000, 8_000.0),
    ("ppo", "Hopper-v5", 1_000_000, 2_000.0),
    ("ppo", "Walker2d-v5", 1_000_000, 2_500.0),
    ("ppo", "HalfCheetah-v5", 1_000_000, 5_000.0),
    ("ppo", "LunarLander-v3", 1_000_000, 200.0),
    ("ppo", "LunarLanderContinuous-v3", 1_000_000, 200.0),
    ("ppo", "BipedalWalker-v3", 5_000_000, 200.0),
    ("ppo", "Swimmer-v5", 1_000_000, 250.0),
    ("ppo", "Ant-v5", 1_000_000, 1_500.0),
    ("ppo", "Pusher-v5", 1_000_000, -35.0),
    ("trpo", "Acrobot-v1", 100_000, -85.0),
    ("trpo", "HalfCheetah-v5", 1_000_000, 1_500.0),
    ("trpo", "Hopper-v5", 1_000_000, 3_000.0),
    ("trpo", "Ant-v5", 1_000_000, 1_500.0),
    ("trpo", "Swimmer-v5", 1_000_000, 340.0),
    ("trpo", "Walker2d-v5", 1_000_000, 3_500.0),
    ("trpo", "Pusher-v5", 1_000_000, -35.0),
    ("vpg", "Acrobot-v1", 100_000, -100.0),
]
MUJOCO = importlib.util.find_spec("mujoco") is not None
BOX2D = importlib.util.find_spec("Box2D") is not None


@pytest.mark.learning
@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{s}" for s in SEEDS])
@pytest.mark.parametrize("algo,env_id,steps,target", CASES, ids=[f"{a}-{e}" for a, e, _, _ in CASES])
def test_preset_reaches_its_target(algo, env_id, steps, target, seed):
    if env_id.endswith("-v5") and not MUJOCO:
        pytest.skip('needs MuJoCo: pip install "pgfast-rl[mujoco]"')
    if "box2d" in str(gymnasium.spec(env_id).entry_point):  # gymnasium's Box2D envs
        if not BOX2D:
            pytest.skip('needs Box2D: pip install "pgfast-rl[box2d]"')
        with warnings.catch_warnings():  # SWIG's import-time DeprecationWarnings, fatal as errors
            warnings.simplefilter("ignore")
            import Box2D  # noqa: F401
    run = pgfast.train(algo, env_id, total_timesteps=steps, seed=seed, device="cpu")
    try:
        det, _ = run.evaluate(episodes=20, deterministic=True)
    finally:
        run.close()
    print(f"\n[{algo} {env_id} seed {seed} at {run.global_step} steps] deterministic eval {det:.1f} "
          f"(target {target})")
    assert det >= target, f"{algo} {env_id} seed {seed}: {det:.1f} < {target} after {run.global_step} steps"
