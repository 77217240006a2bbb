"""The run lifecycle: the stop flag, the one signal guard and the checkpoint schedule.

Every training loop (:meth:`pgfast.Run.learn`, hence :func:`pgfast.train`,
``pgfast train`` and every study job) runs under these three; this is the only
module that installs signal handlers.

* :class:`StopFlag`: a request to stop at the end of the current iteration. It
  is handed in by whoever owns the run: the study runner gives one to its jobs
  (in a worker process the flag shares a ``multiprocessing.Event`` with the
  runner), and :meth:`pgfast.Run.learn` makes its own when none is given.
* :class:`SignalGuard`: while it is active (main thread only), the first SIGINT
  or SIGTERM sets the flag, so the iteration finishes, the run stays consistent
  and is saved before training stops; a second SIGINT raises KeyboardInterrupt
  at once. The previous handlers are restored on exit.
* :func:`deferred_signals`: SIGINT/SIGTERM are held back while a checkpoint is
  written (:func:`pgfast.checkpoint.write`), so no signal lands between its
  renames; :func:`command_signals` turns signals outside training into
  exceptions a command reports in one line (exit status 130 / 143).
* :class:`CheckpointSchedule`: when to save: every N iterations or every S
  seconds, and once more when training ends or stops, never twice in a row for
  the same step (so a rotating save keeps the older checkpoint as the previous one).
"""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from types import FrameType
from typing import Any, Callable, Dict, Iterator, List, Optional, Protocol, Sequence

__all__ = ["Interrupted", "Terminated", "StopFlag", "SignalGuard", "CheckpointSchedule", "deferred_signals",
           "exit_status", "command_signals", "ignore_signals_at_exit"]


class Interrupted(Exception):
    """Training was stopped by a signal (SIGINT/SIGTERM) or a stop request;
    the run's latest consistent state has been checkpointed (or, after a
    second SIGINT in the middle of an iteration, deliberately not: the message
    says which). ``signum``: the signal that stopped it, if one did."""

    def __init__(self, message: str = "interrupted", signum: Optional[int] = None) -> None:
        super().__init__(message)
        self.signum = signum


class Terminated(KeyboardInterrupt):
    """SIGTERM received outside training, under :func:`command_signals`."""


def exit_status(signum: Optional[int]) -> int:
    """The exit status of a command stopped by ``signum``: 128 + signum (130
    for SIGINT, 143 for SIGTERM); 130 when no signal is known."""
    return 128 + int(signum) if signum is not None else 128 + int(signal.SIGINT)


_deferring = threading.local()


@contextmanager
def deferred_signals(signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[None]:
    """Hold SIGINT/SIGTERM back for the duration of the block (e.g. while a
    checkpoint file is written and renamed), then deliver them as they would
    have been. Only in the main thread (elsewhere Python runs no handlers);
    nested uses defer to the outermost."""
    if threading.current_thread() is not threading.main_thread() or getattr(_deferring, "on", False):
        yield
        return
    pending: List[int] = []
    old: Dict[int, Any] = {}

    def hold(signum: int, frame: Optional[FrameType]) -> None:
        pending.append(signum)

    _deferring.on = True
    try:
        for s in signals:
            try:
                old[s] = signal.signal(s, hold)
            except (ValueError, OSError):  # pragma: no cover - platform without this signal
                pass
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        _deferring.on = False
        for s in dict.fromkeys(pending):  # each signal once, in arrival order
            h = old.get(s)
            if callable(h):
                h(s, None)
            elif h == signal.SIG_DFL:
                signal.raise_signal(s)


def ignore_signals_at_exit() -> None:
    """Ignore SIGINT/SIGTERM from now on: for a command-line process that has
    reported its outcome and is exiting. Registered with ``atexit`` by the
    command, it runs before the exit handlers registered earlier (such as
    logging's shutdown), which a late Ctrl-C would otherwise interrupt."""
    if threading.current_thread() is threading.main_thread():
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, signal.SIG_IGN)


@contextmanager
def command_signals() -> Iterator[None]:
    """For a command-line process: SIGINT raises KeyboardInterrupt and SIGTERM
    raises :class:`Terminated`, wherever they land outside training (whose
    :class:`SignalGuard` takes over meanwhile), so that the command can exit
    with one line and status 130 / 143 instead of a traceback."""
    def term(signum: int, frame: Optional[FrameType]) -> None:
        raise Terminated

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
           signal.SIGTERM: signal.signal(signal.SIGTERM, term)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


