"""Benchmark (issue 23): ``contract-pipeline`` end to end, stage by stage, vs a DuckDB-only reference.

Both start from the same generated dataset (normalised responses Parquet plus preference labels:
:func:`rlhf_core.ingest.generator.write_synthetic` with the demo annotators) and the demo contract,
in one run on the same machine.

**Pipeline.** ``contract-pipeline`` as ``rlhf-wizard run --dask-address`` runs it, minus the
``evaluate`` stage (the agreement bootstrap has its own benchmark, ``bench_agreement``): one
already started Prefect API (its start-up is excluded) and a running ``distributed.LocalCluster``
of 2 worker processes x 1 thread, after one 20,000-row warm-up run on the same cluster. Stage
times are the flow and task run spans Prefect recorded, read back from its API; the ingest's
quality-gate share is the gate's own timing (``artifacts/<run>/quality-ingest.json``); "Prefect
and other" is the wall time no stage span covers. Peak RSS: the flow process and each worker.

**Reference.** One DuckDB connection (2 threads, in its own process, so that its memory is not
the flow process's) doing the same work in SQL, each stage timed:
ingest = the ``responses`` and ``preferences`` suites' predicates (translated from the same suite
YAML, including later duplicates and pairs naming a quarantined response) and ``COPY`` of the
accepted rows, sorted by prompt and response, quarantined rows aside; score = ``COPY`` of the
contract's own SQL; quality = the ``scores`` suite's predicates in one aggregate; verify = the
same differential check (:func:`rlhf_core.scoring.verify.compare_scores_with_sql`) over its own
files; KL = the same default budget and λ (0 when the closed form meets the budget, else bisection
on log λ, one SQL pass per step), selections written; pairs = the contract's selection rule
(best allowed candidate vs the worst other one over the margin, the first in response order on
ties) with window functions, texts joined, written; report = the report's aggregates (score
statistics, histograms, reward/length correlations and deciles, quarantine counts; no charts, no
HTML). Not done: contract validation and signatures, the audit log, the ``runs`` table and
Prefect artifacts; GX validation; the Pareto front unless ``--reference-pareto`` (the same
weight lattice evaluated in SQL, ~8x the JAX stage at 1M rows), so totals are also given without
the optimise stage on either side.

**Checks** (after timing, not timed): row counts of every table; every score column of the
reference against the lake's (verify's tolerances); the reference's pair query run on the
pipeline's own scores returns exactly the pipeline's pairs; the KL budget and λ; the Pareto
points when computed.

Usage: ``python -m benchmarks.bench_pipeline_e2e [--quick] [--rows N] [--repeat N] [--large]
[--reference-pareto]`` (default: 1M and 10M rows; ``--quick``: 1M; ``--large``: also 100M, skipped
when the flow process's peak RSS per row so far says it would not fit; ``--repeat``: runs per size,
the fastest total of each side shown).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import resource
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import psutil
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
CONTRACT = REPO / "configs" / "contracts" / "demo.yaml"
RUN = "bench-e2e"
WARM_UP_ROWS = 20_000
# Stage -> Prefect flow (``flow:``) or task names whose run spans it sums; top-level stages first.
STAGES = {
    "validate + run record": ("flow:validate-contract", "start-run", "record-contract-use"),
    "ingest": ("flow:ingest-dataset",),
    "score": ("flow:score-responses",),
    "quality (scores suite)": ("check-scores-quality",),
    "verify (SQL differential)": ("verify-scores-with-sql",),
    "optimise": ("flow:optimize-policy",),
    "summary + run record": ("publish-score-summary", "emit-run-rates", "finish-run"),
    "report": ("flow:build-report",),
}
OPTIMISE = {"Pareto": "compute-pareto-front", "KL policy": "solve-kl-policy", "DPO pairs": "export-dpo-pairs"}


def _data(rows: int) -> Path:
    from rlhf_core.contract import load_contract
    from rlhf_core.ingest.generator import PREFERENCES_DIR, write_synthetic

    out = REPO / ".wizard" / "bench-data" / f"e2e-rows{rows}-seed1"
    if not any(out.glob("part-*.parquet")) or not (out / PREFERENCES_DIR).is_dir():
        write_synthetic(out, rows, seed=1, annotators=load_contract(CONTRACT).program)
    return out


# --- the pipeline -----------------------------------------------------------------------------

def _pipeline(data: Path, lake: Path, address: str, run_id: str, shard_rows: int | None = None
              ) -> tuple[float, dict, Any]:
    from flows.contract_pipeline import ContractPipelineParams, contract_pipeline
    from ops.config import PipelineConfig

    scoring = {"shard_rows": shard_rows} if shard_rows else {}
    params = ContractPipelineParams(
        contract=str(CONTRACT), data=str(data), run_id=run_id, lake_root=str(lake), evaluate=False,
        config=PipelineConfig.model_validate({"dask": {"address": address}, "scoring": scoring}))
    started = time.perf_counter()
    state = contract_pipeline(params, return_state=True)
    wall = time.perf_counter() - started
    return wall, state.result(), state.state_details.flow_run_id


def _runs(flow_run_id: Any) -> list[tuple[str, float]]:
    """``(name, seconds)`` of the pipeline's subflow runs (``flow:<name>``) and task runs, as
    Prefect recorded them (task runs reach the API as events: wait until every one has ended)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterId,
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterParentFlowRunId,
    )

    with get_client(sync_client=True) as client:
        children = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id])))
        flows = {f.id: f.name for f in client.read_flows(
            flow_filter=FlowFilter(id=FlowFilterId(any_=list({r.flow_id for r in children}))))}
        ids = [flow_run_id, *(r.id for r in children)]
        deadline = time.monotonic() + 60
        while True:
            tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
            if all(t.end_time for t in tasks) or time.monotonic() > deadline:
                break
            time.sleep(1)
    spans = [(f"flow:{flows[r.flow_id]}", (r.end_time - r.start_time).total_seconds()) for r in children]
    # Only the root's own tasks and the optimise tasks: the scoring flow publishes a summary too.
    keep = {flow_run_id, *(r.id for r in children if flows[r.flow_id] == "optimize-policy")}
    spans += [(t.name.rsplit("-", 1)[0], (t.end_time - t.start_time).total_seconds())
              for t in tasks if t.flow_run_id in keep and t.start_time and t.end_time]
    return spans


