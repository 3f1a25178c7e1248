"""Trainer formats of an export: how a run's ``pairs`` columns map onto each trainer's columns.

Every format is a pure Arrow function from a slice of ``pairs`` (the :data:`PAIRS_SCHEMA`
columns plus ``contract_hash``, ``run_id`` and ``_row``, the pair's position in the run) to the
trainer's columns, with one explicit output schema. Row-wise formats convert batch by batch
(exports stream); ``kto`` needs a whole split at once (it merges responses across pairs).

| format | columns (types) | documented at |
|---|---|---|
| ``trl`` | prompt, chosen, rejected (string) + ids, rewards, margin, strategy, the pair policy's columns (weight, kind, KTO labels, disagrees), contract_hash, run_id | TRL dataset formats, standard preference |
| ``trl-conversational`` | prompt = every turn before the response (``prompt_messages``), chosen / rejected = [{role: assistant}] | TRL dataset formats, conversational preference |
| ``kto`` | prompt, completion (string), label (bool) | TRL dataset formats, unpaired preference |
| ``reward`` | prompt, chosen, rejected (string), margin (float32) | TRL RewardTrainer (optional ``margin``) |
| ``openrlhf`` | prompt, chosen, rejected (string), margin (float32) | OpenRLHF ``reward_dataset.py`` (``--prompt_key prompt``) |
| ``nemo`` | prompt, chosen_response, rejected_response (string), chosen_reward, rejected_reward (float32) | NeMo-Aligner DPO guide |
| ``rewardbench`` | prompt, chosen, chosen_model, rejected, rejected_model, subset (string), id (int64) | allenai/reward-bench card |
| ``hf`` | as ``trl``, as a Hugging Face dataset folder only | Hugging Face dataset cards |

KTO rule: each pair contributes its chosen response with ``label = True`` and its rejected one
with ``label = False`` (the stored ``chosen_desirable`` / ``rejected_desirable``); the
``unpaired`` rows of ``ties: kto`` contribute both tied responses with the label the pair policy
gave them (desirable when allowed and at or above ``reward_threshold``), and a tie kept as a pair
(``ties: keep``) contributes nothing. A response in several pairs is one example (deduplicated by
response id, first occurrence order). A response labelled both ways (possible with
``all_above_margin``) has no unambiguous label and is left out. Every other format skips the
``unpaired`` rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rlhf_core.errors import DataError
from rlhf_core.lake.catalog import PAIRS_SCHEMA
from rlhf_core.lake.schemas import MESSAGE_TYPE, PROMPT_MESSAGES_FIELD, user_turns
from rlhf_core.optimize.pair_rows import complete_pairs

__all__ = ["FORMATS", "MESSAGE", "SOURCE_SCHEMA", "ExportFormat", "get_format"]

SOURCE_SCHEMA = PAIRS_SCHEMA.append(pa.field("contract_hash", pa.string())).append(
    pa.field("run_id", pa.string())).append(pa.field("_row", pa.int64()))
"""What every converter receives: the stored pairs, the run id and the pair's position."""

MESSAGE = MESSAGE_TYPE
"""One chat message, ``{"role": ..., "content": ...}`` (TRL's conversational format)."""

_TRL_DOCS = "https://huggingface.co/docs/trl/dataset_formats"


@dataclass(frozen=True)
class ExportFormat:
    """One trainer format.

    Attributes:
        name: The ``--format`` value.
        trainer: Who reads it, in words (shown on the dataset card).
        doc_url: Where its columns are documented.
        schema: Output columns and Arrow types, in order.
        folder_file: File type of the data files in a dataset folder (``parquet`` or ``jsonl``).
        convert: Source slice (:data:`SOURCE_SCHEMA`) -> output table in :attr:`schema`.
        whole_split: ``convert`` needs every row of a split at once (no streaming).
        folder_only: Only written as a dataset folder (``hf``).
        rule: How the pairs become rows, in one sentence (for the card).
        prompt_messages: ``convert`` reads the prompt's turns: the source slice carries a
            ``prompt_messages`` column (null where the prompt is one user turn, its text).
        unpaired: ``convert`` also takes the ``unpaired`` rows of ``ties: kto`` (other formats
            never see them).
    """

    name: str
    trainer: str
    doc_url: str
    schema: pa.Schema
    folder_file: str
    convert: Callable[[pa.Table], pa.Table]
    whole_split: bool = False
    folder_only: bool = False
    rule: str = "one row per pair"
    prompt_messages: bool = False
    unpaired: bool = False


