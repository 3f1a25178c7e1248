"""The table catalog: every lake table named once, with its schema, partitioning and quality suite.

Code refers to a table through :class:`Table` (a ``StrEnum``, so a member is also its name and
works wherever the lake takes a name) and to its layout through :func:`spec`. A schema is
defined here when it is fixed; tables whose columns depend on the dataset or the contract say
which function builds their schema (``responses`` and ``preferences``:
:mod:`rlhf_core.lake.schemas`; ``scores``: :func:`rlhf_core.scoring.schema.scores_schema`;
``pareto``: one ``w_`` / ``u_`` column per stakeholder).

Every table is partitioned by ``run_id`` (hive layout, one directory per run), written as staged
parts and committed atomically (:mod:`rlhf_core.lake.store`). The audit log is not a table — it is
an append-only hash-chained file — but its location and columns are named here too, so the
warehouse can expose it without depending on the security package.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import pyarrow as pa

from rlhf_core.lake.names import PARTITION_KEY

__all__ = [
    "AGREEMENT_SCHEMA", "AUDIT_COLUMNS", "AUDIT_LOG_PARTS", "DISAGREEMENTS_SCHEMA", "METRICS_SCHEMA", "MODEL_SCHEMA", "PAIRS_SCHEMA",
    "PLANS_SCHEMA", "QUARANTINE_SCHEMA", "RUNS_SCHEMA", "SCORE_CACHE_SCHEMA",
    "SCORE_QUARANTINE_SCHEMA", "SELECTIONS_SCHEMA", "TABLES", "Table", "TableSpec", "spec",
]


class Table(StrEnum):
    """Every lake table, by name (a member is a ``str`` equal to the name, and prints as it)."""

    def __repr__(self) -> str:
        return repr(self.value)

    RUNS = "runs"
    RESPONSES = "responses"
    PREFERENCES = "preferences"
    QUARANTINE = "quarantine"
    SCORES = "scores"
    SCORE_CACHE = "score_cache"
    SCORE_QUARANTINE = "score_quarantine"
    SELECTIONS = "selections"
    PARETO = "pareto"
    PAIRS = "pairs"
    REWARD_MODEL_CANDIDATES = "reward_model_candidates"
    REWARD_MODEL_METRICS = "reward_model_metrics"
    REWARD_MODELS = "reward_models"
    PLANS = "plans"
    AGREEMENT = "agreement"
    DISAGREEMENTS = "disagreements"


_TS = pa.timestamp("us", tz="UTC")

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("source_line", pa.int64(), nullable=True),
        pa.field("table", pa.string(), nullable=False),
        pa.field("rule", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("record", pa.string(), nullable=False),
        pa.field("ingest_run", pa.string(), nullable=False),
    ]
)
"""``quarantine``: ``table`` is ``source`` for unreadable source rows, else the checked table."""

RUNS_SCHEMA = pa.schema([
    pa.field("flow", pa.string(), nullable=False),
    pa.field("contract_hash", pa.string()),
    pa.field("parameters", pa.string(), nullable=False),
    pa.field("package_versions", pa.string(), nullable=False),
    pa.field("started_at", _TS, nullable=False),
    pa.field("ended_at", _TS),
    pa.field("status", pa.string(), nullable=False),
    pa.field("row_counts", pa.string(), nullable=False),
    pa.field("error", pa.string()),
], metadata={"description": "one record per run id; JSON columns hold parameters, versions, counts"})

SCORE_CACHE_SCHEMA = pa.schema([
    pa.field("cache_key", pa.string(), nullable=False),
    pa.field("score", pa.float64(), nullable=False),
    pa.field("endpoint", pa.string(), nullable=False),
    pa.field("model_id", pa.string(), nullable=False),
    pa.field("scored_at", _TS, nullable=False),
])
"""One ``score_cache`` part: remote scores by request content key (``run_id`` is the partition)."""

SCORE_QUARANTINE_SCHEMA = pa.schema([
    pa.field("row_index", pa.int64(), nullable=False),
    pa.field("row_id", pa.string(), nullable=True),
    pa.field("cache_key", pa.string(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),
    pa.field("endpoint", pa.string(), nullable=False),
])
"""Rows whose remote-scoring batch came back unusable, one per input row, with the reason
(``row_id``: the value of the endpoint config's ``id_column`` when the table has it)."""

SELECTIONS_SCHEMA = pa.schema([
    pa.field("prompt_id", pa.string(), nullable=False),
    pa.field("response_id", pa.string(), nullable=False),
    pa.field("policy_prob", pa.float32(), nullable=False),
    pa.field("best_under_contract", pa.bool_(), nullable=False),
    pa.field("best_under_policy", pa.bool_(), nullable=False),
])
"""Per response, the constrained KL policy's probability and the best-of-n picks under the
contract's reward and under the optimised policy."""

PAIRS_SCHEMA = pa.schema([
    ("prompt", pa.string()),
    ("chosen", pa.string()),
    ("rejected", pa.string()),
    ("prompt_id", pa.string()),
    ("chosen_id", pa.string()),
    ("rejected_id", pa.string()),
    ("chosen_reward", pa.float32()),
    ("rejected_reward", pa.float32()),
    ("margin", pa.float32()),
    ("strategy", pa.string()),
    ("weight", pa.float32()),
    ("kind", pa.string()),
    ("chosen_desirable", pa.bool_()),
    ("rejected_desirable", pa.bool_()),
    ("disagrees", pa.bool_()),
])
"""DPO pairs in TRL's standard preference format plus ids, rewards, margin and strategy, and the
pair policy's columns (:mod:`rlhf_core.optimize.pair_rows`): ``weight``; ``kind`` (``pair``, a
kept ``tie`` with margin 0, or ``unpaired``: two tied responses exported only as KTO examples);
the KTO label of each side (``chosen_desirable`` / ``rejected_desirable``, null where a side has
none); ``disagrees`` (a labelled pair the contract's reward ranks the other way)."""

MODEL_SCHEMA = pa.schema([
    ("criterion", pa.string()),
    ("model_id", pa.string()),
    ("hidden", pa.int32()),
    ("l2", pa.float64()),
    ("featurizer", pa.string()),
    ("numeric_columns", pa.list_(pa.string())),
    ("dense_start", pa.int32()),
    ("std_mean", pa.list_(pa.float32())),
    ("std_scale", pa.list_(pa.float32())),
    ("param_names", pa.list_(pa.string())),
    ("param_shapes", pa.list_(pa.list_(pa.int32()))),
    ("param_values", pa.list_(pa.list_(pa.float32()))),
])
"""One fitted Bradley–Terry reward model per row (head parameters flattened)."""

METRICS_SCHEMA = pa.schema([
    ("criterion", pa.string()),
    ("l2", pa.float64()),
    ("seed", pa.int32()),
    ("fold", pa.int32()),
    ("split", pa.string()),
    ("accuracy", pa.float64()),
    ("log_loss", pa.float64()),
    ("ece", pa.float64()),
    ("n_pairs", pa.int64()),
    ("steps", pa.int32()),
    ("converged", pa.bool_()),
])
"""Cross-validation metrics of every reward-model candidate (criterion × l2 × seed × fold)."""

PLANS_SCHEMA = pa.schema([
    pa.field("project", pa.string(), nullable=False),
    pa.field("activity", pa.string(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),
    pa.field("start", pa.int32(), nullable=False),
    pa.field("finish", pa.int32(), nullable=False),
    pa.field("duration", pa.int32(), nullable=False),
    pa.field("slack", pa.int32(), nullable=False),
    pa.field("critical", pa.bool_(), nullable=False),
    pa.field("makespan", pa.int32(), nullable=False),
    pa.field("algorithm", pa.string(), nullable=False),
    pa.field("seed", pa.int64(), nullable=False),
    pa.field("schedules", pa.int64(), nullable=False),
])
"""One verified campaign schedule: a row per activity."""

AGREEMENT_SCHEMA = pa.schema([
    pa.field("criterion", pa.string(), nullable=False),
    pa.field("section", pa.string(), nullable=False),
    pa.field("name", pa.string(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),
    pa.field("group", pa.string()),
    pa.field("n_pairs", pa.int64(), nullable=False),
    pa.field("n_ties", pa.int64(), nullable=False),
    pa.field("accuracy", pa.float64()),
    pa.field("ci_low", pa.float64()),
    pa.field("ci_high", pa.float64()),
    pa.field("tie_agreement", pa.float64()),
    pa.field("chosen_rate", pa.float64()),
    pa.field("rejected_rate", pa.float64()),
    pa.field("flagged", pa.bool_(), nullable=False),
])
"""Agreement with the annotators, per criterion: ``section`` is ``signal`` (the reward, each
utility, score and input column, the length), ``length`` (reward on chosen-longer / -shorter
pairs, in ``group``), ``group`` (reward per subset and the subsets' mean) or ``clause`` (how often
a clause flags chosen vs rejected responses; ``flagged`` when chosen more often)."""

DISAGREEMENTS_SCHEMA = pa.schema([
    pa.field("criterion", pa.string(), nullable=False),
    pa.field("rank", pa.int32(), nullable=False),
    pa.field("pair_id", pa.string(), nullable=False),
    pa.field("prompt_id", pa.string(), nullable=False),
    pa.field("prompt", pa.string(), nullable=False),
    pa.field("chosen_id", pa.string(), nullable=False),
    pa.field("rejected_id", pa.string(), nullable=False),
    pa.field("chosen", pa.string(), nullable=False),
    pa.field("rejected", pa.string(), nullable=False),
    pa.field("chosen_reward", pa.float64(), nullable=False),
    pa.field("rejected_reward", pa.float64(), nullable=False),
    pa.field("margin_against", pa.float64(), nullable=False),
    pa.field("chosen_utilities", pa.string(), nullable=False),
    pa.field("rejected_utilities", pa.string(), nullable=False),
    pa.field("chosen_flags", pa.list_(pa.string()), nullable=False),
    pa.field("rejected_flags", pa.list_(pa.string()), nullable=False),
    pa.field("chosen_vetoed", pa.bool_(), nullable=False),
    pa.field("rejected_vetoed", pa.bool_(), nullable=False),
])
"""The pairs the reward ranks most strongly against the annotators' label, per criterion
(``rank`` 1 = largest ``margin_against`` = reward(rejected) − reward(chosen) > 0), with both
texts, their utilities (JSON) and the clauses each response violates."""

AUDIT_LOG_PARTS = ("audit", "audit.log")
"""The audit log's path under the lake root (an append-only JSON-lines hash chain)."""

AUDIT_COLUMNS = {
    "seq": "BIGINT", "timestamp": "TIMESTAMPTZ", "kind": "VARCHAR", "actor": "VARCHAR",
    "subject": "VARCHAR", "details": "JSON", "prev_hash": "VARCHAR", "key_id": "VARCHAR",
    "hash": "VARCHAR", "signature": "VARCHAR",
}
"""Columns of an audit entry as DuckDB types (the warehouse's ``audit`` view)."""


@dataclass(frozen=True)
class TableSpec:
    """One lake table's layout.

    Attributes:
        table: The table.
        description: What one row is.
        schema: The fixed schema, or None when the columns depend on the dataset or contract.
        schema_source: For a schema of None, the function that builds it.
        quality_suite: The quality suite (``rlhf_core.quality`` YAML rules) that checks it.
        partition_key: Hive partition column (every table: ``run_id``).
        written_by: The module that owns the table's write path.
    """

    table: Table
    description: str
    written_by: str
    schema: pa.Schema | None = None
    schema_source: str = ""
    quality_suite: str | None = None
    partition_key: str = PARTITION_KEY

    @property
    def name(self) -> str:
        """The table's name (its directory under ``<root>/lake``)."""
        return self.table.value


TABLES: dict[Table, TableSpec] = {s.table: s for s in (
    TableSpec(Table.RUNS, "one record per run id: flow, contract, parameters, versions, outcome",
              "rlhf_core.lake.runs", schema=RUNS_SCHEMA),
    TableSpec(Table.RESPONSES, "one normalised response per row (ids, prompt, text, attributes)",
              "rlhf_core.ingest.write", schema_source="rlhf_core.lake.schemas.responses_schema",
              quality_suite="responses"),
    TableSpec(Table.PREFERENCES, "one labelled pair per row (a label column per criterion)",
              "rlhf_core.ingest.write", schema_source="rlhf_core.lake.schemas.preferences_schema",
              quality_suite="preferences"),
    TableSpec(Table.QUARANTINE, "one rejected source or table row, with rule, reason and record",
              "rlhf_core.ingest.write", schema=QUARANTINE_SCHEMA, quality_suite="quarantine"),
    TableSpec(Table.SCORES, "one scored response: reward, utilities, clause flags, veto",
              "tasks.scoring", schema_source="rlhf_core.scoring.schema.scores_schema",
              quality_suite="scores"),
    TableSpec(Table.SCORE_CACHE, "remote reward-model scores by request key",
              "rlhf_core.remote.cache", schema=SCORE_CACHE_SCHEMA),
    TableSpec(Table.SCORE_QUARANTINE, "rows a remote scorer could not score, with the reason",
              "tasks.remote", schema=SCORE_QUARANTINE_SCHEMA),
    TableSpec(Table.SELECTIONS, "per response: KL-policy probability and best-of-n picks",
              "tasks.optimize", schema=SELECTIONS_SCHEMA),
    TableSpec(Table.PARETO, "one weight vector of the stakeholder simplex and its utilities",
              "tasks.optimize", schema_source="rlhf_core.optimize.pareto_table.compute_pareto"),
    TableSpec(Table.PAIRS, "one DPO pair (TRL standard preference format)",
              "tasks.optimize", schema=PAIRS_SCHEMA),
    TableSpec(Table.REWARD_MODEL_CANDIDATES, "every fitted reward-model candidate (+ seed)",
              "tasks.preference", schema=MODEL_SCHEMA.append(pa.field("seed", pa.int32()))),
    TableSpec(Table.REWARD_MODEL_METRICS, "cross-validation metrics of every candidate",
              "tasks.preference", schema=METRICS_SCHEMA),
    TableSpec(Table.REWARD_MODELS, "the selected reward model per criterion",
              "tasks.preference", schema=MODEL_SCHEMA),
    TableSpec(Table.PLANS, "one scheduled activity of a campaign plan",
              "rlhf_core.planner", schema=PLANS_SCHEMA),
    TableSpec(Table.AGREEMENT, "one agreement statistic of a signal, subset or clause",
              "rlhf_core.evaluate", schema=AGREEMENT_SCHEMA, quality_suite="agreement"),
    TableSpec(Table.DISAGREEMENTS, "one pair the reward ranks against the annotators",
              "rlhf_core.evaluate", schema=DISAGREEMENTS_SCHEMA, quality_suite="disagreements"),
)}


def spec(table: Table | str) -> TableSpec:
    """The catalog entry of ``table``.

    Raises:
        KeyError: ``table`` is not a catalogued table (names are listed in :class:`Table`).
    """
    try:
        return TABLES[Table(table)]
    except ValueError:
        raise KeyError(f"{table!r} is not a lake table; known tables: "
                       f"{', '.join(t.value for t in Table)}") from None