def _stage_seconds(spans: list[tuple[str, float]], lake: Path, wall: float, result: dict) -> dict[str, float]:
    seconds = {stage: sum(s for name, s in spans if name in names) for stage, names in STAGES.items()}
    seconds["shards"] = result["scores"]["scoring_seconds"]  # first shard start -> last shard end
    seconds.update({stage: sum(s for name, s in spans if name == task) for stage, task in OPTIMISE.items()})
    gate = json.loads((lake / "artifacts" / RUN / "quality-ingest.json").read_text())
    seconds["quality gate"] = sum(gate[t]["seconds_total"] for t in ("responses", "preferences"))
    seconds["GX"] = sum(gate[t]["seconds_validate"] for t in ("responses", "preferences"))
    seconds["Prefect + other"] = wall - sum(seconds[stage] for stage in STAGES)
    seconds["total"] = wall
    return seconds


def _peak_rss_gib(client: Any) -> tuple[float, list[float]]:
    def peak() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux

    return peak(), sorted(client.run(peak).values())


# --- the DuckDB reference ---------------------------------------------------------------------

def _sql(con: duckdb.DuckDBPyConnection, query: str, params: list[Any] | None = None) -> list[tuple]:
    """Run one statement to completion (this DuckDB refuses new work while a result is pending)."""
    return con.execute(query, params or []).fetchall()


def _q(name: str) -> str:
    from rlhf_core.contract.legal_blocks.compile_sql import quote_ident

    return quote_ident(name)


def _suite_sql(kind: str, schema: Any) -> list[tuple[str, str]]:
    """``(rule, SQL true where the row fails)`` for every rule and column of suite ``kind``
    (duplicates and unknown responses are joined in by the caller)."""
    from rlhf_core.quality.suites import load_suite

    empty, out = schema.empty_table(), []
    for rule in load_suite(kind):
        for column in rule.resolve(empty, kind):
            c, kind_of = _q(column), str(schema.field(column).type)
            if rule.expectation == "expect_column_values_to_not_be_null":
                fail = f"{c} IS NULL" + (f" OR isnan({c})" if kind_of in ("float", "double") else "")
            elif rule.expectation == "expect_column_values_to_be_between":
                low, high = rule.kwargs.get("min_value"), rule.kwargs.get("max_value")
                fail = " OR ".join([f"{c} < {low!r}"] * (low is not None) + [f"{c} > {high!r}"] * (high is not None))
            elif rule.expectation == "expect_column_values_to_be_in_set":
                fail = f"{c} NOT IN ({', '.join(repr(v) for v in rule.kwargs['value_set'])})"
            elif rule.derive == "valid_text":
                fail = f"contains({c}, chr(0))"
            elif rule.derive == "not_blank":
                fail = rf"regexp_full_match({c}, '[\s\p{{Z}}]*')"  # Arrow trims Unicode spaces too
            elif rule.derive == "safety_consistent" and "severity" in schema.names:
                fail = f"{c} <> (severity = 0)"
            elif rule.derive == "distinct_sides":
                fail = "response_a_id = response_b_id"
            elif rule.derive == "known_response":
                fail = f"{c} NOT IN (SELECT response_id FROM accepted_ids)"
            elif rule.derive == "finite":
                fail = f"NOT isfinite({c})" if kind_of in ("float", "double") else "false"
            else:  # uniqueness: joined by the caller; safety without severity: nothing to check
                continue
            out.append((rule.rule, f"coalesce({fail}, false)"))
    return out


