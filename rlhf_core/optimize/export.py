"""Export a run's DPO pairs from the lake to JSON Lines or Parquet, atomically, audited."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from rlhf_core.errors import DataError
from rlhf_core.lake.catalog import Table
from rlhf_core.lake.fs import atomic_write
from rlhf_core.lake.store import Lake
from rlhf_core.security.audit import AuditLog


def export_pairs(run_id: str, out: str | Path, lake: Lake | None = None) -> dict[str, Any]:
    """Write run ``run_id``'s ``pairs`` to ``out`` (``.jsonl`` or ``.parquet``).

    The contract hash and run id travel in every row and, for Parquet, in the file metadata.

    Raises:
        DataError: The run has no pairs, or the suffix is not supported.
    """
    lake = lake or Lake.from_env()
    if run_id not in lake.list_runs(Table.PAIRS):
        raise DataError(f"run {run_id} has no DPO pairs in {lake.root}; run `rlhf-wizard optimize "
                        f"{run_id} --contract …` first")
    table = lake.read_table(Table.PAIRS, run_id=run_id)
    table = table.set_column(table.schema.get_field_index("run_id"), "run_id", pa.array(
        [run_id] * table.num_rows, pa.string()))
    hashes = set(table.column("contract_hash").to_pylist())
    contract_hash = hashes.pop() if len(hashes) == 1 else ",".join(sorted(hashes))
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    fs = pafs.LocalFileSystem()
    if out.suffix == ".jsonl":
        def write(tmp: str) -> None:
            with fs.open_output_stream(tmp) as stream:
                for row in table.to_pylist():
                    stream.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
    elif out.suffix == ".parquet":
        meta = {b"rlhf_wizard.contract_hash": contract_hash.encode(), b"rlhf_wizard.run_id": run_id.encode()}
        stamped = table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})

        def write(tmp: str) -> None:
            pq.write_table(stamped, tmp, filesystem=fs, compression="zstd")
    else:
        raise DataError(f"{out}: unsupported export format {out.suffix!r}; use .jsonl or .parquet")
    atomic_write(fs, out.as_posix(), write)
    AuditLog(lake).append("export_written", str(out), {"run_id": run_id, "rows": table.num_rows,
                                                       "contract_hash": contract_hash})
    return {"path": str(out), "rows": table.num_rows, "contract_hash": contract_hash}
