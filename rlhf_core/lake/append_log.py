"""An append-only log under a lake root, shared by appenders on every host: local or on S3.

A log is a file of newline-terminated lines plus a *sidecar* (e.g. a signed checkpoint of the
last line) replaced with every append. The caller *seals* each line from the log's current last
line (a hash chain), so an append is read-tail, seal, write, all as one exclusive step:

* **Local root**: an exclusive ``flock`` on ``<log>.lock``; the line is written with one
  ``O_APPEND`` write and ``fsync``; the sidecar is replaced atomically inside the lock.
* **S3 root**: the log is one object replaced by compare-and-swap
  (:mod:`rlhf_core.lake.objects`): read it with its ETag, add the line, PUT it with ``If-Match``
  (``If-None-Match: *`` for the first line). A writer that loses a race re-reads and re-seals, so
  no line is lost or interleaved, and a PUT is atomic: readers see the old or the new log, never
  a torn one. Each append uploads the whole log (comfortable up to tens of MB). The sidecar is
  replaced the same way and only by newer content, so racing appenders never move it backwards.
"""

from __future__ import annotations

import fcntl
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow.fs as pafs

from rlhf_core.errors import LakeError
from rlhf_core.lake.fs import is_local, write_bytes_atomic
from rlhf_core.lake.objects import ObjectStore, supports_conditional_writes
from rlhf_core.lake.store import Lake

Seal = Callable[[bytes | None], tuple[bytes, bytes]]
"""``seal(last_line) -> (line, sidecar)``: ``last_line`` is the log's final line as stored (with
its newline; without one if the file was cut mid-line), None for an empty log. Sealed lines must
be unique (a timestamp, a signature): on S3 a line found already appended counts as written."""

Supersedes = Callable[[bytes, bytes], bool]
"""``supersedes(new_sidecar, current_sidecar)``: whether ``new`` may replace ``current``."""

_TAIL_CHUNK = 65536
_ATTEMPTS = 60

__all__ = ["AppendLog", "Seal", "Supersedes", "last_line"]


def last_line(data: bytes) -> bytes | None:
    """The final line of ``data`` as stored (see :data:`Seal`), None if ``data`` is empty."""
    if not data:
        return None
    return data[data.rfind(b"\n", 0, len(data) - 1) + 1:]


def _last_line_of_file(path: Path) -> bytes | None:
    """:func:`last_line` of a local file, reading only its tail."""
    with open(path, "rb") as handle:
        end = handle.seek(0, os.SEEK_END)
        buffer = b""
        position = end
        while position > 0:
            start = max(0, position - _TAIL_CHUNK)
            handle.seek(start)
            buffer = handle.read(position - start) + buffer
            if buffer.rfind(b"\n", 0, len(buffer) - 1) >= 0:
                break
            position = start
        return last_line(buffer)


class AppendLog:
    """The log at ``log_parts`` (and its sidecar at ``sidecar_parts``) under ``lake``'s root.

    Args:
        lake: The lake whose root holds the log.
        log_parts: Path of the log relative to the root, e.g. ``("audit", "audit.log")``.
        sidecar_parts: Path of the sidecar relative to the root.

    Raises:
        LakeError: If the root is neither local nor on S3 (other object stores lack the
            conditional writes an append needs).
    """

    def __init__(self, lake: Lake, log_parts: tuple[str, ...], sidecar_parts: tuple[str, ...]) -> None:
        self.lake = lake
        self.log_path = lake.path(*log_parts)
        self.sidecar_path = lake.path(*sidecar_parts)
        self.local = is_local(lake.fs)
        if not self.local and not supports_conditional_writes(lake.root):
            raise LakeError(f"an append-only log needs a local or s3:// lake root, got {lake.root}; "
                            "other object stores lack the conditional writes it relies on")
        self._objects = None if self.local else ObjectStore(lake.root)

    @property
    def name(self) -> str:
        """Where the log is, for messages: its local path or its URI."""
        return self.log_path if self.local else self.lake.uri(self.log_path)

    # -- reading ---------------------------------------------------------------------------

    def read(self) -> bytes:
        """The whole log (empty if it does not exist yet)."""
        return self._read(self.log_path) or b""

    def read_sidecar(self) -> bytes | None:
        """The sidecar's content, or None if it does not exist."""
        return self._read(self.sidecar_path)

    def _read(self, path: str) -> bytes | None:
        if self._objects is None:
            return Path(path).read_bytes() if os.path.exists(path) else None
        version = self._objects.get(path)
        return None if version is None else version.data

    # -- appending -------------------------------------------------------------------------

    def append(self, seal: Seal, supersedes: Supersedes) -> None:
        """Append the line ``seal`` makes from the current last line, and replace the sidecar.

        ``seal`` runs while this appender holds the log (locally) or may run more than once (on
        S3, when another appender won the race); it must not have side effects.

        Raises:
            LakeError: On a short local write, or when S3 appenders kept winning for a minute.
            Whatever ``seal`` raises (e.g. on a damaged last line); nothing is written then.
        """
        if self._objects is None:
            self._append_local(seal)
        else:
            sidecar = self._append_object(self._objects, seal)
            self._replace_sidecar(self._objects, sidecar, supersedes)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        path = Path(self.log_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _append_local(self, seal: Seal) -> None:
        path = Path(self.log_path)
        with self._locked():
            line, sidecar = seal(_last_line_of_file(path) if path.exists() else None)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                written = os.write(fd, line)
                if written != len(line):
                    raise LakeError(f"{path}: short write ({written} of {len(line)} bytes); check "
                                    "free space, then verify the log")
                os.fsync(fd)
            finally:
                os.close(fd)
            write_bytes_atomic(pafs.LocalFileSystem(), self.sidecar_path, sidecar)

    def _append_object(self, objects: ObjectStore, seal: Seal) -> bytes:
        for attempt in range(_ATTEMPTS):
            current = objects.get(self.log_path)
            data = current.data if current is not None else b""
            line, sidecar = seal(last_line(data))
            if objects.put(self.log_path, data + line, replaces=current):
                return sidecar
            # A PUT that succeeded but timed out is retried by the client and then fails its
            # own condition: the line is already there.
            now = objects.get(self.log_path)
            if now is not None and now.data.startswith(data + line):
                return sidecar
            _backoff(attempt)
        raise LakeError(f"could not append to {self.name}: other writers won {_ATTEMPTS} races "
                        "in a row; retry")

    def _replace_sidecar(self, objects: ObjectStore, sidecar: bytes, supersedes: Supersedes) -> None:
        for attempt in range(_ATTEMPTS):
            current = objects.get(self.sidecar_path)
            if current is not None and not supersedes(sidecar, current.data):
                return  # a later append already wrote a newer one
            if objects.put(self.sidecar_path, sidecar, replaces=current):
                return
            _backoff(attempt)
        raise LakeError(f"could not replace {self.lake.uri(self.sidecar_path)}: other writers won "
                        f"{_ATTEMPTS} races in a row; the next append repairs it")


def _backoff(attempt: int) -> None:
    time.sleep(min(1.0, 0.01 * 2 ** min(attempt, 7)) * random.uniform(0.5, 1.0))
