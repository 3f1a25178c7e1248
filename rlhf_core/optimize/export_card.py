"""The dataset card (``README.md``) of an export folder: Hugging Face YAML metadata + Markdown.

The YAML front matter is what the Hub and ``datasets.load_dataset(folder)`` read: ``configs``
(which files make which split), ``dataset_info.features`` (column types, in the Hub's feature
YAML), split sizes, ``license``, ``source_datasets``, plus the reward contract's own card
metadata and the export's provenance. The body (``templates/dataset_card.md.j2``) is for people:
splits, columns, pair policy, length bias, agreement with the annotators, source and license,
the contract card, input digests and how to verify the folder.

References:
    Hugging Face dataset cards. https://huggingface.co/docs/hub/datasets-cards
    Data files configuration. https://huggingface.co/docs/hub/datasets-manual-configuration
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from jinja2 import Environment, PackageLoader, StrictUndefined
from ruamel.yaml import YAML

from rlhf_core.contract.card import render_card
from rlhf_core.optimize.export_lengths import PairLengthBias
from rlhf_core.optimize.export_provenance import Provenance
from rlhf_core.optimize.formats import ExportFormat

__all__ = ["SplitFiles", "hf_features", "render_dataset_card", "size_category"]

_DTYPES = {pa.string(): "string", pa.large_string(): "large_string", pa.bool_(): "bool",
           pa.float32(): "float32", pa.float64(): "float64", pa.int32(): "int32", pa.int64(): "int64"}


@dataclass(frozen=True)
class SplitFiles:
    """One split as written: its name, rows, Arrow bytes, file bytes and folder-relative files."""

    name: str
    rows: int
    nbytes: int
    file_bytes: int
    files: tuple[str, ...]


def _feature(name: str, dtype: pa.DataType) -> dict[str, Any]:
    if pa.types.is_list(dtype) and pa.types.is_struct(dtype.value_type):
        return {"name": name, "list": [_feature(f.name, f.type) for f in dtype.value_type]}
    if pa.types.is_struct(dtype):
        return {"name": name, "struct": [_feature(f.name, f.type) for f in dtype]}
    if dtype not in _DTYPES:
        raise ValueError(f"column {name}: no Hugging Face feature for Arrow type {dtype}")
    return {"name": name, "dtype": _DTYPES[dtype]}


def hf_features(schema: pa.Schema) -> list[dict[str, Any]]:
    """``dataset_info.features`` of a schema, as the Hub's YAML list (``name`` + ``dtype`` /
    ``list`` / ``struct``), the form ``datasets.Features._to_yaml_list`` writes."""
    return [_feature(f.name, f.type) for f in schema]


def _type_text(feature: dict[str, Any]) -> str:
    """A feature in words: ``string``, ``float32``, ``list of {role: string, content: string}``."""
    if "dtype" in feature:
        return str(feature["dtype"])
    kind = "list" if "list" in feature else "struct"
    inner = ", ".join(f"{f['name']}: {_type_text(f)}" for f in feature[kind])
    return f"{kind} of {{{inner}}}" if kind == "list" else f"{{{inner}}}"


def size_category(rows: int) -> str:
    """The Hub's ``size_categories`` bucket of a row count (``n<1K``, ``1K<n<10K``, ...)."""
    names = ["n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M", "10M<n<100M", "100M<n<1B",
             "1B<n<10B", "10B<n<100B", "100B<n<1T", "n>1T"]
    return names[min(len(names) - 1, max(0, int(math.log10(rows)) - 2) if rows >= 1000 else 0)]


def _yaml(doc: dict[str, Any]) -> str:
    buf = io.StringIO()
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False
    yaml.width = 4096
    yaml.dump(doc, buf)
    return buf.getvalue()


def _contract_sections(prov: Provenance) -> tuple[dict[str, Any] | None, str]:
    """The contract card's front-matter block and its body with headings one level down."""
    if prov.contract is None:
        return None, ""
    text = render_card(prov.contract)
    _, front, body = text.split("---\n", 2)
    meta = YAML(typ="safe", pure=True).load(front) or {}
    demoted = "\n".join("#" + line if line.startswith("##") else line for line in body.strip().splitlines())
    return meta.get("reward_contract"), demoted


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def _num(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def render_dataset_card(fmt: ExportFormat, prov: Provenance, splits: Sequence[SplitFiles],
                        lengths: PairLengthBias, *, seed: int, test_share: float) -> str:
    """The folder's ``README.md``.

    Args:
        fmt: The export format.
        prov: The run's provenance (waits for the input digests).
        splits: The splits written, train first.
        lengths: Length figures of the exported pairs.
        seed: Split seed.
        test_share: Requested share of test prompts.

    Returns:
        Markdown starting with the YAML front matter.
    """
    contract_meta, contract_body = _contract_sections(prov)
    rows = sum(s.rows for s in splits)
    front: dict[str, Any] = {
        "license": prov.source.get("license", "unknown"),
        "pretty_name": f"{prov.run_id} preference data ({fmt.name})",
        "tags": ["rlhf", "preference", "reward-contract", "rlhf-contract-wizard", f"format-{fmt.name}"],
        "task_categories": ["text-generation"],
        "size_categories": [size_category(rows)],
    }
    if prov.source.get("dataset"):
        front["source_datasets"] = [prov.source["dataset"]]
    front["configs"] = [{"config_name": "default", "data_files": [
        {"split": s.name, "path": f"data/{s.name}-*"} for s in splits]}]
    front["dataset_info"] = {
        "features": hf_features(fmt.schema),
        "splits": [{"name": s.name, "num_bytes": s.nbytes, "num_examples": s.rows} for s in splits],
        "download_size": sum(s.file_bytes for s in splits),
        "dataset_size": sum(s.nbytes for s in splits),
    }
    if contract_meta is not None:
        front["reward_contract"] = contract_meta
    front["rlhf_wizard"] = {
        "run_id": prov.run_id, "contract_hash": prov.contract_hash, "format": fmt.name,
        "version": prov.project_version, "split": {"seed": seed, "test_share": test_share},
        "manifest": "manifest.json",
    }
    env = Environment(loader=PackageLoader("rlhf_core.optimize", "templates"), autoescape=False,
                      undefined=StrictUndefined, keep_trailing_newline=True)
    env.filters["cell"] = lambda text: str(text).replace("|", "\\|").replace("\n", " ")
    body = env.get_template("dataset_card.md.j2").render(
        title=f"Preference data of run {prov.run_id} ({fmt.name})", version=prov.project_version,
        run_id=prov.run_id, run=prov.run, contract=prov.contract, contract_hash=prov.contract_hash,
        format=fmt, splits=splits, seed=seed, test_share=test_share,
        columns=[{"name": f["name"], "type": _type_text(f)} for f in hf_features(fmt.schema)],
        policy=prov.pair_policy(), lengths=lengths, agreement=prov.agreement, source=prov.source,
        ingest=(prov.ingest or {}).get("source_rows"), contract_card=contract_body,
        inputs=prov.inputs.result() if prov.inputs is not None else [], notes=prov.notes,
        pct=_pct, num=_num,
    )
    while "\n\n\n" in body:
        body = body.replace("\n\n\n", "\n\n")
    return f"---\n{_yaml(front)}---\n\n{body}"
