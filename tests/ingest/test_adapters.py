"""Every adapter on the real files in ../shared/data, with exact row counts."""

from __future__ import annotations

import json
from collections import Counter
from itertools import combinations
from pathlib import Path

import pyarrow as pa
import pytest

from rlhf_core.errors import DataError
from rlhf_core.ingest.adapters import ADAPTER_NAMES, GenericAdapter, get_adapter, ingest
from rlhf_core.lake.catalog import QUARANTINE_SCHEMA
from rlhf_core.lake.schemas import HARM_COLUMNS, content_id

REPO = Path(__file__).resolve().parents[2]
HELPSTEER_MAPPING = REPO / "configs" / "mappings" / "helpsteer.yaml"


def _pref(shared: Path, name: str) -> Path:
    return shared / "preferences" / name


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_registry_lists_every_adapter() -> None:
    assert set(ADAPTER_NAMES) == {
        "helpsteer",
        "pku_saferlhf",
        "ultrafeedback",
        "hh_rlhf",
        "generic",
    }
    with pytest.raises(DataError, match="unknown adapter 'oasst'"):
        get_adapter("oasst")
    with pytest.raises(DataError, match="needs a mapping file"):
        get_adapter("generic")


def test_helpsteer_real_file(shared_data: Path) -> None:
    path = _pref(shared_data, "helpsteer_train500.jsonl")
    result = ingest(path, adapter="helpsteer", run_id="run-hs")
    responses = result.responses
    assert (result.rows_read, result.rows_accepted, result.rows_quarantined) == (500, 500, 0)
    assert responses.num_rows == 500
    assert len(set(responses["prompt_id"].to_pylist())) == 139
    assert len(set(responses["response_id"].to_pylist())) == 500
    # 28 rows repeat an earlier (prompt, response) text: detected, kept as separate samples.
    assert result.duplicates == 28
    assert responses.schema.field("helpfulness").type == pa.float32()
    raw = _lines(path)
    assert responses["helpfulness"].to_pylist() == [float(r["helpfulness"]) for r in raw]
    assert responses["source_line"].to_pylist() == list(range(1, 501))
    # Preferences: every within-prompt pair of distinct texts, labelled by helpfulness.
    by_prompt: dict[str, list[dict]] = {}
    for row in raw:
        by_prompt.setdefault(row["prompt"], []).append(row)
    expected = [
        (a["helpfulness"] > b["helpfulness"]) - (a["helpfulness"] < b["helpfulness"])
        for rows in by_prompt.values()
        for a, b in combinations(rows, 2)
        if a["response"] != b["response"]
    ]
    prefs = result.preferences
    assert prefs.num_rows == len(expected) == 647
    assert prefs["better"].to_pylist() == expected
    assert Counter(expected)[0] == 260  # ties kept, label 0
    ids = set(responses["response_id"].to_pylist())
    assert set(prefs["response_a_id"].to_pylist()) <= ids
    assert set(prefs["response_b_id"].to_pylist()) <= ids


def test_pku_real_file(shared_data: Path) -> None:
    path = _pref(shared_data, "pku_saferlhf_train500.jsonl")
    result = ingest(path, adapter="pku_saferlhf", run_id="run-pku")
    assert (result.rows_read, result.rows_accepted, result.rows_quarantined) == (500, 500, 0)
    # 1000 response slots, 3 are the same (prompt, text) as an earlier row: shared, not repeated.
    assert result.responses.num_rows == 997
    assert result.duplicates == 3
    assert len(set(result.responses["prompt_id"].to_pylist())) == 490
    prefs = result.preferences
    assert prefs.num_rows == 500
    disagree = sum(
        b != s for b, s in zip(prefs["better"].to_pylist(), prefs["safer"].to_pylist(), strict=True)
    )
    assert disagree == 117
    raw = _lines(path)
    assert prefs["better"].to_pylist() == [1 if r["better_response_id"] == 0 else -1 for r in raw]
    assert set(HARM_COLUMNS) <= set(result.responses.column_names)
    assert len(HARM_COLUMNS) == 19
    first = result.responses.slice(0, 1).to_pylist()[0]
    assert first["is_safe"] is raw[0]["is_response_0_safe"]
    assert first["severity"] == raw[0]["response_0_severity_level"]
    assert first["harm_violence"] is raw[0]["response_0_harm_category"]["Violence"]
    # Safe responses have severity 0, unsafe ones 1-3.
    for safe, severity in zip(
        result.responses["is_safe"].to_pylist(),
        result.responses["severity"].to_pylist(),
        strict=True,
    ):
        assert (severity == 0) == safe


