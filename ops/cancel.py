"""Clean cancellation of a run started from the command line (SIGTERM, SIGINT / Ctrl-C).

:func:`cancel_on_signals` makes both signals raise :class:`RunCancelled` in the main thread.
Prefect's flow engine installs its own SIGTERM bridge while a flow runs and, once its flow has
recorded the cancellation, re-delivers the signal to the handler it replaced — this one — so the
exception unwinds every context manager (the Dask cluster, the temporary Prefect server) on its
way out. Whatever child process is still alive after that (a worker stuck in native code, a
server that did not stop) is terminated, then killed after a grace period, so a cancelled run
never leaves a process behind.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import psutil

GRACE_S = 5.0
"""Seconds children get to exit after SIGTERM before they are killed."""

__all__ = ["GRACE_S", "RunCancelled", "cancel_on_signals", "cancellation_reason",
           "close_dask_clusters", "stop_children"]


class RunCancelled(KeyboardInterrupt):
    """The run was asked to stop by a signal (a ``KeyboardInterrupt``, so libraries unwind)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"cancelled by {signal.Signals(signum).name}")


_RECEIVED: list[int] = []
"""Signals :func:`cancel_on_signals` received in this process's current run (first first)."""


def received_signal() -> int | None:
    """The first cancelling signal received during the current run, if any."""
    return _RECEIVED[0] if _RECEIVED else None


def cancellation_reason(exc: BaseException) -> str | None:
    """``cancelled by SIGTERM`` (or SIGINT) for a signal-driven stop, else None.

    An exception of another type still counts once a cancelling signal was received: native code
    converts the interrupt into its own error (DuckDB raises ``RuntimeError: Query interrupted``
    when our ``RunCancelled`` lands inside a query).
    """
    signum = getattr(exc, "signum", None) or getattr(exc, "signal", None)
    if isinstance(signum, int):
        return f"cancelled by {signal.Signals(signum).name}"
    if isinstance(exc, KeyboardInterrupt):
        return "cancelled by SIGINT"
    if _RECEIVED:
        return f"cancelled by {signal.Signals(_RECEIVED[0]).name}"
    return None


def close_dask_clusters(grace_s: float = GRACE_S) -> None:
    """Close every Dask cluster this process started, before its workers are stopped.

    ``distributed`` closes them again at exit (an ``atexit`` hook over ``SpecCluster._instances``);
    a cluster whose workers were already killed would print a traceback there, so each one is
    closed here and then excluded from that hook (``shutdown_on_close = False``).
    """
    try:
        from distributed.deploy.spec import SpecCluster
    except ImportError:
        return
    for cluster in list(SpecCluster._instances):
        with suppress(Exception):  # a half-started cluster may fail to close; its processes are
            cluster.close(timeout=grace_s)  # stopped by stop_children right after
        cluster.shutdown_on_close = False


def stop_children(grace_s: float = GRACE_S) -> list[int]:
    """Terminate every descendant of this process, killing those still alive after ``grace_s``.

    Returns:
        The pids that were still running.
    """
    try:
        children = psutil.Process().children(recursive=True)
    except psutil.Error:
        return []
    for child in children:
        try:
            child.terminate()
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(children, timeout=grace_s)
    for child in alive:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(alive, timeout=grace_s)
    return [c.pid for c in children]


_SHIELD = threading.Event()


@contextmanager
def shielded() -> Iterator[None]:
    """Let the block finish before a SIGTERM / SIGINT interrupts it (e.g. recording a run's
    outcome on the way out: a second Ctrl-C must not leave the run recorded as running)."""
    _SHIELD.set()
    try:
        yield
    finally:
        _SHIELD.clear()


@contextmanager
def cancel_on_signals() -> Iterator[None]:
    """Raise :class:`RunCancelled` on SIGTERM / SIGINT inside the block; stop children on cancel.

    Every signal raises until this block's own cleanup starts, so one that a library absorbed
    (a signal landing while Prefect finalises a task can be) is not the last word: the next one
    cancels. Signals are not raised inside :func:`shielded` blocks or during the cleanup, and after
    a cancellation they stay ignored while the process exits.
    """
    stopping = False

    def handler(signum: int, _frame: object) -> None:
        if not _RECEIVED:
            _RECEIVED.append(signum)
        if stopping or _SHIELD.is_set():
            return
        raise RunCancelled(signum)

    _RECEIVED.clear()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    except BaseException as exc:
        if cancellation_reason(exc) is not None:  # Ctrl-C, our signal, or Prefect's SIGTERM bridge
            stopping = True
            close_dask_clusters()
            stop_children()
        raise
    finally:
        for sig, old in previous.items():
            # Once cancelling, the process is on its way out (printing the outcome, stopping a
            # temporary Prefect server): a user's further Ctrl-C / SIGTERM must not kill it with
            # the default action and a signal exit code halfway through that.
            signal.signal(sig, signal.SIG_IGN if stopping else old)
