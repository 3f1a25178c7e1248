"""Edge shapes never hang or crash: random contracts x degenerate data through ``contract-pipeline``.

Every example writes a random valid contract (1-6 stakeholders, every aggregation rule, each
clause kind present or not, every pairing, NaN risks acknowledged or refused, input null
policies, ``max_candidates`` below the data's) and a degenerate dataset (one row, one prompt, one
candidate per prompt; every row vetoed, every candidate tied, all-null optional columns, a
contract input null on every row, NaN and infinite inputs, identical texts; no, empty, random or
all-tie preference labels) and runs the whole pipeline in a worker thread under a wall-clock
bound. The property: the run completes with consistent results (rows conserved, every accepted
row scored, the SQL agrees, no vetoed response chosen, nothing to choose reported as such, a
single-stakeholder front is one point and the summary and report say so) or ends with one typed
error whose message is one line, recorded as the run's error. A run still going at the bound
fails the test with the stack of the stuck thread.

CI runs a fixed sample: :data:`EXPLICIT` covers every row shape, modifier, label kind and rule,
plus :data:`GENERATED` derandomised draws (the "ci" profile in ``tests/conftest.py``). Explore
with ``EDGE_SHAPES_EXAMPLES=200 HYPOTHESIS_PROFILE=explore pytest tests/flows/test_edge_shapes.py``
(no shrinking: a failure prints the whole case, contract included).
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, Phase, event, example, given, settings
from hypothesis import strategies as st

from flows.contract_pipeline import ContractPipelineParams, contract_pipeline
from ops.config import PipelineConfig
from rlhf_core.contract.legal_blocks.printer import format_expr
from rlhf_core.errors import WizardError, first_line
from rlhf_core.lake.catalog import Table
from rlhf_core.lake.runs import get_run
from rlhf_core.lake.schemas import preferences_schema, responses_schema
from rlhf_core.lake.store import Lake
from tests.contract.compile_strategies import NUM_INPUTS, bool_exprs, utilities

pytestmark = pytest.mark.integration

RUN_BOUND_S = float(os.environ.get("EDGE_SHAPES_BOUND_S", "180"))
"""Wall-clock bound of one pipeline run (the first one also compiles and warms every import)."""
GENERATED = int(os.environ.get("EDGE_SHAPES_EXAMPLES", "3"))
"""Random examples on top of ``EXPLICIT`` (the CI sample is small: each example is a whole run)."""

RULES = ("weighted_sum", "utilitarian", "nash_bargaining", "max_min", "lexicographic")
ROWS = ("one_row", "one_prompt", "one_candidate", "several")
"""How rows fall into prompts: 1 x 1, 1 x n, n x 1, n x m."""
MODIFIERS = ("all_vetoed", "all_tied", "null_optional", "null_inputs", "nan_inputs", "same_text")
"""What is degenerate about the values (none, one or two at once): every row vetoed (``s`` false,
the contract REQUIRES s), every candidate identical, all-null optional columns, a contract input
null on every row, NaN and infinite float inputs, every candidate of a prompt with the same text."""
LABELS = ("none", "empty", "random", "ties")
"""Preference labels: no ``preferences/`` folder, an empty file, random labels, every pair a tie."""
PAIRINGS = ("best_vs_worst", "all_above_margin", "best_vs_random")
INPUT_DTYPES = {"a": "float", "b": "float", "c": "float", "k": "int", "s": "bool", "t": "bool"}
OPTIONAL_COLUMNS = (pa.field("notes", pa.float32()), pa.field("flag", pa.bool_()))
"""Attribute columns the data carries but no contract declares (all null in ``null_optional``)."""


@dataclass(frozen=True)
class Case:
    """One example: the contract's YAML and the data's shape."""

    rows: str
    modifiers: tuple[str, ...]
    labels: str
    rule: str
    contract_yaml: str
    n_stakeholders: int
    prompts: int
    candidates: int
    seed: int
    shard_rows: int
    max_failure_rate: float = 0.05
    expect: str | None = None
    """``completed``, or the name of the error class the run must end with (explicit cases)."""

    def __repr__(self) -> str:  # hypothesis prints the failing example: make it readable
        return (f"Case(rows={self.rows!r}, modifiers={self.modifiers!r}, labels={self.labels!r}, "
                f"rule={self.rule!r}, prompts={self.prompts}, candidates={self.candidates}, "
                f"seed={self.seed}, shard_rows={self.shard_rows}, "
                f"max_failure_rate={self.max_failure_rate}, contract=\n{self.contract_yaml})")


# ---------------------------------------------------------------------------------------------
# contracts


def _yaml_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def contract_yaml(rule: str, utilities_text: list[str], weights: list[float],
                  disagreements: list[float | None], clauses: list[str], *, floor: float = -1.0,
                  lex_order: list[int] | None = None, tolerance: float | None = None,
                  pairing: str = "best_vs_worst", min_margin: float = 0.0, kl_beta: float = 0.1,
                  max_candidates: int | None = None, b_default: float | None = None,
                  acknowledge_nan: bool = False) -> str:
    """A contract over the inputs ``a b c k s t`` (the compile strategies' ranges); with
    ``b_default``, a null ``b`` is scored as that value (``on_null: default``)."""
    lines = ["contract: edge-shape", "version: 1.0.0", "inputs:"]
    for name, dtype in INPUT_DTYPES.items():
        extra = f", range: [{NUM_INPUTS[name][0]}, {NUM_INPUTS[name][1]}]" if name in NUM_INPUTS else ""
        if name == "b" and b_default is not None:
            extra += f", on_null: default, default: {b_default}"
        lines.append(f"  {name}: {{dtype: {dtype}{extra}}}")
    lines.append("stakeholders:")
    for i, (utility, weight, d) in enumerate(zip(utilities_text, weights, disagreements, strict=True)):
        lines += [f"  - name: h{i}", f"    weight: {weight}", f"    utility: {_yaml_str(utility)}"]
        if d is not None:
            lines.append(f"    disagreement: {d}")
    agg = f"rule: {rule}, floor_reward: {floor}"
    if rule == "lexicographic":
        agg += f", order: [{', '.join(f'h{i}' for i in lex_order or [])}]"
        if tolerance is not None:
            agg += f", tolerance: {tolerance}"
    lines.append(f"aggregation: {{{agg}}}")
    if clauses:
        lines.append("clauses: |")
        lines += [f"  {c}" for c in clauses]
    lines.append(f"selection: {{pairing: {pairing}, min_margin: {min_margin}, kl_beta: {kl_beta}, seed: 3}}")
    if max_candidates is not None:
        lines.append(f"max_candidates: {max_candidates}")
    if acknowledge_nan:
        lines.append("acknowledge: [nan_risk]")
    return "\n".join(lines) + "\n"


@st.composite
def clause_lines(draw: st.DrawFn, *, veto_all: bool) -> list[str]:
    """Each clause kind present or not; ``veto_all`` adds ``REQUIRES s`` (the data sets s false)."""
    out = []
    if draw(st.booleans()):
        out.append(f"req: REQUIRES {format_expr(draw(bool_exprs(2, safe=True)))}")
    if draw(st.booleans()):
        penalty, severity = draw(st.sampled_from((0.0, 0.25, 1.0))), draw(st.sampled_from((1, 2)))
        out.append(f"inv: INVARIANT {format_expr(draw(bool_exprs(2, safe=True, norm=True)))} "
                   f"PENALTY {penalty} SEVERITY {severity}")
    if draw(st.booleans()):
        # wide (proved), tight (often refuted: the pipeline refuses the contract) or self-equal
        out.append("ens: ENSURES " + draw(st.sampled_from((
            "-1000000 <= reward AND reward <= 1000000", "reward <= 0.25", "reward == reward"))))
    if draw(st.booleans()):
        out.append(f"all: FORALL r IN prompt: {format_expr(draw(bool_exprs(1, var='r', safe=True)))}")
    if draw(st.booleans()):
        out.append(f"any: EXISTS r IN prompt: {format_expr(draw(bool_exprs(1, var='r', safe=True)))}")
    if veto_all:
        out.append("needs_s: REQUIRES s")
    return out


@st.composite
def contracts(draw: st.DrawFn, rule: str, *, veto_all: bool, candidates: int) -> tuple[str, int]:
    """``(yaml, stakeholders)`` of a random valid contract under ``rule``."""
    n = draw(st.integers(1, 6))
    safe = rule in ("nash_bargaining", "max_min", "lexicographic")
    texts = [format_expr(draw(utilities(safe, norm=draw(st.booleans())))) for _ in range(n)]
    weights = [draw(st.sampled_from((1, 0.5, 0.125, 2, 3))) for _ in range(n)]
    disagreements = [draw(st.sampled_from((None, -1.0, -10.0))) if rule == "nash_bargaining" else None
                     for _ in range(n)]
    yaml = contract_yaml(
        rule, texts, weights, disagreements, draw(clause_lines(veto_all=veto_all)),
        floor=draw(st.sampled_from((-1.0, -2.0, 0.0))),
        lex_order=draw(st.permutations(range(n))) if rule == "lexicographic" else None,
        tolerance=draw(st.sampled_from((None, 0.0, 0.25))) if rule == "lexicographic" else None,
        pairing=draw(st.sampled_from(PAIRINGS)), min_margin=draw(st.sampled_from((0.0, 0.05))),
        kl_beta=draw(st.sampled_from((0.1, 1.0))),
        # sometimes fewer than the data has: scoring refuses such a prompt in one line
        max_candidates=draw(st.sampled_from((None, None, None, 64, max(1, candidates - 1)))),
        b_default=draw(st.sampled_from((None, 0.0))),
        # unsafe utilities (weighted_sum, utilitarian) may be NaN / inf: refused unless acknowledged
        acknowledge_nan=not safe and draw(st.booleans()),
    )
    return yaml, n


@st.composite
def cases(draw: st.DrawFn) -> Case:
    rows, labels = draw(st.sampled_from(ROWS)), draw(st.sampled_from(LABELS))
    modifiers = tuple(sorted(draw(st.sets(st.sampled_from(MODIFIERS), max_size=2))))
    rule = draw(st.sampled_from(RULES))
    prompts, candidates = {
        "one_row": (1, 1),
        "one_prompt": (1, draw(st.integers(2, 5))),
        "one_candidate": (draw(st.integers(2, 5)), 1),
    }.get(rows, (draw(st.integers(2, 4)), draw(st.integers(2, 4))))
    yaml, n = draw(contracts(rule, veto_all="all_vetoed" in modifiers, candidates=candidates))
    return Case(rows, modifiers, labels, rule, yaml, n, prompts, candidates,
                draw(st.integers(0, 2**16)), draw(st.sampled_from((1, 1_000))),
                # 1.0: every row may be quarantined and the run goes on with what is left
                draw(st.sampled_from((0.05, 1.0))))


# ---------------------------------------------------------------------------------------------
# data

RESPONSES_SCHEMA = responses_schema([
    pa.field("a", pa.float32()), pa.field("b", pa.float32()), pa.field("c", pa.float32()),
    pa.field("k", pa.int32()), pa.field("s", pa.bool_()), pa.field("t", pa.bool_()),
    *OPTIONAL_COLUMNS,
])


def write_data(case: Case, root: Path) -> int:
    """Write the case's responses (and labels) as normalised Parquet; returns the row count."""
    rng = np.random.default_rng(case.seed)
    n = case.prompts * case.candidates
    prompt = np.repeat(np.arange(case.prompts), case.candidates)
    cand = np.tile(np.arange(case.candidates), case.prompts)
    cols: dict[str, Any] = {
        "prompt_id": [f"p{p}" for p in prompt],
        "response_id": [f"p{p}-c{c}" for p, c in zip(prompt, cand, strict=True)],
        "prompt": [f"Question {p}?" for p in prompt],
        "prompt_messages": [[{"role": "user", "content": f"Question {p}?"}] for p in prompt],
        "response": [f"Answer {c} to question {p}." for p, c in zip(prompt, cand, strict=True)],
        "source": ["edge"] * n,
        "source_line": list(range(1, n + 1)),
        "ingest_run": ["edge"] * n,
    }
    for name, (lo, hi) in NUM_INPUTS.items():
        step = 1.0 if INPUT_DTYPES[name] == "int" else 0.125
        cols[name] = rng.choice(np.arange(lo, hi + step / 2, step), n)
    for name in ("s", "t"):
        cols[name] = rng.random(n) < 0.5
    cols["notes"] = rng.random(n).astype(np.float32)
    cols["flag"] = rng.random(n) < 0.5
    if "all_tied" in case.modifiers:  # every candidate identical but for its id and text
        for name in ("a", "b", "c", "k", "s", "t", "notes", "flag"):
            cols[name] = np.repeat(cols[name][:1], n)
    if "all_vetoed" in case.modifiers:
        cols["s"] = np.zeros(n, bool)
    if "null_optional" in case.modifiers:
        cols.update(notes=[None] * n, flag=[None] * n, source_line=[None] * n)
    if "null_inputs" in case.modifiers:
        cols["b"] = [None] * n
    if "nan_inputs" in case.modifiers:  # not null: NaN and infinities the quality suites let through
        cols["a"] = np.where(np.arange(n) % 2 == 0, np.nan, cols["a"])
        cols["c"] = np.where(np.arange(n) % 3 == 1, np.inf, cols["c"])
    if "same_text" in case.modifiers:
        cols["response"] = [f"The same answer to question {p}." for p in prompt]
    root.mkdir(parents=True)
    pq.write_table(pa.Table.from_pydict(cols, schema=RESPONSES_SCHEMA), root / "part-00000.parquet")
    if case.labels == "none":
        return n
    pairs = [] if case.labels == "empty" else [
        (p, c) for p in range(case.prompts) for c in range(case.candidates - 1)]
    prefs = {
        "pair_id": [f"pair-p{p}-c{c}" for p, c in pairs],
        "prompt_id": [f"p{p}" for p, _ in pairs],
        "response_a_id": [f"p{p}-c{c}" for p, c in pairs],
        "response_b_id": [f"p{p}-c{c + 1}" for p, c in pairs],
        "margin": [None] * len(pairs),
        "source": ["edge"] * len(pairs),
        "source_line": list(range(1, len(pairs) + 1)),
        "ingest_run": ["edge"] * len(pairs),
        "better": [0 if case.labels == "ties" else int(rng.integers(-1, 2)) for _ in pairs],
    }
    (root / "preferences").mkdir()
    pq.write_table(pa.Table.from_pydict(prefs, schema=preferences_schema(["better"])),
                   root / "preferences" / "part-00000.parquet")
    return n


# ---------------------------------------------------------------------------------------------
# one bounded run


def run_bounded(params: ContractPipelineParams, bound_s: float) -> tuple[dict | None, BaseException | None]:
    """Run the pipeline in a daemon thread; fail the test (with that thread's stack) past ``bound_s``."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = contract_pipeline(params)
        except BaseException as exc:  # the property inspects every outcome, typed or not
            outcome["error"] = exc

    thread = threading.Thread(target=target, name=f"edge-{params.run_id}", daemon=True)
    thread.start()
    thread.join(bound_s)
    if thread.is_alive():
        frame = sys._current_frames().get(thread.ident)
        stack = "".join(traceback.format_stack(frame)) if frame else "(no frame)"
        pytest.fail(f"run {params.run_id} still running after {bound_s:.0f} s; stuck at:\n{stack}")
    return outcome.get("result"), outcome.get("error")


def check_outcome(case: Case, lake: Path, run_id: str, rows: int,
                  result: dict | None, error: BaseException | None) -> None:
    """The property: a consistent completed run, or one typed one-line error recorded as such."""
    record = get_run(Lake(lake), run_id)
    if case.expect == "completed":
        assert error is None, f"expected to complete, ended with {type(error).__name__}: {error}"
    elif case.expect is not None:
        assert error is not None and case.expect in {c.__name__ for c in type(error).__mro__}, \
            f"expected {case.expect}, got {type(error).__name__ if error else 'a completed run'}"
    if error is not None:
        event(f"refused: {type(error).__name__}")
        detail = "".join(traceback.format_exception(error))
        assert isinstance(error, WizardError), f"untyped {type(error).__name__} escaped:\n{detail}"
        message = str(error).strip()
        assert message and "\n" not in message, f"not one line: {message!r}"
        assert record.status == "failed" and record.error == first_line(error), record
        return
    event(f"completed: {case.rows} / {'+'.join(case.modifiers) or 'plain'} / {case.labels}")
    assert record.status == "completed", record
    ingest = result["ingest"]
    assert ingest["rows_in"] == rows == ingest["accepted"] + ingest["quarantined"]
    scores = Lake(lake).read_run(Table.SCORES, run_id)
    assert scores.num_rows == result["scores"]["rows"] == ingest["accepted"] > 0
    assert result["differential"]["ok"], result["differential"]
    opt, summary = result["optimization"], result["summary"]
    pairs = Lake(lake).read_run(Table.PAIRS, run_id)
    assert pairs.num_rows == opt["pairs"]["pairs"]
    vetoed = set(scores.filter(scores["veto"]).column("response_id").to_pylist())
    assert not vetoed & set(pairs.column("chosen_id").to_pylist()), "a vetoed response was chosen"
    if case.rows in ("one_row", "one_candidate") or "all_vetoed" in case.modifiers:
        assert opt["pairs"]["pairs"] == 0
        assert opt["policy"]["status"] == "nothing to choose", opt["policy"]
        assert "nothing to choose" in summary
    if "all_tied" in case.modifiers:
        rewards = {r for r in scores.column("reward").to_pylist() if r == r}  # NaN aside
        assert len(rewards) <= 1, rewards
        assert opt["pairs"]["pairs"] == 0
    if "same_text" in case.modifiers:  # chosen and rejected would read the same
        assert opt["pairs"]["pairs"] == 0
    if case.n_stakeholders == 1:
        assert opt["pareto"]["n_front"] == 1
        assert "Pareto front: 1 point (one stakeholder: nothing to trade off)" in summary, summary
    labelled = case.labels in ("random", "ties") and case.candidates > 1
    assert (result["agreement"] is not None) == labelled
    report = Path(result["report"]).read_text(encoding="utf-8")
    if case.n_stakeholders == 1:
        assert 'id="single-point"' in report and "nothing to trade off" in report


# ---------------------------------------------------------------------------------------------
# the property


def _explicit() -> list[Case]:
    """Every row shape, modifier, label kind and rule at least once (the CI sample's coverage)."""
    clauses = ["req: REQUIRES NOT t OR a >= 0", "inv: INVARIANT c <= 2 PENALTY 0.25 SEVERITY 1",
               "ens: ENSURES reward == reward", "all: FORALL r IN prompt: r.k <= 3",
               "any: EXISTS r IN prompt: r.c >= 0.5"]
    utilities_text = ["min(a, 4) / 4", "1 - abs(b) / 2", "clip(c, 0.5, 3) / 3", "rank(a IN prompt)"]
    plan = [  # rows, modifiers, labels, rule, stakeholders, clauses, prompts x candidates, expect
        ("one_row", ("null_optional",), "none", "weighted_sum", 1, 1, (1, 1), "completed"),
        ("one_prompt", ("all_tied", "same_text"), "ties", "utilitarian", 2, 2, (1, 3), "completed"),
        # b is null on every row and the contract scores it as 0 (on_null: default)
        ("one_candidate", ("all_vetoed", "null_inputs"), "empty", "nash_bargaining", 3, 3, (3, 1),
         "completed"),
        ("several", (), "random", "max_min", 4, 5, (3, 3), "completed"),
        # NaN inputs make NaN utilities: the scores suite ends the run, naming a row
        ("several", ("nan_inputs",), "random", "lexicographic", 2, 4, (2, 2), "DataQualityError"),
    ]
    out = []
    for i, (rows, modifiers, labels, rule, n, k, (prompts, candidates), expect) in enumerate(plan):
        chosen = clauses[:k] + (["needs_s: REQUIRES s"] if "all_vetoed" in modifiers else [])
        yaml = contract_yaml(rule, utilities_text[:n], [1.0] * n, [None] * n, chosen,
                             lex_order=list(range(n)), pairing=PAIRINGS[i % 3],
                             b_default=0.0 if "null_inputs" in modifiers else None)
        out.append(Case(rows, modifiers, labels, rule, yaml, n, prompts, candidates, i,
                        shard_rows=(1, 1_000)[i % 2], expect=expect))
    return out


EXPLICIT = _explicit()


def _with_examples(fn):
    for case in reversed(EXPLICIT):
        fn = example(case=case)(fn)
    return fn


@_with_examples
@given(case=cases())
@settings(max_examples=GENERATED, deadline=None,
          # shrinking re-runs the whole pipeline hundreds of times: report the example instead
          phases=(Phase.explicit, Phase.reuse, Phase.generate),
          suppress_health_check=(HealthCheck.too_slow, HealthCheck.function_scoped_fixture))
def test_edge_shapes_complete_or_end_in_one_line(prefect_harness: str, case: Case,
                                                 tmp_path_factory: pytest.TempPathFactory) -> None:
    # under pytest's base folder: a root runs may read and write (tests/conftest.py)
    with tempfile.TemporaryDirectory(prefix="edge-", dir=tmp_path_factory.getbasetemp()) as tmp:
        root = Path(tmp)
        contract = root / "contract.yaml"
        contract.write_text(case.contract_yaml, encoding="utf-8")
        rows = write_data(case, root / "data")
        run_id = f"edge-{case.rows}".replace("_", "-")
        params = ContractPipelineParams(
            contract=str(contract), data=str(root / "data"), run_id=run_id,
            lake_root=str(root / "lake"), dry_run=True, evaluation_resamples=20,
            config=PipelineConfig.model_validate(
                {"quality": {"max_failure_rate": case.max_failure_rate},
                 "scoring": {"shard_rows": case.shard_rows}, "dask": {"n_workers": 1}}))
        result, error = run_bounded(params, RUN_BOUND_S)
        check_outcome(case, root / "lake", run_id, rows, result, error)