class _Event(Protocol):
    def set(self) -> None: ...

    def is_set(self) -> bool: ...


class StopFlag:
    """A request to stop training at the end of the current iteration.

    ``event`` (e.g. a ``multiprocessing.Event``) shares the request with other
    processes: :meth:`request` sets it and :attr:`requested` reads it.
    """

    def __init__(self, event: Optional[_Event] = None) -> None:
        self.event = event
        self.signum: Optional[int] = None
        """The signal behind the latest request, if a signal made it."""
        self._requested = False

    def request(self, signum: Optional[int] = None) -> None:
        """Ask training to stop (``signum``: the signal that asked, if any)."""
        if signum is not None:
            self.signum = signum
        self._requested = True
        if self.event is not None:
            self.event.set()

    @property
    def requested(self) -> bool:
        """Whether a stop was requested here or through the shared event."""
        return self._requested or (self.event is not None and self.event.is_set())

    def reason(self) -> str:
        """``"signal SIGTERM"`` (the signal that asked) or ``"stop requested"``."""
        return f"signal {signal.Signals(self.signum).name}" if self.signum is not None else "stop requested"


def _python_default(signum: int) -> Any:
    return signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL


class SignalGuard:
    """Context manager turning SIGINT/SIGTERM into ``stop.request(signum)``.

    A second SIGINT received by this guard raises KeyboardInterrupt at once.
    With ``only_if_default``, a signal whose handler is not Python's default is
    left alone (a handler the caller installed wins). Does nothing outside the
    main thread.
    """

    def __init__(self, stop: StopFlag, signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM),
                 only_if_default: bool = False) -> None:
        self.stop = stop
        self.signals = tuple(signals)
        self.only_if_default = only_if_default
        self.received: Optional[int] = None
        """The first signal this guard received."""
        self._old: Dict[int, Any] = {}

    def _handler(self, signum: int, frame: Optional[FrameType]) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.received is None:
            self.received = signum
        self.stop.request(signum)

    def __enter__(self) -> "SignalGuard":
        if threading.current_thread() is threading.main_thread():
            for s in self.signals:
                if self.only_if_default and signal.getsignal(s) is not _python_default(s):
                    continue
                try:
                    self._old[s] = signal.signal(s, self._handler)
                except (ValueError, OSError):  # pragma: no cover - platform without this signal
                    pass
        return self

    def __exit__(self, *exc: object) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)
        self._old.clear()


class CheckpointSchedule:
    """When a run is saved: ``save()`` is called after an iteration when
    ``every_iterations`` (> 0) divides the iteration number or ``every_seconds``
    (not None; 0: every iteration) have passed since the last save, and by
    :meth:`final` when training ends or stops. A save for the step that was
    saved last (``saved_step``: the step already on disk, e.g. a resumed
    checkpoint's) is skipped.
    """

    def __init__(self, save: Callable[[], Any], every_iterations: int = 0,
                 every_seconds: Optional[float] = None, saved_step: Optional[int] = None) -> None:
        if not isinstance(every_iterations, int) or every_iterations < 0:
            raise ValueError(f"checkpoint_every must be an int >= 0, got {every_iterations!r}")
        if every_seconds is not None and not every_seconds >= 0:
            raise ValueError(f"checkpoint_interval: must be >= 0, got {every_seconds}")
        self._save = save
        self.every_iterations = every_iterations
        self.every_seconds = every_seconds
        self.saved_step = saved_step
        self.failed = False
        """True once a save raised: later saves (e.g. the final one) are not tried again."""
        self._last = time.monotonic()

    def after_iteration(self, iteration: int, step: int) -> None:
        """Save if a checkpoint is due after ``iteration`` (run at ``step`` env steps)."""
        due = bool(self.every_iterations) and iteration % self.every_iterations == 0
        if self.every_seconds is not None:
            due = due or self.every_seconds == 0 or time.monotonic() - self._last >= self.every_seconds
        if due:
            self.save_now(step)

    def final(self, step: int) -> None:
        """The save at the end of training (or when it stops)."""
        self.save_now(step)

    def save_now(self, step: int) -> None:
        """Save now, unless ``step`` is the step saved last or a save failed before."""
        if step == self.saved_step or self.failed:
            return
        try:
            self._save()
        except BaseException:
            self.failed = True
            raise
        self.saved_step = step
        self._last = time.monotonic()