def test_ultrafeedback_real_file(shared_data: Path) -> None:
    path = _pref(shared_data, "ultrafeedback_binarized_train1000.jsonl")
    result = ingest(path, adapter="ultrafeedback", run_id="run-uf")
    assert result.rows_read == 1000
    # 4 rows have chosen == rejected text: no preference, quarantined with the reason.
    assert result.quarantine["source_line"].to_pylist() == [307, 656, 911, 998]
    assert set(result.quarantine["rule"].to_pylist()) == {"identical_responses"}
    assert result.rows_accepted == 996
    prefs = result.preferences
    assert prefs.num_rows == 996
    raw = _lines(path)
    ties = sum(r["metadata"]["score_chosen"] == r["metadata"]["score_rejected"] for r in raw)
    assert ties == 111  # one tie (line 307) is among the identical pairs
    assert Counter(prefs["better"].to_pylist()) == {1: 886, 0: 110}
    kept = [r for i, r in enumerate(raw, 1) if i not in (307, 656, 911, 998)]
    assert prefs["margin"].to_pylist() == [
        r["metadata"]["score_chosen"] - r["metadata"]["score_rejected"] for r in kept
    ]
    assert result.responses.num_rows == 1992
    assert result.responses.schema.field("score").type == pa.float32()


@pytest.mark.parametrize(
    ("name", "bad_line", "prompts"),
    [("hh_helpful_train500.jsonl", 366, 499), ("hh_harmless_train500.jsonl", 330, 498)],
)
def test_hh_real_files(shared_data: Path, name: str, bad_line: int, prompts: int) -> None:
    path = _pref(shared_data, name)
    result = ingest(path, adapter="hh_rlhf", run_id="run-hh")
    assert result.rows_read == 500
    # One upstream row whose rejected reply embeds a fake Human turn: prompts differ.
    assert result.quarantine["source_line"].to_pylist() == [bad_line]
    assert result.quarantine["rule"].to_pylist() == ["prompt_mismatch"]
    assert result.preferences.num_rows == 499
    assert result.responses.num_rows == 998
    assert len(set(result.responses["prompt_id"].to_pylist())) == prompts
    assert set(result.preferences["better"].to_pylist()) == {1}
    first = _lines(path)[0]
    cut = first["chosen"].rfind("\n\nAssistant:")
    row = result.responses.slice(0, 1).to_pylist()[0]
    assert row["prompt"] == first["chosen"][:cut]
    assert row["response"] == first["chosen"][cut + len("\n\nAssistant:") :].lstrip()
    assert row["prompt_id"] == content_id("hh_rlhf", row["prompt"])


def test_generic_mapping_reproduces_helpsteer(shared_data: Path) -> None:
    path = _pref(shared_data, "helpsteer_train500.jsonl")
    builtin = ingest(path, adapter="helpsteer", run_id="run-x")
    generic = GenericAdapter(HELPSTEER_MAPPING).ingest(path, run_id="run-x")
    assert generic.responses.schema == builtin.responses.schema
    assert generic.responses.equals(builtin.responses)
    assert generic.preferences.equals(builtin.preferences)


def test_generic_csv_and_parquet_agree_with_jsonl(shared_data: Path, tmp_path: Path) -> None:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    path = _pref(shared_data, "helpsteer_train500.jsonl")
    table = pa.Table.from_pylist(_lines(path))
    pacsv.write_csv(table, tmp_path / "hs.csv")
    pq.write_table(table, tmp_path / "hs.parquet")
    text = HELPSTEER_MAPPING.read_text(encoding="utf-8")
    reference = ingest(path, mapping=HELPSTEER_MAPPING, run_id="r").responses
    for fmt, name in (("csv", "hs.csv"), ("parquet", "hs.parquet")):
        mapping = tmp_path / f"{fmt}.yaml"
        mapping.write_text(text.replace("format: jsonl", f"format: {fmt}"), encoding="utf-8")
        result = ingest(tmp_path / name, mapping=mapping, run_id="r")
        assert result.rows_quarantined == 0
        got = result.responses.drop_columns(["source_line"])
        assert got.equals(reference.drop_columns(["source_line"])), fmt


def test_reingest_is_idempotent(shared_data: Path) -> None:
    path = _pref(shared_data, "pku_saferlhf_train500.jsonl")
    first = ingest(path, adapter="pku_saferlhf", run_id="r")
    second = ingest(path, adapter="pku_saferlhf", run_id="r")
    assert first.responses.equals(second.responses)
    assert first.preferences.equals(second.preferences)
    assert first.quarantine.schema == QUARANTINE_SCHEMA


def test_bad_mapping_names_the_key(tmp_path: Path) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text("source: x\nformat: xlsx\nprompt: p\nresponse: r\n", encoding="utf-8")
    with pytest.raises(DataError, match="mapping key 'format'"):
        GenericAdapter(mapping)