def _gate_copy(con: duckdb.DuckDBPyConnection, kind: str, files: list[str], key: str, out: Path) -> int:
    """Quarantine the failing rows of ``files`` and COPY the rest (run id stamped) to ``out``."""
    con.read_parquet(files, filename=True, file_row_number=True).create_view("src")
    rules = _suite_sql(kind, pq.read_schema(files[0]))
    # Later occurrences of a duplicated key (the first one is kept, as in the gate).
    _sql(con, f"CREATE OR REPLACE TEMP TABLE later_dups AS SELECT filename, file_row_number FROM "
              f"(SELECT filename, file_row_number, row_number() OVER (PARTITION BY {key} ORDER BY "
              f"filename, file_row_number) AS n FROM src WHERE {key} IN (SELECT {key} FROM src "
              f"GROUP BY ALL HAVING count(*) > 1)) WHERE n > 1")
    dup = "((filename, file_row_number) IN (SELECT (filename, file_row_number) FROM later_dups))"
    fails = " OR ".join([dup, *(f for _, f in rules)])
    first = "CASE " + " ".join(f"WHEN {f} THEN '{r}'" for r, f in [("duplicate_id", dup), *rules]) + " END"
    _sql(con, f"CREATE OR REPLACE TEMP TABLE bad AS SELECT filename, file_row_number, {first} AS rule, "
              f"to_json(s) AS record FROM src s WHERE {fails}")
    _sql(con, "INSERT INTO quarantine SELECT ?, rule, record FROM bad", [kind])
    # Responses are written sorted by prompt and response (as the ingest writes them), pairs as read.
    order = " ORDER BY prompt_id, response_id" if kind == "responses" else ""
    _sql(con, f"COPY (SELECT * EXCLUDE (filename, file_row_number) REPLACE (? AS ingest_run) FROM src "
              f"WHERE (filename, file_row_number) NOT IN (SELECT (filename, file_row_number) FROM bad){order}) "
              f"TO '{out}' (FORMAT parquet, COMPRESSION zstd)", [RUN])
    return con.execute(f"SELECT count(*) FROM '{out}'").fetchall()[0][0]


_PAIRS = """
WITH s AS (SELECT prompt_id, response_id, CAST(reward AS FLOAT) AS reward, NOT veto AS unvetoed,
                  NOT bool_or({failing}) OVER (PARTITION BY prompt_id) AS prompt_ok FROM {scores}),
best AS (SELECT prompt_id, response_id AS chosen_id, reward AS chosen_reward FROM (
           SELECT *, row_number() OVER (PARTITION BY prompt_id ORDER BY reward DESC, response_id) AS n
           FROM s WHERE prompt_ok AND unvetoed) WHERE n = 1),
other AS (SELECT s.prompt_id, b.chosen_id, s.response_id AS rejected_id, b.chosen_reward,
                 s.reward AS rejected_reward, row_number() OVER (PARTITION BY s.prompt_id
                 ORDER BY s.reward, s.response_id) AS n
          FROM s JOIN best b USING (prompt_id)
          WHERE s.prompt_ok AND s.response_id <> b.chosen_id AND b.chosen_reward - s.reward > CAST(? AS FLOAT))
SELECT r.prompt AS prompt, r.response AS chosen, x.response AS rejected, o.prompt_id, o.chosen_id,
       o.rejected_id, o.chosen_reward, o.rejected_reward, o.chosen_reward - o.rejected_reward AS margin,
       ? AS strategy
FROM other o JOIN {responses} r ON r.response_id = o.chosen_id JOIN {responses} x ON x.response_id = o.rejected_id
WHERE o.n = 1 AND r.response <> x.response
"""


def _pairs_sql(program: Any, scores: str, responses: str) -> str:
    from rlhf_core.scoring.schema import quantifier_columns

    failing = " OR ".join(_q(c) for c in quantifier_columns(program)) or "false"
    return _PAIRS.format(failing=failing, scores=scores, responses=responses)


