"""Test-session set-up shared by every test module."""

from __future__ import annotations

import os
import signal

import pytest


def pytest_configure(config) -> None:
    """Run the suite with Python's own SIGINT handler, however it was started.

    A process started in the background by a shell without job control inherits SIGINT
    ignored (SIG_IGN), and Python then installs no KeyboardInterrupt handler; the tests of
    Ctrl-C handling (and the child processes they start, which inherit the disposition)
    would then test the launcher rather than pgfast."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def child_env():
    """The environment for a child Python process of a test: it imports the same pgfast as
    this process (the installed wheel in CI, the source tree in development), one thread."""
    from pathlib import Path

    import pgfast

    root = str(Path(pgfast.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["OMP_NUM_THREADS"] = "1"
    return env


# A Box-action env id that no preset names (every gymnasium MuJoCo task and classic Box env
# has one): the tests of the "defaults for Box actions" fallback use it.
BOX_ENV_WITHOUT_PRESET = "pgfast-tests/PendulumNoPreset-v0"


@pytest.fixture
def box_env_without_preset() -> str:
    """Register (once) and return :data:`BOX_ENV_WITHOUT_PRESET`: gymnasium's Pendulum
    under an id that has no preset."""
    import gymnasium as gym

    if BOX_ENV_WITHOUT_PRESET not in gym.registry:
        gym.register(BOX_ENV_WITHOUT_PRESET, entry_point="gymnasium.envs.classic_control.pendulum:PendulumEnv",
                     max_episode_steps=200)
    return BOX_ENV_WITHOUT_PRESET
