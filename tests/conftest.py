"""Test-session set-up shared by every test module."""

from __future__ import annotations

import signal


def pytest_configure(config) -> None:
    """Run the suite with Python's own SIGINT handler, however it was started.

    A process started in the background by a shell without job control inherits SIGINT
    ignored (SIG_IGN), and Python then installs no KeyboardInterrupt handler; the tests of
    Ctrl-C handling (and the child processes they start, which inherit the disposition)
    would then test the launcher rather than pgfast."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