def _kl(con: duckdb.DuckDBPyConnection, program: Any, beta: float, scores: str, out: Path) -> dict[str, Any]:
    """The KL policy's default budget and λ (the closed form per prompt, prompts weighted equally)."""
    from rlhf_core.optimize import KLPolicyConfig
    from rlhf_core.scoring.schema import quantifier_columns

    failing = " OR ".join(_q(c) for c in quantifier_columns(program)) or "false"
    _sql(con, f"CREATE OR REPLACE TEMP TABLE kl AS SELECT prompt_id, response_id, CAST(reward AS FLOAT) AS r, "
              f"CAST(penalty AS FLOAT) AS c, NOT veto AND NOT bool_or({failing}) OVER (PARTITION BY prompt_id) "
              f"AS allowed FROM {scores}")
    min_cost, ref_cost, multi = con.execute(
        "SELECT avg(lo), avg(mean), bool_or(k > 1) FROM (SELECT min(c) AS lo, avg(c) AS mean, count(*) AS k "
        "FROM kl WHERE allowed GROUP BY prompt_id)").fetchall()[0]
    budget = min_cost + 0.5 * (ref_cost - min_cost)
    cfg = KLPolicyConfig(beta=beta)

    def expected_cost(lam: float) -> float:
        return con.execute(
            "SELECT avg(ec) FROM (SELECT sum(e * c) / sum(e) AS ec FROM (SELECT prompt_id, c, "
            "exp((r - ? * c) / ? - max((r - ? * c) / ?) OVER (PARTITION BY prompt_id)) AS e "
            "FROM kl WHERE allowed) GROUP BY prompt_id)", [lam, beta, lam, beta]).fetchall()[0][0]

    lam, steps, tol = 0.0, 0, cfg.tol * (1 + abs(budget))
    if multi and expected_cost(0.0) > budget:
        lo, hi = math.log(cfg.lambda_min), math.log(cfg.lambda_max)
        while steps < 200:
            steps += 1
            lam = math.exp((lo + hi) / 2)
            ec = expected_cost(lam)
            if abs(budget - ec) <= tol:
                break
            lo, hi = ((lo + hi) / 2, hi) if ec > budget else (lo, (lo + hi) / 2)
    _sql(con,
        "COPY (SELECT prompt_id, response_id, CASE WHEN allowed THEN e / sum(e) OVER p ELSE 0 END AS policy_prob, "
        "allowed AND row_number() OVER (p ORDER BY allowed DESC, r DESC, response_id) = 1 AS best_under_contract, "
        "allowed AND row_number() OVER (p ORDER BY allowed DESC, x DESC, response_id) = 1 AS best_under_policy "
        "FROM (SELECT *, (r - ? * c) / ? AS x, CASE WHEN allowed THEN exp((r - ? * c) / ? - max((r - ? * c) / ?) "
        "FILTER (WHERE allowed) OVER (PARTITION BY prompt_id)) END AS e FROM kl) WINDOW p AS (PARTITION BY prompt_id)) "
        f"TO '{out}' (FORMAT parquet, COMPRESSION zstd)", [lam, beta] * 3)
    return {"budget": budget, "lambda": lam, "steps": steps}


def _pareto(con: duckdb.DuckDBPyConnection, program: Any, scores: str) -> Any:
    """Mean chosen utilities for every weight of the pipeline's lattice (+ the contract's weights),
    each prompt picking its best allowed candidate (the first in response order on ties)."""
    import numpy as np

    from rlhf_core.optimize.pareto import simplex_lattice
    from rlhf_core.optimize.pareto_table import lattice_divisions
    from rlhf_core.scoring.schema import quantifier_columns

    names = [s.name for s in program.stakeholders]
    weights = simplex_lattice(len(names), lattice_divisions(len(names), 1000))
    contract = np.asarray([s.weight for s in program.stakeholders], np.float32)
    weights = np.vstack([weights, contract / contract.sum()])
    _sql(con, "CREATE OR REPLACE TEMP TABLE w (k INTEGER, " + ", ".join(f"w{j} FLOAT" for j in range(len(names))) + ")")
    con.executemany(f"INSERT INTO w VALUES (?{', ?' * len(names)})", [[k, *map(float, row)] for k, row in enumerate(weights)])
    failing = " OR ".join(_q(c) for c in quantifier_columns(program)) or "false"
    n_c = con.execute(f"SELECT max(n) FROM (SELECT count(*) AS n FROM {scores} GROUP BY prompt_id)").fetchall()[0][0]
    slots = range(n_c)
    util = [f"CAST({_q('u_' + s)} AS FLOAT)" for s in names]
    _sql(con,
        "CREATE OR REPLACE TEMP TABLE wide AS SELECT "
        + ", ".join(f"bool_or(allowed AND slot = {c}) AS a{c}" for c in slots) + ", "
        + ", ".join(f"max(u{j}) FILTER (WHERE slot = {c}) AS u{c}_{j}" for c in slots for j in range(len(names)))
        + " FROM (SELECT prompt_id, row_number() OVER (PARTITION BY prompt_id ORDER BY response_id) - 1 AS slot, "
        + f"NOT veto AND NOT bool_or({failing}) OVER (PARTITION BY prompt_id) AS allowed, "
        + ", ".join(f"{u} AS u{j}" for j, u in enumerate(util))
        + f" FROM {scores}) GROUP BY prompt_id HAVING bool_or(allowed)")
    score = [f"CASE WHEN a{c} THEN " + " + ".join(f"u{c}_{j} * w{j}" for j in range(len(names)))
             + " ELSE '-inf'::FLOAT END" for c in slots]
    pick = "CASE " + " ".join(f"WHEN s{c} >= greatest({', '.join(f's{d}' for d in slots if d > c)}) THEN {c}"
                              for c in slots[:-1]) + f" ELSE {n_c - 1} END" if n_c > 1 else "0"
    means = [f"avg(CASE c {' '.join(f'WHEN {c} THEN u{c}_{j}' for c in slots)} END) AS m{j}" for j in range(len(names))]
    points = con.execute(
        f"SELECT k, {', '.join(means)} FROM (SELECT *, {pick} AS c FROM (SELECT k, "
        f"{', '.join(f'{s} AS s{c}' for c, s in enumerate(score))}, * FROM wide, w)) GROUP BY k ORDER BY k").fetchnumpy()
    return np.stack([points[f"m{j}"] for j in range(len(names))], 1)


