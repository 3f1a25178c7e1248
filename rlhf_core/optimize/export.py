"""Export a run's pairs for a trainer: one file (JSON Lines / Parquet) or a signed dataset folder.

``export_pairs(run_id, out, format=...)`` reads the run's ``pairs`` partition batch by batch,
converts each batch to the trainer format (:mod:`rlhf_core.optimize.formats`) and writes:

* ``out`` ending in ``.jsonl`` or ``.parquet``: one file with every row, published atomically
  (temp file + rename); Parquet files carry the contract hash, run id, format and version in
  their schema metadata and the full provenance (``rlhf_wizard.provenance``, JSON with the input
  digests) in their footer's key-value metadata;
* any other ``out``: a Hugging Face dataset folder split by prompt, with its card and a manifest
  signed by the operator key (:mod:`rlhf_core.optimize.hf_dataset`).

Either way an ``export_written`` entry (path, format, rows, contract hash, and the file's or
the manifest's SHA-256) goes to the audit log. ``verify_folder`` checks a folder byte for byte.

Pair formats skip the ``unpaired`` rows of ``ties: kto`` (only ``kto`` reads them), and a run
whose pairs failed the contract's length gate is not exported at all
(:func:`rlhf_core.optimize.length_gate.require_length_gate`, one line naming the fix).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from rlhf_core.errors import DataError, SignatureError
from rlhf_core.lake.catalog import PAIRS_SCHEMA, Table
from rlhf_core.lake.fs import atomic_write
from rlhf_core.lake.store import Lake
from rlhf_core.optimize.export_manifest import VerifiedExport, file_sha256, verify_export
from rlhf_core.optimize.export_messages import attach_prompt_messages, multi_turn_prompts
from rlhf_core.optimize.export_provenance import (
    Provenance,
    collect_provenance,
    footer_metadata,
    schema_metadata,
)
from rlhf_core.optimize.export_sinks import open_sink, prefetch
from rlhf_core.optimize.formats import SOURCE_SCHEMA, ExportFormat, get_format
from rlhf_core.optimize.hf_dataset import write_dataset_folder
from rlhf_core.optimize.length_gate import require_length_gate
from rlhf_core.optimize.pair_rows import complete_pairs, paired_rows
from rlhf_core.security.audit import AuditLog
from rlhf_core.security.operator_key import load_operator_key, trusted_operator_keys

__all__ = ["FILE_SUFFIXES", "SourceShard", "export_pairs", "plan_shards", "source_batches", "verify_folder"]

FILE_SUFFIXES = {".jsonl": "jsonl", ".parquet": "parquet"}
"""Output suffixes that mean "one file"; any other path is a dataset folder."""
BATCH_ROWS = 65_536
SHARD_ROWS = 1_000_000
"""Pairs per source shard (whole row groups): the unit of parallel export and of data files."""


@dataclass(frozen=True)
class SourceShard:
    """Consecutive row groups of one ``pairs`` part file: a unit of parallel export.

    Attributes:
        part: The part file.
        row_groups: Its row groups, in order.
        first_row: Position of the shard's first pair in the run (``_row``).
        rows: Pairs in the shard.
    """

    part: str
    row_groups: tuple[int, ...]
    first_row: int
    rows: int


def plan_shards(lake: Lake, parts: list[str], shard_rows: int = SHARD_ROWS) -> list[SourceShard]:
    """Cut the run's part files into shards of at least ``shard_rows`` pairs (whole row groups;
    a part's last shard may be smaller), in row order. Depends only on the files."""
    shards, first = [], 0
    for part in parts:
        meta = pq.read_metadata(part, filesystem=lake.fs)
        groups: list[int] = []
        rows = 0
        for index in range(meta.num_row_groups):
            groups.append(index)
            rows += meta.row_group(index).num_rows
            if rows >= shard_rows:
                shards.append(SourceShard(part, tuple(groups), first, rows))
                first, groups, rows = first + rows, [], 0
        if groups or not shards:
            shards.append(SourceShard(part, tuple(groups), first, rows))
            first += rows
    return shards


def source_batches(lake: Lake, run_id: str, shards: Sequence[SourceShard],
                   batch_rows: int = BATCH_ROWS, *, prompt_messages: bool = False,
                   turns: pa.Table | None = None, paired_only: bool = False) -> Iterator[pa.Table]:
    """The pairs of ``shards`` in order as :data:`SOURCE_SCHEMA` slices of ``batch_rows`` rows;
    with ``prompt_messages``, plus the prompts' turns looked up in ``turns`` (see
    :mod:`rlhf_core.optimize.export_messages`); with ``paired_only``, without the ``unpaired``
    KTO-only rows of ``ties: kto`` (``_row`` still counts them)."""
    stored = PAIRS_SCHEMA.append(pa.field("contract_hash", pa.string()))
    for shard in shards:
        row = shard.first_row
        if not shard.row_groups:
            continue
        with lake.open_part(shard.part) as handle:  # decrypts the text on an encrypted lake
            for batch in handle.iter_batches(batch_size=batch_rows, row_groups=list(shard.row_groups)):
                table = pa.Table.from_batches([batch])
                n = table.num_rows
                if "contract_hash" not in table.column_names:
                    table = table.append_column("contract_hash", pa.nulls(n, pa.string()))
                table = complete_pairs(table).select(stored.names).cast(stored)
                table = table.append_column("run_id", pa.repeat(run_id, n)).append_column(
                    "_row", pa.array(np.arange(row, row + n, dtype=np.int64)))
                row += n
                if paired_only:  # filtered only when there is something to drop (no copy otherwise)
                    keep = paired_rows(table.column("kind"))
                    table = table if pc.all(keep).as_py() is not False else table.filter(keep)
                yield attach_prompt_messages(table, turns) if prompt_messages else table