def _messages(role: str, texts: pa.ChunkedArray | pa.Array) -> pa.ListArray:
    """Each text as a one-message conversation ``[{"role": role, "content": text}]``."""
    content = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
    n = len(content)
    messages = pa.StructArray.from_arrays([pa.repeat(role, n), content], fields=list(MESSAGE))
    return pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32)), messages)


def _select(schema: pa.Schema, columns: dict[str, pa.Array | pa.ChunkedArray]) -> pa.Table:
    return pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)


_TRL_SCHEMA = SOURCE_SCHEMA.remove(SOURCE_SCHEMA.get_field_index("_row"))


def _trl(pairs: pa.Table) -> pa.Table:
    return pairs.select(_TRL_SCHEMA.names).cast(_TRL_SCHEMA)


_CONVERSATIONAL_SCHEMA = pa.schema([(name, pa.list_(MESSAGE)) for name in ("prompt", "chosen", "rejected")])


def _conversational(pairs: pa.Table) -> pa.Table:
    prompt = user_turns(pairs["prompt"])
    if PROMPT_MESSAGES_FIELD.name in pairs.column_names:  # multi-turn prompts keep every turn
        turns = pairs[PROMPT_MESSAGES_FIELD.name].combine_chunks()
        prompt = pc.if_else(pc.is_null(turns), prompt, turns)
    return _select(_CONVERSATIONAL_SCHEMA, {
        "prompt": prompt,
        "chosen": _messages("assistant", pairs["chosen"]),
        "rejected": _messages("assistant", pairs["rejected"]),
    })


_KTO_SCHEMA = pa.schema([("prompt", pa.string()), ("completion", pa.string()), ("label", pa.bool_())])


def _kto(pairs: pa.Table) -> pa.Table:
    pairs = complete_pairs(pairs)  # pairs written before the pair policy: chosen true, rejected false
    order = pc.multiply(pairs["_row"], 2)
    sides = pa.concat_tables([
        pa.table({"response_id": pairs["chosen_id"], "prompt": pairs["prompt"],
                  "completion": pairs["chosen"], "label": pairs["chosen_desirable"], "order": order}),
        pa.table({"response_id": pairs["rejected_id"], "prompt": pairs["prompt"],
                  "completion": pairs["rejected"], "label": pairs["rejected_desirable"],
                  "order": pc.add(order, 1)}),
    ])
    sides = sides.filter(pc.is_valid(sides["label"]))  # a kept tie's sides have no KTO label
    merged = sides.group_by("response_id", use_threads=False).aggregate([
        ("prompt", "first"), ("completion", "first"), ("label", "all"), ("label", "any"),
        ("order", "min"),
    ])
    kept = merged.filter(pc.equal(merged["label_all"], merged["label_any"])).sort_by("order_min")
    return _select(_KTO_SCHEMA, {"prompt": kept["prompt_first"], "completion": kept["completion_first"],
                                 "label": kept["label_all"]})


_MARGIN_SCHEMA = pa.schema([("prompt", pa.string()), ("chosen", pa.string()), ("rejected", pa.string()),
                            ("margin", pa.float32())])


def _with_margin(pairs: pa.Table) -> pa.Table:
    return pairs.select(_MARGIN_SCHEMA.names).cast(_MARGIN_SCHEMA)


_NEMO_SCHEMA = pa.schema([("prompt", pa.string()), ("chosen_response", pa.string()),
                          ("rejected_response", pa.string()), ("chosen_reward", pa.float32()),
                          ("rejected_reward", pa.float32())])


def _nemo(pairs: pa.Table) -> pa.Table:
    return _select(_NEMO_SCHEMA, {"prompt": pairs["prompt"], "chosen_response": pairs["chosen"],
                                  "rejected_response": pairs["rejected"],
                                  "chosen_reward": pairs["chosen_reward"],
                                  "rejected_reward": pairs["rejected_reward"]})


