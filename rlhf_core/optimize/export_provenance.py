"""Where an export comes from: the run, its contract, its source data and their digests.

Everything is read from the lake and the files the run named (the ``runs`` record's parameters,
``artifacts/<run>/quality-ingest.json`` and ``pairs.json``, the ``agreement`` table, the
contract file) and nothing is required: an export of pairs written without a pipeline run (a
notebook, a benchmark) still gets whatever provenance exists, and the card says what is missing.
Input digests (SHA-256 of the source data, the contract file and the lake's ``pairs`` parts) are
computed in background threads while the export writes its data files.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
import pyarrow.parquet as pq

from rlhf_core.contract import load_contract
from rlhf_core.contract.build import LoadedContract
from rlhf_core.errors import ContractError, LakeError
from rlhf_core.lake.catalog import Table
from rlhf_core.lake.runs import RunRecord, get_run
from rlhf_core.lake.store import Lake

__all__ = ["KNOWN_SOURCES", "PROJECT", "Provenance", "collect_provenance", "footer_metadata",
           "pairs_contract_hash", "schema_metadata"]

PROJECT = "rlhf-contract-wizard"
KNOWN_SOURCES: dict[str, tuple[str | None, str]] = {
    "pku_saferlhf": ("PKU-Alignment/PKU-SafeRLHF", "cc-by-nc-4.0"),
    "helpsteer": ("nvidia/HelpSteer", "cc-by-4.0"),
    "hh_rlhf": ("Anthropic/hh-rlhf", "mit"),
    "ultrafeedback": (None, "mit"),  # UltraFeedback and its binarized copies (H4, trl-lib): MIT
}
"""Adapter -> (Hugging Face dataset id, license id) of the public dataset it reads."""
_CHUNK = 1 << 22


def _sha256(filesystem: pafs.FileSystem, path: str) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with filesystem.open_input_stream(path) as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _local_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and not any(
        part.startswith(".") for part in p.relative_to(path).parts))


def _digest_inputs(lake: Lake, pairs_parts: list[str], data: str | None,
                   contract: str | None) -> list[dict[str, Any]]:
    local = pafs.LocalFileSystem()
    inputs: list[tuple[str, pafs.FileSystem, str, str]] = [
        ("lake:pairs", lake.fs, part, part.removeprefix(lake.base).lstrip("/")) for part in pairs_parts]
    for role, given in (("contract", contract), ("source", data)):
        if given is None:
            continue
        path = Path(given)
        found = _local_files(path) if path.exists() else []
        if not found:
            inputs.append((role, local, "", given))
        inputs += [(role, local, str(p), str(p)) for p in found]
    with ThreadPoolExecutor(max_workers=4) as pool:
        sums = list(pool.map(lambda item: _sha256(item[1], item[2]) if item[2] else (None, None), inputs))
    return [{"role": role, "path": shown, "sha256": sha, "bytes": size}
            for (role, _, _, shown), (sha, size) in zip(inputs, sums, strict=True)]


def _read_json(lake: Lake, relpath: str) -> dict[str, Any] | None:
    try:
        with lake.fs.open_input_stream(lake.path(relpath)) as stream:
            doc = json.loads(stream.read())
    except (FileNotFoundError, OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _project_version() -> str:
    try:
        return importlib_metadata.version(PROJECT)
    except importlib_metadata.PackageNotFoundError:
        return "unknown"


@dataclass
class Provenance:
    """What is known about a run's pairs.

    Attributes:
        run_id: The run.
        contract_hash: The hash the pairs carry.
        project_version: This package's version.
        run: The ``runs`` record (None when the pairs were written without a pipeline run).
        contract: The contract, when its file still has the pairs' hash (else None).
        notes: What could not be established, one line each (shown on the card).
        ingest: The ingest gate's summary (``quality-ingest.json``), if any.
        pair_counts: The pair selection's counts (``pairs.json``), if any.
        agreement: ``signal`` rows of the run's ``agreement`` table (empty if not evaluated).
        source: ``adapter``, ``path``, ``dataset`` (Hub id) and ``license`` of the source data.
        inputs: Future list of ``{role, path, sha256, bytes}`` (computed in the background).
    """

    run_id: str
    contract_hash: str
    project_version: str
    run: RunRecord | None = None
    contract: LoadedContract | None = None
    notes: list[str] = field(default_factory=list)
    ingest: dict[str, Any] | None = None
    pair_counts: dict[str, Any] | None = None
    agreement: list[dict[str, Any]] = field(default_factory=list)
    source: dict[str, Any] = field(default_factory=dict)
    inputs: Future[list[dict[str, Any]]] | None = None

    def pair_policy(self) -> dict[str, Any]:
        """The contract's pair policy (the settings that differ from the defaults besides
        ``pairing``, ``min_margin`` and ``seed``), the selection's counts and its length gate."""
        policy: dict[str, Any] = {}
        if self.contract is not None:
            from rlhf_core.optimize.pair_policy import PairPolicy

            chosen, default = PairPolicy.from_selection(self.contract.spec.selection).as_dict(), PairPolicy().as_dict()
            policy = {k: v for k, v in chosen.items()
                      if k in ("pairing", "min_margin", "seed") or v != default[k]}
        doc = self.pair_counts or {}
        counts = {k: v for k, v in doc.items() if isinstance(v, int) and not isinstance(v, bool)}
        return {**policy, "counts": counts or None, "length_gate": doc.get("length_gate")}

    def as_dict(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """JSON provenance for the manifest and the Parquet metadata (waits for the digests)."""
        contract = None
        if self.contract is not None:
            c = self.contract
            contract = {"name": c.spec.contract, "version": c.spec.version, "hash": c.hash,
                        "path": str(c.path) if c.path else None}
        run = None
        if self.run is not None:
            r = self.run
            run = {"flow": r.flow, "status": r.status, "started_at": r.started_at.isoformat(),
                   "ended_at": r.ended_at.isoformat() if r.ended_at else None,
                   "parameters": dict(r.parameters), "package_versions": dict(r.package_versions)}
        return {
            "run_id": self.run_id, "contract_hash": self.contract_hash,
            "project": {"name": PROJECT, "version": self.project_version},
            "contract": contract, "pair_policy": self.pair_policy(), "source": self.source,
            "ingest": (self.ingest or {}).get("source_rows"), "run": run,
            "inputs": self.inputs.result() if self.inputs is not None else [],
            "notes": self.notes, **(extra or {}),
        }


def schema_metadata(prov: Provenance, fmt_name: str) -> dict[str, str]:
    """Key-value metadata of exported Parquet schemas: contract hash, run, format, version."""
    return {"rlhf_wizard.contract_hash": prov.contract_hash, "rlhf_wizard.run_id": prov.run_id,
            "rlhf_wizard.format": fmt_name, "rlhf_wizard.version": prov.project_version}


def footer_metadata(prov: Provenance, fmt_name: str, extra: dict[str, Any] | None = None) -> dict[str, str]:
    """``rlhf_wizard.provenance``: the JSON provenance (with input digests) for the Parquet footer."""
    doc = prov.as_dict({"format": fmt_name, **(extra or {})})
    return {"rlhf_wizard.provenance": json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False)}


