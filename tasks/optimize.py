"""Optimisation tasks over a run's scores: Pareto front, constrained KL policy, DPO pairs."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from prefect import task
from prefect.artifacts import create_table_artifact

from rlhf_core.contract import load_contract
from rlhf_core.contract.bounds import utility_bounds
from rlhf_core.lake.catalog import PAIRS_SCHEMA, SELECTIONS_SCHEMA, Table
from rlhf_core.lake.store import Lake
from rlhf_core.optimize import (
    KLPolicyConfig,
    PairPolicy,
    build_pairs,
    compute_pareto,
    optimize_policy,
)
from rlhf_core.optimize.length_gate import length_gate
from rlhf_core.scoring.schema import quantifier_columns
from tasks.policies import IO_RETRY_OPTIONS


def _save_json(lake: Lake, run_id: str, name: str, value: dict[str, Any]) -> None:
    lake.write_file_atomic(f"artifacts/{run_id}/{name}.json", json.dumps(value, default=str, indent=2).encode())


@task(name="compute-pareto-front", **IO_RETRY_OPTIONS)
def compute_pareto_front(contract_path: str, run_id: str, lake_root: str) -> dict[str, Any]:
    """Evaluate the stakeholder weight simplex over the run's scores; write ``pareto``."""
    lake = Lake(lake_root)
    program = load_contract(contract_path).program
    table, summary = compute_pareto(
        lake.read_run(Table.SCORES, run_id), [s.name for s in program.stakeholders],
        contract_weights=[s.weight for s in program.stakeholders],
        prompt_clauses=quantifier_columns(program),
        utility_floor=[iv.lo for iv in utility_bounds(program)],
    )
    lake.write_partition(Table.PARETO, run_id, table, table.schema)
    _save_json(lake, run_id, "pareto", summary)
    is_contract = pc.equal(table["kind"], "contract")
    front = pa.concat_tables([table.filter(is_contract),
                              table.filter(pc.and_(table["on_front"], pc.invert(is_contract))).slice(0, 199)])
    create_table_artifact(
        table=[{k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}
               for row in front.to_pylist()],
        key=f"pareto-{''.join(c if c.isalnum() else '-' for c in run_id.lower())}"[:100],
        description=f"Pareto front of run {run_id} ({summary['n_front']} points; the contract's point and up to 199 of the front)",
    )
    return summary


@task(name="solve-kl-policy", **IO_RETRY_OPTIONS)
def solve_kl_policy(contract_path: str, run_id: str, lake_root: str, cost_column: str,
                    budget: float | None) -> dict[str, Any]:
    """Constrained KL-regularised policy per prompt (β from the contract); write ``selections``.

    A ``budget`` of None means midway between the cheapest achievable expected cost and the
    reference policy's (always feasible; see :func:`rlhf_core.optimize.optimize_policy`).
    """
    lake = Lake(lake_root)
    contract = load_contract(contract_path)
    program = contract.program
    scores = lake.read_run(Table.SCORES, run_id)
    cost = pc.cast(scores[cost_column], pa.float32())
    scores = scores.set_column(scores.schema.get_field_index(cost_column), cost_column, cost)
    selections, summary = optimize_policy(
        scores, cost_column, budget, KLPolicyConfig(beta=contract.spec.selection.kl_beta),
        prompt_clauses=quantifier_columns(program),
    )
    lake.write_partition(Table.SELECTIONS, run_id, selections.cast(SELECTIONS_SCHEMA), SELECTIONS_SCHEMA)
    summary = {**summary, "cost_column": cost_column, "beta": contract.spec.selection.kl_beta}
    _save_json(lake, run_id, "kl_policy", summary)
    return summary


@task(name="export-dpo-pairs", **IO_RETRY_OPTIONS)
def export_dpo_pairs(contract_path: str, run_id: str, lake_root: str) -> dict[str, Any]:
    """Pairs under the contract's pair policy; ``pairs`` stamped with the hash; the length gate's
    verdict stored with the counts (a failed gate stops the export, not the run)."""
    lake = Lake(lake_root)
    contract = load_contract(contract_path)
    policy = PairPolicy.from_selection(contract.spec.selection)
    labelled = (lake.read_run(Table.PREFERENCES, run_id)
                if policy.pairing == "human" and lake.part_paths(Table.PREFERENCES, run_id) else None)
    built = build_pairs(
        lake.read_run(Table.SCORES, run_id),
        lake.read_run(Table.RESPONSES, run_id, columns=["response_id", "prompt", "response"]),
        policy, preferences=labelled, prompt_clauses=quantifier_columns(contract.program),
        contract_hash=contract.hash, run_id=run_id,
    )
    pairs = built.table.drop_columns(["run_id"])
    schema = PAIRS_SCHEMA.append(pa.field("contract_hash", pa.string()))
    path = lake.write_partition(Table.PAIRS, run_id, pairs, schema,
                                metadata={"rlhf_wizard.contract_hash": contract.hash})
    gate = length_gate(pairs, built.lengths, policy.max_chosen_longer, run_id)
    _save_json(lake, run_id, "pairs", {**built.counts, "policy": policy.as_dict(), "length_gate": gate})
    return {**built.counts, "length_gate": gate, "path": path}
