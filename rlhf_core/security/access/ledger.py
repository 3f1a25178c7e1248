"""Token ledgers in the lake: which token ids were used (replay protection) and which were issued.

``access/used_tokens.jsonl`` holds one line per first use of a token: ``{jti, run_id, principal,
role, exp, at}``. A token is single-use *per run*: a Prefect retry of the same flow run (same
run id) may present it again, any other run id is refused as a replay. The check and the append
are one exclusive step of :class:`~rlhf_core.lake.append_log.AppendLog` (``flock`` on a local
root, compare-and-swap on S3), so two runs racing with one token cannot both win.
``access/issued_tokens.jsonl`` lists the tokens ``rlhf-wizard access token`` signed (never the
token itself), which the doctor uses to report tokens about to expire.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from rlhf_core.lake.append_log import AppendLog
from rlhf_core.lake.store import Lake

USED = "used_tokens"
ISSUED = "issued_tokens"

__all__ = ["ISSUED", "USED", "TokenLedger"]


class TokenLedger:
    """One ledger (``used_tokens`` or ``issued_tokens``) under ``<root>/access/``."""

    def __init__(self, lake: Lake, name: str) -> None:
        self.log = AppendLog(lake, ("access", f"{name}.jsonl"), ("access", f"{name}.head.json"))

    def records(self) -> list[dict[str, Any]]:
        """Every record, oldest first (unparseable lines are skipped: they grant nothing)."""
        out = []
        for line in self.log.read().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                out.append(record)
        return out

    def append(self, record: Mapping[str, Any],
               check: Callable[[list[dict[str, Any]]], None] | None = None) -> None:
        """Append ``record``; ``check(records)`` runs on the current records while the log is
        held exclusively and may raise to refuse (nothing is written then)."""
        line = json.dumps({**record, "at": datetime.now(UTC).isoformat(timespec="microseconds")},
                          sort_keys=True).encode("utf-8") + b"\n"

        def seal(last: bytes | None) -> tuple[bytes, bytes]:
            records = self.records()
            if check is not None:
                check(records)
            head = {"last": hashlib.sha256(line).hexdigest(), "count": len(records) + 1}
            return line, json.dumps(head).encode("ascii") + b"\n"

        self.log.append(seal, supersedes=_more_records)


def _more_records(new: bytes, current: bytes) -> bool:
    try:
        return int(json.loads(new)["count"]) > int(json.loads(current)["count"])
    except (ValueError, KeyError, TypeError):
        return True
