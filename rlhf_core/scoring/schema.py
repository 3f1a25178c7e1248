"""The ``scores`` table schema: ids, then the compiled contract's outputs (contract-dependent)."""

from __future__ import annotations

import pyarrow as pa

from rlhf_core.contract.program import ContractProgram

SCORE_ID_FIELDS: tuple[pa.Field, ...] = (
    pa.field("prompt_id", pa.string(), nullable=False),
    pa.field("response_id", pa.string(), nullable=False),
)


def scores_schema(program: ContractProgram) -> pa.Schema:
    """``prompt_id, response_id, reward, u_<stakeholder>…, v_<clause>…, veto, penalty,
    outside_bargaining_set, ensures_ok`` — the order and names of ``score_table``'s outputs."""
    return pa.schema(
        [
            *SCORE_ID_FIELDS,
            pa.field("reward", pa.float32(), nullable=False),
            *(pa.field(f"u_{s.name}", pa.float32(), nullable=False) for s in program.stakeholders),
            *(pa.field(f"v_{c.label}", pa.bool_(), nullable=False) for c in program.clauses),
            pa.field("veto", pa.bool_(), nullable=False),
            pa.field("penalty", pa.float32(), nullable=False),
            pa.field("outside_bargaining_set", pa.bool_(), nullable=False),
            pa.field("ensures_ok", pa.bool_(), nullable=False),
        ]
    )


def score_input_columns(program: ContractProgram) -> list[str]:
    """Columns a scoring shard reads: the ids and every declared input."""
    return list(dict.fromkeys([f.name for f in SCORE_ID_FIELDS] + [d.name for d in program.inputs]))


def text_input_columns(program: ContractProgram) -> list[str]:
    """Declared ``str`` inputs (read through ``len``): on an encrypted lake these are encrypted
    text columns, so reading them needs the lake's key."""
    return [d.name for d in program.inputs if d.dtype == "str"]


def quantifier_columns(program: ContractProgram) -> list[str]:
    """``v_<label>`` columns of the FORALL / EXISTS clauses (prompt-level flags)."""
    return [f"v_{c.label}" for c in program.clauses if c.kind in ("FORALL", "EXISTS")]
