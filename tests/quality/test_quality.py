"""Quality gates: GX suites, row-level quarantine, conservation and the failure-rate threshold."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlhf_core.errors import DataQualityError, SchemaMismatchError
from rlhf_core.ingest.adapters import ingest
from rlhf_core.ingest.gate import gate_ingest
from rlhf_core.ingest.generator import generate_table
from rlhf_core.lake.catalog import QUARANTINE_SCHEMA
from rlhf_core.quality.gx import QualityGateError, check_table


def _conserved(table: pa.Table, result) -> None:
    assert result.accepted.num_rows + result.quarantined.num_rows == table.num_rows
    assert result.quarantined.schema == QUARANTINE_SCHEMA


def test_real_files_pass_except_known_empty_replies(shared_data: Path) -> None:
    prefs = shared_data / "preferences"
    gated = gate_ingest(
        ingest(prefs / "pku_saferlhf_train500.jsonl", adapter="pku_saferlhf", run_id="r"),
        run_id="r",
    )
    assert (gated.responses.num_rows, gated.preferences.num_rows, gated.quarantine.num_rows) == (
        997,
        500,
        0,
    )
    gated = gate_ingest(
        ingest(
            prefs / "ultrafeedback_binarized_train1000.jsonl", adapter="ultrafeedback", run_id="r"
        ),
        run_id="r",
    )
    # Upstream UltraFeedback has two empty replies; their pairs then dangle.
    rules = gated.quarantine.column("rule").to_pylist()
    assert rules.count("empty_text") == 2 and rules.count("dangling_reference") == 2
    assert rules.count("identical_responses") == 4
    assert (gated.responses.num_rows, gated.preferences.num_rows) == (1990, 994)
    assert gated.summary["responses"]["success"] is False


def test_generated_data_passes_every_rule() -> None:
    table = generate_table(5_000, seed=2)
    result = check_table("responses", table, run_id="gen")
    assert result.quarantined.num_rows == 0
    assert result.accepted.equals(table)
    assert result.suite_result["success"] is True
    assert len(result.suite_result["expectations"]) >= 12


def _write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_mutated_helpsteer_every_bad_row_quarantined(shared_data: Path, tmp_path: Path) -> None:
    source = (shared_data / "preferences" / "helpsteer_train500.jsonl").read_bytes().splitlines()
    lines = list(source[:60])
    records = [json.loads(line) for line in lines]

    def put(line_no: int, **changes: object) -> None:
        record = dict(records[line_no - 1], **changes)
        lines[line_no - 1] = json.dumps(record).encode()

    put(3, helpfulness=None)  # null required attribute
    put(5, helpfulness=9)  # out of range
    lines[6] = lines[6][: len(lines[6]) // 2]  # truncated line 7
    lines[8] = lines[8].replace(b'"response": "', b'"response": "\xff\xfe', 1)  # bad UTF-8, line 9
    put(11, prompt="   ")  # empty text
    put(13, response="nul\u0000byte")  # NUL in text
    put(15, correctness="high")  # wrong type
    lines[16] = b"{this is not json}"  # bad JSON, line 17
    put(19, prompt=None)  # null prompt
    put(21, verbosity=-1)  # out of range
    expected = {
        3: "missing_field",
        5: "out_of_range",
        7: "truncated_line",
        9: "bad_utf8",
        11: "empty_text",
        13: "non_utf8_text",
        15: "wrong_type",
        17: "bad_json",
        19: "missing_field",
        21: "out_of_range",
    }
    path = _write_lines(tmp_path / "hs.jsonl", lines)
    result = ingest(path, adapter="helpsteer", run_id="mut")
    gated = gate_ingest(result, run_id="mut", max_failure_rate=0.5)
    rows = gated.quarantine.to_pylist()
    got = {q["source_line"]: q["rule"] for q in rows if q["table"] != "preferences"}
    assert got == expected
    # Derived within-prompt pairs touching a quarantined response are quarantined too.
    dangling = [q for q in rows if q["table"] == "preferences"]
    assert dangling and {q["rule"] for q in dangling} == {"dangling_reference"}
    assert gated.preferences.num_rows + len(dangling) == result.preferences.num_rows
    reasons = {q["source_line"]: q["reason"] for q in rows if q["table"] != "preferences"}
    assert "helpfulness" in reasons[3] and "helpfulness=9.0 is outside [0, 4]" in reasons[5]
    assert "correctness" in reasons[15] and "verbosity=-1.0" in reasons[21]
    kept = gated.responses["source_line"].to_pylist()
    assert kept == [n for n in range(1, 61) if n not in expected]
    # Conservation per stage and overall (one response per HelpSteer line).
    assert result.rows_read == 60 == result.rows_accepted + result.rows_quarantined
    assert gated.responses.num_rows + len(rows) - len(dangling) == 60
    raw = json.loads(
        gated.quarantine.filter(pa.compute.equal(gated.quarantine["source_line"], 5))["record"][
            0
        ].as_py()
    )
    assert raw["helpfulness"] == 9.0


def test_mutated_pku_duplicates_severity_and_dangling(shared_data: Path, tmp_path: Path) -> None:
    source = (shared_data / "preferences" / "pku_saferlhf_train500.jsonl").read_bytes().splitlines()
    lines = list(source[:40])
    record = json.loads(lines[1])
    record["response_0_severity_level"] = 7  # line 2: out of range -> response and its pair
    lines[1] = json.dumps(record).encode()
    record = json.loads(lines[3])
    record["is_response_1_safe"] = not record["is_response_1_safe"]  # line 4: inconsistent safety
    lines[3] = json.dumps(record).encode()
    lines.append(lines[9])  # line 41 duplicates line 10 -> duplicate pair id
    path = _write_lines(tmp_path / "pku.jsonl", lines)
    result = ingest(path, adapter="pku_saferlhf", run_id="mut")
    assert result.rows_read == 41 and result.rows_quarantined == 0
    gated = gate_ingest(result, run_id="mut", max_failure_rate=0.2)
    quarantine = gated.quarantine.to_pylist()
    by_table = {(q["table"], q["source_line"]): q["rule"] for q in quarantine}
    assert by_table == {
        ("responses", 2): "out_of_range",
        ("responses", 4): "inconsistent_safety",
        ("preferences", 2): "dangling_reference",
        ("preferences", 4): "dangling_reference",
        ("preferences", 41): "duplicate_id",
    }
    assert gated.preferences.num_rows == 41 - 3
    assert sorted(gated.preferences["source_line"].to_pylist()) == [
        n for n in range(1, 41) if n not in (2, 4)
    ]
    assert gated.responses.num_rows + 2 == result.responses.num_rows


def test_duplicate_response_ids_keep_first() -> None:
    table = generate_table(1_000, seed=4)
    doubled = pa.concat_tables([table, table.slice(10, 5)])
    result = check_table("responses", doubled, run_id="dup")
    _conserved(doubled, result)
    assert result.accepted.equals(table)
    assert result.quarantined["rule"].to_pylist() == ["duplicate_id"] * 5
    assert result.quarantined["source_line"].to_pylist() == list(range(11, 16))


def test_non_utf8_binary_text_is_quarantined() -> None:
    table = generate_table(100, seed=4)
    response = [s.encode() for s in table["response"].to_pylist()]
    response[7] = b"caf\xe9 latin-1"
    binary = table.set_column(3, "response", pa.array(response, pa.binary()))
    result = check_table("responses", binary, run_id="utf")
    _conserved(binary, result)
    assert result.quarantined["rule"].to_pylist() == ["non_utf8_text"]
    assert result.quarantined["source_line"].to_pylist() == [8]


def test_scores_suite_is_generic_over_utility_columns() -> None:
    n = 6
    scores = pa.table(
        {
            "prompt_id": [f"p{i // 2}" for i in range(n)],
            "response_id": [f"r{i}" for i in range(n - 1)] + ["r0"],
            "reward": [0.1, math.inf, 0.3, 0.4, 0.5, 0.6],
            "veto": [False, False, True, None, False, False],
            "penalty": [0.0] * n,
            "u_helpful": [1.0, 1.0, math.nan, 1.0, 1.0, 1.0],
            "u_safety": [1.0] * n,
        }
    )
    result = check_table("scores", scores, run_id="s", max_failure_rate=1.0)
    _conserved(scores, result)
    rules = dict(
        zip(
            result.quarantined["record"].to_pylist(),
            result.quarantined["rule"].to_pylist(),
            strict=True,
        )
    )
    assert sorted(rules.values()) == ["duplicate_id", "non_finite", "non_finite", "null_required"]
    columns = {e["column"] for e in result.suite_result["expectations"]}
    assert {"u_helpful", "u_safety"} <= columns
    assert result.accepted["response_id"].to_pylist() == ["r0", "r4"]


def test_failure_rate_threshold_raises_with_top_reasons() -> None:
    table = generate_table(80, seed=9)
    helpfulness = table["helpfulness"].to_pylist()
    for i in range(0, 80, 3):  # 27 of 80 rows = 33.8 %
        helpfulness[i] = 5.5
    bad = table.set_column(
        table.schema.get_field_index("helpfulness"),
        "helpfulness",
        pa.array(helpfulness, pa.float32()),
    )
    with pytest.raises(QualityGateError) as info:
        check_table("responses", bad, run_id="run-42", max_failure_rate=0.05)
    message = str(info.value)
    assert (
        "ingest run run-42: 33.8% of 80 responses rows failed quality (threshold 5.0%)" in message
    )
    assert "out_of_range (27)" in message
    assert isinstance(info.value, DataQualityError)
    assert info.value.result.quarantined.num_rows == 27
    assert check_table(
        "responses", bad, run_id="run-42", max_failure_rate=0.5
    ).failure_rate == pytest.approx(27 / 80)


def test_missing_required_column_is_a_schema_error() -> None:
    table = generate_table(10, seed=1).drop_columns(["prompt"])
    with pytest.raises(SchemaMismatchError, match="responses table has no column 'prompt'"):
        check_table("responses", table, run_id="x")


def test_quarantine_suite_accepts_adapter_quarantine(shared_data: Path) -> None:
    result = ingest(
        shared_data / "preferences" / "hh_helpful_train500.jsonl", adapter="hh_rlhf", run_id="q"
    )
    checked = check_table("quarantine", result.quarantine, run_id="q")
    assert checked.accepted.num_rows == 1 and checked.quarantined.num_rows == 0


@pytest.mark.parametrize(
    ("column", "values", "needs"),
    [
        ("helpfulness", ["high"] * 10, "rule out_of_range needs a number"),
        ("is_safe", [1] * 10, "rule inconsistent_safety needs a boolean"),
        ("prompt", list(range(10)), "rule empty_text needs text"),
    ],
)
def test_wrong_typed_column_is_a_schema_error(column: str, values: list, needs: str) -> None:
    table = generate_table(10, seed=1)
    table = table.set_column(table.schema.get_field_index(column), column, pa.array(values))
    with pytest.raises(
        SchemaMismatchError, match=f"responses column '{column}' has type .*{needs}"
    ):
        check_table("responses", table, run_id="x")


def test_large_table_path_matches_whole_table_gx() -> None:
    """GX on a prefix + flagged rows gives the same split as GX on every row."""
    table = generate_table(3_000, seed=8)
    helpfulness = table["helpfulness"].to_pylist()
    for i in (5, 1_700, 2_999):
        helpfulness[i] = 7.0
    table = table.set_column(
        table.schema.get_field_index("helpfulness"),
        "helpfulness",
        pa.array(helpfulness, pa.float32()),
    )
    table = pa.concat_tables([table, table.slice(2_500, 3)])  # later duplicates of rows 2500-2502
    whole = check_table("responses", table, run_id="big", max_failure_rate=1.0)
    sampled = check_table("responses", table, run_id="big", max_failure_rate=1.0, gx_max_rows=100)
    assert sampled.accepted.equals(whole.accepted)
    assert sampled.quarantined.equals(whole.quarantined)
    assert whole.suite_result["gx_rows_validated"] == 3_003
    assert (
        sampled.suite_result["gx_rows_validated"] == 100 + 2 + 6
    )  # prefix, 2 late bad rows, dup ids
    assert whole.quarantined["rule"].to_pylist() == ["out_of_range"] * 3 + ["duplicate_id"] * 3


_TEXT = st.sampled_from(["ok", "", "  ", "\u3000", "\x1c", "tab\tbed", "nul\x00", "x\n"])
_RATING = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True, width=32))


@settings(max_examples=10, deadline=None)
@given(
    data=st.lists(
        st.tuples(
            st.integers(0, 6),
            _TEXT,
            _RATING,
            st.one_of(st.none(), st.booleans()),
            st.integers(-1, 4),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_gx_and_arrow_agree_and_rows_are_conserved(data: list[tuple]) -> None:
    """check_table raises if GX and the Arrow predicates disagree; random rows must not."""
    table = generate_table(len(data), seed=0)
    columns = {
        "response_id": pa.array([f"r{d[0]}" for d in data]),
        "response": pa.array([d[1] for d in data]),
        "helpfulness": pa.array([d[2] for d in data], pa.float32()),
        "is_safe": pa.array([d[3] for d in data], pa.bool_()),
        "severity": pa.array([d[4] for d in data], pa.int8()),
    }
    for name, values in columns.items():
        table = table.set_column(table.schema.get_field_index(name), name, values)
    result = check_table("responses", table, run_id="prop", max_failure_rate=1.0)
    _conserved(table, result)
    kept = result.accepted["response_id"].to_pylist()
    assert len(kept) == len(set(kept))


def test_responses_quarantined_for_null_contract_inputs_count_against_the_threshold() -> None:
    """Edge-shape regressions: a contract input null on every row quarantined every response, but
    only the suite's own share was checked, so the gate blamed the *pairs* ('100% of preferences
    rows failed: dangling_reference') or, without labels or under a 100 % threshold, passed zero
    responses on to scoring (where the Pareto stage failed: 'argmax of an empty sequence')."""
    from rlhf_core.ingest.adapters.base import IngestResult
    from rlhf_core.ingest.nulls import RULE, NullInput
    from rlhf_core.lake.schemas import preferences_schema

    def with_nulls(n_null: int, n: int = 8) -> IngestResult:
        table = generate_table(max(n, 1), seed=3).slice(0, n)
        helpful = pa.array([None] * n_null + [2.0] * (n - n_null), pa.float32())
        table = table.set_column(table.schema.get_field_index("helpfulness"), "helpfulness", helpful)
        return IngestResult(table, preferences_schema([]).empty_table(),
                            QUARANTINE_SCHEMA.empty_table(), n, n)

    policy = [NullInput("helpfulness")]
    with pytest.raises(DataQualityError, match=rf"50.0% of 8 responses rows .*{RULE} \(4\)") as err:
        gate_ingest(with_nulls(4), run_id="nulls", null_inputs=policy)
    assert "\n" not in str(err.value) and err.value.quarantine.num_rows == 4
    half = gate_ingest(with_nulls(4), run_id="nulls", max_failure_rate=0.5, null_inputs=policy)
    assert half.responses.num_rows == 4 and half.quarantine.num_rows == 4
    # Even a threshold of 100 % leaves nothing to score: the gate says so.
    with pytest.raises(DataQualityError, match=rf"all 8 responses failed .*{RULE} \(8\).*nothing is left"):
        gate_ingest(with_nulls(8), run_id="nulls", max_failure_rate=1.0, null_inputs=policy)
    with pytest.raises(DataQualityError, match="no responses were read") as err:
        gate_ingest(with_nulls(0, n=0), run_id="empty", max_failure_rate=1.0)
    assert "\n" not in str(err.value)
    assert gate_ingest(with_nulls(0, n=1), run_id="one").responses.num_rows == 1  # one row is enough


def test_a_failing_scores_suite_names_a_row_and_the_upstream_cause() -> None:
    """Edge-shape regression: NaN inputs gave 'ingest run r: ... scores rows failed quality
    (threshold 0.0%) ... inspect them with `rlhf-wizard data quarantine` ... or raise the
    threshold', advice that cannot work for derived rows (never quarantined, no threshold)."""
    inf_first = pa.array([math.inf, 0.5], pa.float32())  # (a NaN reward fails null_required first)
    scores = pa.table({"prompt_id": ["p0", "p0"], "response_id": ["r0", "r1"],
                       "reward": inf_first, "veto": [False, False],
                       "penalty": pa.array([0.0, 0.0], pa.float32()), "u_only": inf_first})
    with pytest.raises(QualityGateError) as err:
        check_table("scores", scores, run_id="nan-run", max_failure_rate=0.0)
    message = str(err.value)
    assert message.startswith("run nan-run: 50.0% of 2 scores rows failed quality: top reasons: "
                              "non_finite (1); e.g. reward=inf is not a finite number")
    assert "e.g. reward=inf is not a finite number" in message and "contract lint" in message
    assert "quarantine" not in message and "threshold" not in message and "\n" not in message
    nan_first = pa.array([math.nan, 0.5], pa.float32())  # NaN, not null: GX counts it as null
    with pytest.raises(QualityGateError, match="e.g. required field 'reward' is null or NaN"):
        check_table("scores", scores.set_column(2, "reward", nan_first), run_id="nan-run",
                    max_failure_rate=0.0)
