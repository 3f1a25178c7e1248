"""Names and layout constants of the lake: table names, run ids, part files, metadata keys.

Names are checked against allow-lists before they become paths or SQL identifiers, so a run id
can never escape its partition directory (no ``/``, ``..``, ``=``, or leading dot).
"""

from __future__ import annotations

import re

from rlhf_core.errors import LakeError

ENV_HOME = "RLHF_WIZARD_HOME"
DEFAULT_HOME = "./.wizard"
PARTITION_KEY = "run_id"
COMPRESSION = "zstd"
META_TABLE = "rlhf_wizard.table"
META_RUN_ID = "rlhf_wizard.run_id"
STAGING_PREFIX = ".staging-"
TRASH_PREFIX = ".trash-"

TABLE_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
PART_RE = re.compile(r"^part-(\d{5,})\.parquet$")

__all__ = [
    "COMPRESSION", "DEFAULT_HOME", "ENV_HOME", "META_RUN_ID", "META_TABLE", "PARTITION_KEY",
    "PART_RE", "RUN_ID_RE", "STAGING_PREFIX", "TABLE_RE", "TRASH_PREFIX", "check_run_id",
    "check_table_name", "part_name",
]


def check_table_name(table: str) -> str:
    """Return ``table`` if it is a valid lake table name (``[a-z][a-z0-9_]*``), else raise LakeError."""
    if not isinstance(table, str) or not TABLE_RE.match(table):
        raise LakeError(f"invalid lake table name {table!r}: use lowercase letters, digits and "
                        "underscores, starting with a letter")
    return table


def check_run_id(run_id: str) -> str:
    """Return ``run_id`` if it is safe as a partition directory name, else raise LakeError."""
    if not isinstance(run_id, str) or not RUN_ID_RE.match(run_id):
        raise LakeError(f"invalid run id {run_id!r}: use letters, digits, '_', '-' and '.', "
                        "starting with a letter or digit (at most 128 characters)")
    return run_id


def part_name(part: int) -> str:
    """File name of shard ``part`` in a partition, e.g. ``part-00003.parquet``."""
    if not isinstance(part, int) or isinstance(part, bool) or part < 0:
        raise LakeError(f"invalid part number {part!r}: use a non-negative integer shard index")
    return f"part-{part:05d}.parquet"