def _report(con: duckdb.DuckDBPyConnection, scores: str, responses: str, quarantine: str) -> None:
    """The report's aggregates (as rlhf_core.report computes them), results discarded."""
    utils = [c for c in con.sql(f"SELECT * FROM {scores} LIMIT 0").columns if c.startswith("u_")]
    con.execute("SELECT count(*), avg(reward), stddev_pop(reward), min(reward), max(reward), "
                "quantile_cont(reward, [0.05, 0.25, 0.5, 0.75, 0.95]), avg(veto::DOUBLE), avg(penalty), "
                + ", ".join(f"avg({_q(u)}), stddev_pop({_q(u)}), min({_q(u)}), max({_q(u)})" for u in utils)
                + f" FROM {scores}").fetchall()
    for col in ["reward", *utils]:
        x = f"CAST({_q(col)} AS DOUBLE)"
        lo, hi = con.execute(f"SELECT min({x}), max({x}) FROM {scores} WHERE isfinite({x})").fetchall()[0]
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        width = (hi - lo) / 40
        con.execute(f"SELECT least(CAST(floor(({x} - ?) / ?) AS BIGINT), 39) AS b, count(*) FROM {scores} "
                    f"WHERE isfinite({x}) GROUP BY b", [lo, width]).fetchall()
    _sql(con, f"CREATE OR REPLACE TEMP TABLE j AS SELECT CAST(s.reward AS DOUBLE) AS reward, "
              f"CAST(length(r.response) AS DOUBLE) AS len, CAST(r.length AS DOUBLE) AS declared "
              f"FROM {scores} s JOIN {responses} r USING (response_id)")
    for length, sample in (("len", 5000), ("declared", 0)):
        con.execute(f"SELECT count(*), corr(reward, {length}) FROM j").fetchall()
        con.execute(f"SELECT corr(rr, rl) FROM (SELECT rank() OVER (ORDER BY reward) + (count(*) OVER "
                    f"(PARTITION BY reward) - 1) / 2.0 AS rr, rank() OVER (ORDER BY {length}) + (count(*) "
                    f"OVER (PARTITION BY {length}) - 1) / 2.0 AS rl FROM j)").fetchall()
        con.execute(f"SELECT avg({length}), avg(reward) FROM (SELECT {length}, reward, ntile(10) OVER "
                    f"(ORDER BY {length}) AS d FROM j) GROUP BY d ORDER BY d").fetchall()
        if sample:
            con.execute(f"SELECT {length}, reward FROM j USING SAMPLE reservoir({sample} ROWS) REPEATABLE (0)").fetchall()
    con.execute(f"SELECT \"table\", rule, count(*) FROM {quarantine} GROUP BY ALL").fetchall()


