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