def _write_file(out: Path, fmt: ExportFormat, batches: Iterator[pa.Table], prov: Provenance) -> int:
    """Write every row to one file at ``out`` atomically; return the rows written."""
    rows = 0

    def write(tmp: str) -> None:
        nonlocal rows
        sink = open_sink(tmp, FILE_SUFFIXES[out.suffix], fmt.schema.with_metadata(schema_metadata(prov, fmt.name)))
        if fmt.whole_split:
            tables = list(batches)
            sink.write(fmt.convert(pa.concat_tables(tables) if tables else SOURCE_SCHEMA.empty_table()))
        else:
            for batch in batches:
                sink.write(fmt.convert(batch))
        sink.close(footer_metadata(prov, fmt.name))
        rows = sink.rows

    atomic_write(pafs.LocalFileSystem(), out.as_posix(), write)
    return rows


def export_pairs(run_id: str, out: str | os.PathLike[str], lake: Lake | None = None, *,
                 format: str = "trl", test_share: float = 0.1, seed: int = 0,
                 license_id: str | None = None) -> dict[str, Any]:
    """Export run ``run_id``'s pairs in a trainer format.

    Args:
        run_id: The run whose ``pairs`` are exported.
        out: ``*.jsonl`` / ``*.parquet`` for one file, any other path for a dataset folder.
        lake: The lake (default: ``$RLHF_WIZARD_HOME``).
        format: A name of :data:`rlhf_core.optimize.formats.FORMATS` (``trl`` by default).
        test_share: Share of prompts in the folder's test split, in ``[0, 1)``.
        seed: Split seed of the folder.
        license_id: License stated on the card (default: the source dataset's, else unknown).

    Returns:
        ``path``, ``format``, ``rows`` (rows written: pairs, or KTO examples), ``contract_hash``,
        and ``sha256`` (one file) or ``splits``, ``manifest_sha256`` and ``key_id`` (a folder).

    Raises:
        DataError: The run has no pairs, the format is unknown, ``hf`` was asked as a file, or
            the test share is out of range.
        LengthBiasError: The pairs failed the contract's length gate (``max_chosen_longer``).
    """
    lake = lake or Lake.from_env()
    fmt = get_format(format)
    parts = lake.part_paths(Table.PAIRS, run_id)
    if not parts:
        raise DataError(f"run {run_id} has no DPO pairs in {lake.root}; run `rlhf-wizard optimize "
                        f"{run_id} --contract …` first")
    out = Path(out).resolve()
    as_file = out.suffix in FILE_SUFFIXES
    if as_file and fmt.folder_only:
        raise DataError(f"{out}: --format {fmt.name} writes a dataset folder; give --out a folder path")
    if not as_file and not 0.0 <= test_share < 1.0:
        raise DataError(f"--test-share must be in [0, 1), got {test_share}")
    prov = collect_provenance(lake, run_id, parts, license_id=license_id)
    require_length_gate(prov.pair_counts, run_id)
    shards = plan_shards(lake, parts, SHARD_ROWS)
    result: dict[str, Any] = {"path": str(out), "format": fmt.name, "contract_hash": prov.contract_hash}
    read = partial(source_batches, paired_only=not fmt.unpaired, prompt_messages=fmt.prompt_messages,
                   turns=multi_turn_prompts(lake, run_id) if fmt.prompt_messages else None)
    if as_file:
        result["rows"] = _write_file(out, fmt, prefetch(read(lake, run_id, shards)), prov)
        result["sha256"] = file_sha256(out)
    else:
        key = load_operator_key(lake)
        groups = [shards] if fmt.whole_split else [[shard] for shard in shards]
        sources = [partial(read, lake, run_id, group) for group in groups]
        folder = write_dataset_folder(out, fmt, sources, prov, key, test_share=test_share, seed=seed)
        result.update(rows=sum(s.rows for s in folder.splits), splits={s.name: s.rows for s in folder.splits},
                      manifest_sha256=folder.manifest_sha256, key_id=folder.key_id)
    AuditLog(lake).append("export_written", str(out), {"run_id": run_id, **{
        k: v for k, v in result.items() if k != "path"}})
    return result


def verify_folder(folder: str | os.PathLike[str], public_keys: Mapping[str, Ed25519PublicKey] | None = None,
                  lake: Lake | None = None) -> VerifiedExport:
    """Verify a signed export folder against ``public_keys`` (default: the lake's operator keys).

    Raises:
        SignatureError: No trusted key is available, or the folder fails (see
            :func:`rlhf_core.optimize.export_manifest.verify_export`).
    """
    keys = public_keys if public_keys is not None else trusted_operator_keys(lake or Lake.from_env())
    if not keys:
        raise SignatureError(f"{folder}: no trusted operator key (no keys/operator.pub in the lake); "
                             "pass --pubkey with the exporting operator's public key")
    return verify_export(folder, keys)