def _reference(data: Path, out: Path, with_pareto: bool, memory_limit: str | None) -> tuple[dict[str, float], dict[str, Any]]:
    """Run the DuckDB reference into ``out``; seconds per stage and what it produced."""
    from rlhf_core.contract import load_contract
    from rlhf_core.contract.legal_blocks.compile_sql import compile_sql
    from rlhf_core.ingest.generator import PREFERENCES_DIR
    from rlhf_core.scoring.verify import compare_scores_with_sql

    contract = load_contract(CONTRACT)
    program, selection = contract.program, contract.spec.selection
    out.mkdir(parents=True)
    files = {k: sorted(str(p) for p in folder.glob("*.parquet"))
             for k, folder in (("responses", data), ("preferences", data / PREFERENCES_DIR))}
    paths = {k: out / f"{k}.parquet" for k in ("responses", "preferences", "quarantine", "scores", "selections", "pairs")}
    responses, scores = "responses", "scores"  # views over the reference's own files, made below
    con = duckdb.connect()
    _sql(con, "SET threads = 2; SET enable_progress_bar = false")
    if memory_limit:
        _sql(con, f"SET memory_limit = '{memory_limit}'; SET temp_directory = '{out / 'spill'}'")
    seconds, made = {}, {}
    started = time.perf_counter()
    _sql(con, 'CREATE TEMP TABLE quarantine ("table" VARCHAR, rule VARCHAR, record VARCHAR)')
    made["accepted"] = _gate_copy(con, "responses", files["responses"], "response_id", paths["responses"])
    con.read_parquet(str(paths["responses"])).create_view(responses)
    _sql(con, f"CREATE TEMP TABLE accepted_ids AS SELECT response_id FROM {responses}")
    made["preferences"] = _gate_copy(con, "preferences", files["preferences"], "pair_id", paths["preferences"])
    _sql(con, f"COPY quarantine TO '{paths['quarantine']}' (FORMAT parquet)")
    made["quarantined"] = con.execute("SELECT count(*) FILTER (WHERE \"table\" = 'responses') FROM quarantine").fetchall()[0][0]
    seconds["ingest"] = time.perf_counter() - started

    started = time.perf_counter()
    _sql(con, f"COPY ({compile_sql(program).select(responses, ['prompt_id', 'response_id'])}) "
              f"TO '{paths['scores']}' (FORMAT parquet, COMPRESSION zstd)")
    con.read_parquet(str(paths["scores"])).create_view(scores)
    seconds["score"] = time.perf_counter() - started

    started = time.perf_counter()
    rules = _suite_sql("scores", pq.read_schema(paths["scores"]))
    failed = con.execute("SELECT count(*) - count(DISTINCT response_id), "
                         + ", ".join(f"count(*) FILTER (WHERE {f})" for _, f in rules) + f" FROM {scores}").fetchall()[0]
    if any(failed):
        raise RuntimeError(f"reference: scores fail their suite ({failed})")
    seconds["quality (scores suite)"] = time.perf_counter() - started

    started = time.perf_counter()
    made["verify"] = compare_scores_with_sql(program, [str(paths["responses"])], [str(paths["scores"])])
    seconds["verify (SQL differential)"] = time.perf_counter() - started

    if with_pareto:
        started = time.perf_counter()
        made["pareto"] = _pareto(con, program, scores)
        seconds["Pareto"] = time.perf_counter() - started
    started = time.perf_counter()
    made["kl"] = _kl(con, program, selection.kl_beta, scores, paths["selections"])
    seconds["KL policy"] = time.perf_counter() - started

    started = time.perf_counter()
    _sql(con, f"COPY ({_pairs_sql(program, scores, responses)}) TO '{paths['pairs']}' "
                "(FORMAT parquet, COMPRESSION zstd)", [selection.min_margin, selection.pairing])
    made["pairs"] = con.execute(f"SELECT count(*) FROM '{paths['pairs']}'").fetchall()[0][0]
    seconds["DPO pairs"] = time.perf_counter() - started
    seconds["optimise"] = sum(seconds.get(k, 0.0) for k in OPTIMISE)

    started = time.perf_counter()
    _report(con, scores, responses, f"read_parquet('{paths['quarantine']}')")
    seconds["report"] = time.perf_counter() - started
    con.close()
    seconds["total"] = sum(seconds[k] for k in STAGES if k in seconds)
    made["paths"] = paths
    return seconds, made


# --- checks and the table -----------------------------------------------------------------------

