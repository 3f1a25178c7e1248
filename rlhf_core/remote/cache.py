"""Content-addressed cache of remote scores, stored in the lake as the ``score_cache`` table.

A row's key is ``sha256`` of the canonical JSON (sorted keys, no whitespace, UTF-8, no NaN) of
``{endpoint, model, payload}``, where
``payload`` is exactly what the wire format sends for that row (plus the options that change the
score). Identical requests share one key across runs, so a re-run after a failure only sends the
rows whose key is missing. The table lives in the lake (:class:`~rlhf_core.lake.store.Lake`) at
``<root>/lake/score_cache/run_id=<run>/part-<n>.parquet``; each flush publishes one new part
atomically (temp file + rename), numbered after the parts already there, so a re-run of the same
run id adds to its partition instead of replacing what the failed attempt cached.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from rlhf_core.errors import LakeError
from rlhf_core.lake.catalog import SCORE_CACHE_SCHEMA, Table
from rlhf_core.lake.store import Lake, check_run_id

TABLE = Table.SCORE_CACHE
_PART = re.compile(r"^part-(\d+)\.parquet$")

__all__ = ["ScoreCache", "cache_key"]


def cache_key(endpoint: str, model_id: str, payload: Any) -> str:
    """The content address of one row's request.

    Args:
        endpoint: Full endpoint URL.
        model_id: Model identifier.
        payload: JSON-serialisable per-row request payload.

    Returns:
        64 lowercase hex characters.
    """
    # Payloads are strings, booleans and small ints, for which sorted compact JSON is canonical
    # (RFC 8785 agrees on them); the stdlib encoder is ~25x faster than a pure-Python JCS.
    canonical = json.dumps({"endpoint": endpoint, "model": model_id, "payload": payload},
                           sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ScoreCache:
    """Read and append the ``score_cache`` lake table for one run.

    Args:
        run_id: Partition the new entries go to.
        lake: The lake (default: ``Lake.from_env()``, i.e. ``$RLHF_WIZARD_HOME``).
        flush_rows: Buffered entries that trigger a flush on :meth:`add`.

    Raises:
        LakeError: If ``run_id`` is not a safe partition name.
    """

    def __init__(self, run_id: str, lake: Lake | None = None, flush_rows: int = 8192) -> None:
        self.run_id = check_run_id(run_id)
        self.lake = lake if lake is not None else Lake.from_env()
        self.flush_rows = flush_rows
        self._buffer: list[tuple[str, float, str, str]] = []
        self._next_part: int | None = None
        self.files_written: list[str] = []

    def lookup(self, keys: Iterable[str]) -> dict[str, float]:
        """Cached scores for the given keys (missing keys are simply absent).

        Args:
            keys: Cache keys to look up.

        Returns:
            ``{key: score}`` for every key already in the lake (any run).

        Raises:
            LakeError: If the cache table exists but cannot be read.
        """
        wanted = pa.array(sorted(set(keys)), type=pa.string())
        if len(wanted) == 0 or not self.lake.list_runs(TABLE):
            return {}
        try:
            table = self.lake.dataset(TABLE, schema=SCORE_CACHE_SCHEMA).to_table(
                columns=["cache_key", "score"], filter=pc.field("cache_key").isin(wanted))
        except (OSError, pa.ArrowException) as exc:
            raise LakeError(f"cannot read lake table {TABLE} under {self.lake.root}: {exc}; "
                            "delete the corrupt part file named above, then re-run") from exc
        return dict(zip(table.column("cache_key").to_pylist(), table.column("score").to_pylist(),
                        strict=True))

    def add(self, keys: Sequence[str], scores: Sequence[float], endpoint: str, model_id: str) -> None:
        """Buffer validated scores; flushes to the lake once ``flush_rows`` are buffered.

        Args:
            keys: Cache keys.
            scores: Finite scores, aligned with ``keys``.
            endpoint: Endpoint URL recorded with each entry.
            model_id: Model identifier recorded with each entry.
        """
        self._buffer.extend((k, s, endpoint, model_id) for k, s in zip(keys, scores, strict=True))
        if len(self._buffer) >= self.flush_rows:
            self.flush()

    def _first_free_part(self) -> int:
        used = [int(m.group(1)) for path in self.lake.part_paths(TABLE, self.run_id)
                if (m := _PART.match(posixpath.basename(path)))]
        return max(used, default=-1) + 1

    def flush(self) -> str | None:
        """Publish the buffered entries as one new part file of this run's partition, atomically.

        Returns:
            The part file written, or ``None`` if nothing was buffered.

        Raises:
            LakeError: If the write fails (the buffer is kept so a later flush can retry).
        """
        if not self._buffer:
            return None
        if self._next_part is None:
            self._next_part = self._first_free_part()
        keys, scores, endpoints, models = (list(col) for col in zip(*self._buffer, strict=True))
        now = datetime.now(UTC)
        table = pa.table(
            [keys, scores, endpoints, models, [now] * len(keys)], schema=SCORE_CACHE_SCHEMA
        )
        path = self.lake.write_part(TABLE, self.run_id, table, SCORE_CACHE_SCHEMA,
                                    part=self._next_part)
        self._next_part += 1
        self._buffer.clear()
        self.files_written.append(path)
        return path

    @property
    def pending(self) -> int:
        """Entries buffered but not yet flushed."""
        return len(self._buffer)