_REWARDBENCH_SCHEMA = pa.schema([("prompt", pa.string()), ("chosen", pa.string()), ("chosen_model", pa.string()),
                                 ("rejected", pa.string()), ("rejected_model", pa.string()),
                                 ("subset", pa.string()), ("id", pa.int64())])
UNKNOWN_MODEL = "unknown"
"""``chosen_model`` / ``rejected_model`` of RewardBench rows: the lake does not record which model
wrote a response (the card's schema says "where applicable")."""


def _rewardbench(pairs: pa.Table) -> pa.Table:
    unknown = pa.repeat(UNKNOWN_MODEL, pairs.num_rows)
    return _select(_REWARDBENCH_SCHEMA, {"prompt": pairs["prompt"], "chosen": pairs["chosen"],
                                         "chosen_model": unknown, "rejected": pairs["rejected"],
                                         "rejected_model": unknown, "subset": pairs["strategy"],
                                         "id": pairs["_row"]})


FORMATS: dict[str, ExportFormat] = {f.name: f for f in (
    ExportFormat("trl", "TRL DPOTrainer (standard preference, explicit prompt)", _TRL_DOCS,
                 _TRL_SCHEMA, "parquet", _trl,
                 rule="one row per pair; ids, rewards, margin, strategy, contract hash and run id ride along"),
    ExportFormat("trl-conversational", "TRL DPOTrainer (conversational preference)", _TRL_DOCS,
                 _CONVERSATIONAL_SCHEMA, "parquet", _conversational, prompt_messages=True,
                 rule="one row per pair; the prompt as its conversation (every turn before the response), "
                      "each response as an assistant message"),
    ExportFormat("kto", "TRL KTOTrainer (unpaired preference)", _TRL_DOCS, _KTO_SCHEMA, "parquet", _kto,
                 whole_split=True, unpaired=True,
                 rule="chosen responses labelled true, rejected false, one example per response id; "
                      "responses both chosen and rejected are left out; tied responses (ties: kto) "
                      "labelled true when allowed and at or above the contract's reward_threshold"),
    ExportFormat("reward", "TRL RewardTrainer (preference with margin)",
                 "https://huggingface.co/docs/trl/reward_trainer", _MARGIN_SCHEMA, "parquet", _with_margin,
                 rule="one row per pair; margin = chosen reward - rejected reward (contract units)"),
    ExportFormat("openrlhf", "OpenRLHF reward model / DPO (--prompt_key prompt --chosen_key chosen "
                 "--rejected_key rejected)",
                 "https://github.com/OpenRLHF/OpenRLHF/blob/main/openrlhf/datasets/reward_dataset.py",
                 _MARGIN_SCHEMA, "jsonl", _with_margin,
                 rule="one row per pair; margin = chosen reward - rejected reward (contract units)"),
    ExportFormat("nemo", "NeMo-Aligner DPO / RPO",
                 "https://github.com/NVIDIA/NeMo-Aligner/blob/main/docs/user-guide/dpo.rst",
                 _NEMO_SCHEMA, "jsonl", _nemo,
                 rule="one row per pair; rewards are the contract's (used by RPO)"),
    ExportFormat("rewardbench", "RewardBench-style evaluation set",
                 "https://huggingface.co/datasets/allenai/reward-bench", _REWARDBENCH_SCHEMA, "parquet",
                 _rewardbench,
                 rule="one row per pair; id = pair position in the run, subset = pairing strategy, "
                      f"models '{UNKNOWN_MODEL}'"),
    ExportFormat("hf", "Hugging Face dataset folder (TRL standard preference + metadata)",
                 "https://huggingface.co/docs/hub/datasets-cards", _TRL_SCHEMA, "parquet", _trl,
                 folder_only=True,
                 rule="one row per pair; ids, rewards, margin, strategy, contract hash and run id ride along"),
)}
"""Every export format by ``--format`` name."""


def get_format(name: str) -> ExportFormat:
    """The format called ``name``.

    Raises:
        DataError: For an unknown name (the message lists the known ones).
    """
    try:
        return FORMATS[name]
    except KeyError:
        raise DataError(f"unknown export format {name!r}; choose one of {', '.join(FORMATS)}") from None
