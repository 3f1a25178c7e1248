"""Retry and cache policies shared by the tasks.

Only I/O is retried: a task retries when it failed with a transient I/O error (a connection
reset, a timeout, a storage hiccup), with exponential backoff and jitter. A deterministic error
(bad data, a contract that does not check, a missing file) fails at once — retrying would only
repeat it.
"""

from __future__ import annotations

import errno
from typing import Any

from prefect.tasks import exponential_backoff

_PERMANENT_ERRNOS = {errno.ENOENT, errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR, errno.EINVAL}

IO_RETRIES = 3
IO_RETRY_DELAYS = exponential_backoff(backoff_factor=1.0)
IO_RETRY_JITTER = 0.5


def is_transient_io_error(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an exception it wraps) is an I/O failure worth retrying."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, (TimeoutError, ConnectionError)):
            return True
        if isinstance(exc, OSError) and exc.errno not in _PERMANENT_ERRNOS:
            return not isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError))
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def retry_on_transient_io(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry only transient I/O failures."""
    try:
        exc = state.result(raise_on_failure=False)
    except Exception:  # noqa: BLE001 - an unreadable result is not evidence of transient I/O
        return False
    return isinstance(exc, BaseException) and is_transient_io_error(exc)


IO_RETRY_OPTIONS: dict[str, Any] = {
    "retries": IO_RETRIES,
    "retry_delay_seconds": IO_RETRY_DELAYS,
    "retry_jitter_factor": IO_RETRY_JITTER,
    "retry_condition_fn": retry_on_transient_io,
}