def pairs_contract_hash(lake: Lake, parts: list[str]) -> str:
    """The contract hash stored with the pairs (several joined by commas; ``unknown`` if none).

    Read from the row groups' min / max statistics when they prove the column constant (no
    data page is decoded), else from the column read as a dictionary.
    """
    hashes: set[str] = set()
    for part in parts:
        meta = pq.read_metadata(part, filesystem=lake.fs)
        names = meta.schema.to_arrow_schema().names
        if "contract_hash" not in names:
            continue
        index = names.index("contract_hash")
        stats = [meta.row_group(i).column(index).statistics for i in range(meta.num_row_groups)]
        if all(st is not None and st.has_min_max and st.min == st.max and st.null_count == 0 for st in stats):
            hashes |= {st.min for st in stats}
            continue
        column = pq.read_table(part, columns=["contract_hash"], read_dictionary=["contract_hash"],
                               filesystem=lake.fs).column(0).combine_chunks()
        hashes |= {h for h in column.dictionary.to_pylist() if h}
    return ",".join(sorted(hashes)) if hashes else "unknown"


def collect_provenance(lake: Lake, run_id: str, pairs_parts: list[str], *,
                       license_id: str | None = None) -> Provenance:
    """Gather the provenance of run ``run_id``'s pairs; input digests start in the background.

    Args:
        lake: The lake.
        run_id: The run.
        pairs_parts: The run's ``pairs`` part files.
        license_id: License of the exported data (default: the source dataset's, when the run's
            adapter reads a known public dataset; else ``unknown``).
    """
    prov = Provenance(run_id, pairs_contract_hash(lake, pairs_parts), _project_version())
    try:
        prov.run = get_run(lake, run_id)
    except LakeError:
        prov.notes.append(f"no `runs` record for {run_id}: the pairs were not written by a pipeline run")
    params = dict(prov.run.parameters) if prov.run else {}
    contract_path, data = params.get("contract"), params.get("data")
    if contract_path:
        try:
            loaded = load_contract(contract_path)
        except ContractError as exc:
            prov.notes.append(f"contract {contract_path} no longer loads ({str(exc).splitlines()[0]})")
        else:
            if loaded.hash == prov.contract_hash:
                prov.contract = loaded
            else:
                prov.notes.append(f"contract file {contract_path} now hashes to {loaded.hash}, not the "
                                  f"pairs' {prov.contract_hash}: its card is omitted")
    adapter = params.get("adapter")
    dataset, known_license = KNOWN_SOURCES.get(adapter or "", (None, None))
    prov.source = {"adapter": adapter, "path": data, "dataset": dataset,
                   "license": license_id or known_license or "unknown"}
    prov.ingest = _read_json(lake, f"artifacts/{run_id}/quality-ingest.json")
    prov.pair_counts = _read_json(lake, f"artifacts/{run_id}/pairs.json")
    if lake.part_paths(Table.AGREEMENT, run_id):
        rows = lake.read_run(Table.AGREEMENT, run_id).to_pylist()
        prov.agreement = [r for r in rows if r["section"] == "signal"]
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-digests")
    prov.inputs = pool.submit(_digest_inputs, lake, pairs_parts, data, contract_path)
    pool.shutdown(wait=False)
    return prov