def _checks(lake: Path, result: dict, ref: dict[str, Any]) -> list[str]:
    """Compare the reference's outputs with the pipeline's; raise on a real difference."""
    import numpy as np

    from rlhf_core.contract import load_contract
    from rlhf_core.lake.store import Lake

    contract, store = load_contract(CONTRACT), Lake(lake)
    program, selection = contract.program, contract.spec.selection
    ingest, notes = result["ingest"], []
    counts = {"accepted": (ingest["accepted"], ref["accepted"]), "quarantined": (ingest["quarantined"], ref["quarantined"]),
              "preferences": (ingest["preferences"], ref["preferences"]), "pairs": (result["optimization"]["pairs"]["pairs"], ref["pairs"])}
    # Pairs are drawn from each side's own scores: the reference's rewards are the contract's SQL
    # in double precision, the pipeline's JAX in float32, so a pair whose margin sits at the
    # threshold may fall on either side of it. That count is reported; the pair rule itself is
    # checked exactly below (the reference's pair SQL on the pipeline's own scores).
    if any(a != b for k, (a, b) in counts.items() if k != "pairs"):
        raise RuntimeError(f"pipeline and reference row counts differ: {counts}")
    pairs_ours, pairs_ref = counts["pairs"]
    notes.append("row counts equal (" + ", ".join(f"{k} {a:,}" for k, (a, _) in counts.items() if k != "pairs")
                 + f"), pairs {pairs_ours:,} vs {pairs_ref:,} from each side's own scores")
    from rlhf_core.scoring.verify import compare_scores_with_sql

    lake_scores = [str(p) for p in store.part_paths("scores", RUN)]
    diff = compare_scores_with_sql(program, [str(ref["paths"]["responses"])], lake_scores)
    if not diff["ok"]:
        raise RuntimeError(f"reference scores differ from the lake's: {diff}")
    notes.append(f"all {diff['rows']:,} rows x {len(diff['columns'])} score columns agree (verify's tolerances)")
    con = duckdb.connect()
    lake_pairs = [str(p) for p in store.part_paths("pairs", RUN)]
    lake_responses = [str(p) for p in store.part_paths("responses", RUN)]
    _sql(con, f"CREATE TEMP TABLE mine AS {_pairs_sql(program, f'read_parquet({lake_scores})', f'read_parquet({lake_responses})')}",
                [selection.min_margin, selection.pairing])
    key = "prompt_id, chosen_id, rejected_id"
    only = con.execute(f"SELECT (SELECT count(*) FROM (SELECT {key} FROM mine EXCEPT SELECT {key} FROM read_parquet({lake_pairs}))), "
                       f"(SELECT count(*) FROM (SELECT {key} FROM read_parquet({lake_pairs}) EXCEPT SELECT {key} FROM mine)), "
                       f"(SELECT count(*) FROM (SELECT {key} FROM '{ref['paths']['pairs']}' EXCEPT SELECT {key} FROM mine))").fetchall()[0]
    if only[0] or only[1]:
        raise RuntimeError(f"pair SQL on the lake's scores: {only[0]} pairs not in the pipeline's, {only[1]} missing")
    notes.append(f"pair SQL on the pipeline's scores = the pipeline's pairs; on its own scores {only[2]} differ")
    policy = json.loads((lake / "artifacts" / RUN / "kl_policy.json").read_text())
    kl = ref["kl"]
    if abs(policy["budget"] - kl["budget"]) > 1e-5 * (1 + abs(kl["budget"])) or (policy["lambda"] > 0) != (kl["lambda"] > 0):
        raise RuntimeError(f"KL budget / λ differ: pipeline {policy}, reference {kl}")
    notes.append(f"KL budget {kl['budget']:.6g} both, λ {policy['lambda']:.4g} vs {kl['lambda']:.4g} ({kl['steps']} SQL steps)")
    if "pareto" in ref:
        table = store.read_run("pareto", RUN)
        points = np.stack([table[f"u_{s.name}"].to_numpy() for s in program.stakeholders], 1)
        notes.append(f"Pareto points: max |difference| {np.abs(points - ref['pareto']).max():.2g}")
    return notes


def _table(rows: int, pipe: dict[str, float], ref: dict[str, float], rss: tuple[float, list[float]]) -> None:
    def line(label: str, ours: float, theirs: float | None, does: str = "") -> None:
        ratio = f"{ours / theirs:.2f}×" if theirs else "–"
        print(f"| {label} | {ours:.2f} | {f'{theirs:.2f}' if theirs is not None else '–'} | {ratio} | {does} |")

    print(f"\n{rows:,} rows; flow process peak RSS {rss[0]:.2f} GiB, workers "
          f"{', '.join(f'{r:.2f}' for r in rss[1])} GiB\n")
    print("| stage | pipeline (s) | DuckDB reference (s) | ratio | the reference does |")
    print("|---|---:|---:|---:|---|")
    line("validate + run record", pipe["validate + run record"], None, "–")
    line("ingest", pipe["ingest"], ref["ingest"], "suite predicates, COPY accepted rows ORDER BY")
    line("  of which quality gate (GX)", pipe["quality gate"], None, f"GX {pipe['GX']:.2f} s")
    line("score", pipe["score"], ref["score"], "COPY (contract SQL)")
    line("  of which shards on the workers", pipe["shards"], None, "first start to last end")
    line("quality (scores suite)", pipe["quality (scores suite)"], ref["quality (scores suite)"], "predicates, one aggregate")
    line("verify (SQL differential)", pipe["verify (SQL differential)"], ref["verify (SQL differential)"], "the same check")
    line("optimise (tasks side by side)", pipe["optimise"], ref["optimise"],
         "KL + pairs" + (" + Pareto" if "Pareto" in ref else " (no Pareto)"))
    line("  Pareto", pipe["Pareto"], ref.get("Pareto"), "lattice in SQL" if "Pareto" in ref else "–")
    line("  KL policy", pipe["KL policy"], ref["KL policy"], "budget, λ, selections")
    line("  DPO pairs", pipe["DPO pairs"], ref["DPO pairs"], "window functions, texts joined")
    line("summary + run record", pipe["summary + run record"], None, "–")
    line("report", pipe["report"], ref["report"], "the aggregates, no HTML")
    line("Prefect + other", pipe["Prefect + other"], None, "–")
    line("**total**", pipe["total"], ref["total"], "")
    line("total without optimise", pipe["total"] - pipe["optimise"], ref["total"] - ref["optimise"], "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1M rows only")
    parser.add_argument("--rows", type=int, default=None, help="one size instead of 1M and 10M")
    parser.add_argument("--large", action="store_true", help="also 100M rows (DuckDB memory-limited)")
    parser.add_argument("--reference-pareto", action="store_true", help="the reference evaluates the Pareto lattice in SQL")
    parser.add_argument("--repeat", type=int, default=1, help="runs per size; the fastest of each side is shown")
    args = parser.parse_args()
    sizes = [args.rows] if args.rows else [1_000_000] if args.quick else [1_000_000, 10_000_000]
    sizes += [100_000_000] if args.large else []
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from ops.runtime import enable_compilation_cache, prefect_api

    enable_compilation_cache()  # as `rlhf-wizard run` does: workers load compiled programs
    api = prefect_api()
    from distributed import Client, LocalCluster

    from rlhf_core.quality.gx import warm_up_in_background

    warm_up_in_background()
    work = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    # Runs read and write only under configured roots (docs/security.md): this benchmark's own.
    os.environ["RLHF_WIZARD_DATA_ROOTS"] = os.pathsep.join(
        str(p) for p in (REPO / ".wizard" / "bench-data", REPO / "configs", work))
    os.environ["RLHF_WIZARD_OUTPUT_ROOTS"] = str(work)
    try:
        with api, LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client, \
                ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as spawn:
            # Small shards, so that every worker has run one (imports, compilation) before timing.
            _pipeline(_data(WARM_UP_ROWS), work / "warm-up", cluster.scheduler_address, "bench-warm-up",
                      shard_rows=WARM_UP_ROWS // 8)
            per_row = None  # the flow process's peak RSS per row at the last size run
            for rows in sizes:
                available = psutil.virtual_memory().available / 2**30
                if per_row and per_row * rows > available:
                    print(f"\n{rows:,} rows skipped: the flow process would need about {per_row * rows:.0f} GiB "
                          f"(its peak per row so far), {available:.0f} GiB are free")
                    continue
                data, best_pipe, best_ref = _data(rows), None, None
                for attempt in range(args.repeat):
                    lake, out = work / f"lake-{rows}-{attempt}", work / f"ref-{rows}-{attempt}"
                    wall, result, flow_run_id = _pipeline(data, lake, cluster.scheduler_address, RUN)
                    pipe = _stage_seconds(_runs(flow_run_id), lake, wall, result)
                    # In its own process: its memory is not the flow process's peak RSS.
                    ref, made = spawn.submit(_reference, data, out, args.reference_pareto,
                                             "6GB" if rows > 20_000_000 else None).result()
                    notes = _checks(lake, result, made)
                    best_pipe = min(best_pipe or pipe, pipe, key=lambda s: s["total"])
                    best_ref = min(best_ref or ref, ref, key=lambda s: s["total"])
                    shutil.rmtree(lake, ignore_errors=True)
                    shutil.rmtree(out, ignore_errors=True)
                rss = _peak_rss_gib(client)
                per_row = rss[0] / rows
                _table(rows, best_pipe, best_ref, rss)
                print("\nChecks: " + "; ".join(notes) + ".")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\nTargets (2 cores, 10M rows, running cluster): total ≤ 2× the reference, no stage above 3×, "
          "peak RSS per worker ≤ 2 GB at 100M rows.")


if __name__ == "__main__":
    main()
