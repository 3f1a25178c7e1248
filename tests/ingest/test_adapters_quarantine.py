"""Adapter-level quarantine on mutated copies (JSONL, CSV, Parquet) and row conservation."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlhf_core.ingest.adapters import GenericAdapter, ingest, load_mapping

REPO = Path(__file__).resolve().parents[2]
MAPPINGS = REPO / "configs" / "mappings"


def _helpsteer_rows(shared: Path, n: int) -> list[dict]:
    lines = (
        (shared / "preferences" / "helpsteer_train500.jsonl")
        .read_text(encoding="utf-8")
        .splitlines()
    )
    return [json.loads(line) for line in lines[:n]]


def _csv_mapping(tmp_path: Path) -> Path:
    text = (
        (MAPPINGS / "helpsteer.yaml")
        .read_text(encoding="utf-8")
        .replace("format: jsonl", "format: csv")
    )
    path = tmp_path / "csv.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_bad_rows_are_quarantined(shared_data: Path, tmp_path: Path) -> None:
    rows = _helpsteer_rows(shared_data, 12)
    header = list(rows[0])
    out = [",".join(header).encode()]
    for row in rows:
        cells = ['"' + str(row[k]).replace('"', '""').replace("\n", " ") + '"' for k in header]
        out.append(",".join(cells).encode())
    out[3] = out[3].replace(
        b',"' + str(rows[2]["helpfulness"]).encode() + b'",', b',"high",', 1
    )  # line 4
    out[5] = out[5].replace(b'"', b'"\xff', 1)  # line 6: bad UTF-8
    out[7] = b'"only a prompt","and a response"'  # line 8: too few cells
    out[9] = b'"",' + out[9].split(b",", 1)[1]  # line 10: empty prompt cell
    path = tmp_path / "hs.csv"
    path.write_bytes(b"\n".join(out) + b"\n")
    result = GenericAdapter(_csv_mapping(tmp_path)).ingest(path, run_id="csv")
    got = dict(
        zip(
            result.quarantine["source_line"].to_pylist(),
            result.quarantine["rule"].to_pylist(),
            strict=True,
        )
    )
    assert got == {4: "wrong_type", 6: "bad_utf8", 8: "truncated_line", 10: "missing_field"}
    assert result.rows_read == 12 and result.rows_accepted == 8
    assert result.responses["source_line"].to_pylist() == [2, 3, 5, 7, 9, 11, 12, 13]
    assert result.responses["helpfulness"].to_pylist()[0] == float(rows[0]["helpfulness"])


def test_parquet_binary_text_and_wrong_types(shared_data: Path, tmp_path: Path) -> None:
    rows = _helpsteer_rows(shared_data, 10)
    responses = [r["response"].encode() for r in rows]
    responses[4] = b"\xc3\x28 invalid"  # row 5
    table = pa.table(
        {
            "prompt": [r["prompt"] for r in rows],
            "response": pa.array(responses, pa.binary()),
            **{
                k: [r[k] for r in rows]
                for k in ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
            },
        }
    )
    table = table.set_column(
        2, "helpfulness", pa.array([str(r["helpfulness"]) for r in rows])
    )  # all strings
    pq.write_table(table, tmp_path / "hs.parquet")
    mapping = load_mapping(MAPPINGS / "helpsteer.yaml").model_copy(update={"format": "parquet"})
    result = GenericAdapter(mapping).ingest(tmp_path / "hs.parquet", run_id="pq")
    # Parquet carries types: a string where a float is declared is a wrong type, not parsed.
    rules = result.quarantine["rule"].to_pylist()
    assert rules == ["wrong_type"] * 4 + ["bad_utf8"] + ["wrong_type"] * 5
    assert "field 'helpfulness' must be a number, got str" in result.quarantine["reason"][0].as_py()
    assert result.rows_accepted == 0 and result.rows_read == 10
    good = table.set_column(2, "helpfulness", pa.array([float(r["helpfulness"]) for r in rows]))
    pq.write_table(good, tmp_path / "hs2.parquet")
    result = GenericAdapter(mapping).ingest(tmp_path / "hs2.parquet", run_id="pq")
    assert result.quarantine["source_line"].to_pylist() == [5]
    assert result.quarantine["rule"].to_pylist() == ["bad_utf8"]
    assert result.responses.num_rows == 9


def test_pair_mapping_label_values(tmp_path: Path) -> None:
    lines = [
        {"q": "p1", "x": "a", "y": "b", "win": "x"},
        {"q": "p2", "x": "c", "y": "d", "win": "y"},
        {"q": "p3", "x": "e", "y": "f", "win": "draw"},
        {"q": "p4", "x": "g", "y": "h", "win": "?"},
    ]
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "source: mine\nformat: jsonl\nprompt: q\npair:\n  response_a: x\n  response_b: y\n"
        "  labels:\n    better: {column: win, a: x, b: y, tie: draw}\n",
        encoding="utf-8",
    )
    result = ingest(path, mapping=mapping, run_id="m")
    assert result.preferences["better"].to_pylist() == [1, -1, 0]
    assert result.quarantine["rule"].to_pylist() == ["out_of_range"]
    assert "unexpected value '?'" in result.quarantine["reason"][0].as_py()


_MUTATIONS = st.sampled_from(
    ["keep", "truncate", "garbage", "null_prompt", "bad_type", "bad_bytes", "surrogate", "blank"]
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=st.lists(_MUTATIONS, min_size=1, max_size=25))
def test_rows_are_conserved_under_any_mutation(
    shared_data: Path, tmp_path: Path, ops: list[str]
) -> None:
    base = _helpsteer_rows(shared_data, 25)
    lines: list[bytes] = []
    for record, op in zip(base, ops, strict=False):
        data = json.dumps(record).encode()
        if op == "truncate":
            data = data[: len(data) // 3]
        elif op == "garbage":
            data = b"[1, 2"
        elif op == "null_prompt":
            data = json.dumps({**record, "prompt": None}).encode()
        elif op == "bad_type":
            data = json.dumps({**record, "coherence": [1]}).encode()
        elif op == "bad_bytes":
            data = data.replace(b'"response": "', b'"response": "\xed\xa0\x80', 1)
        elif op == "surrogate":
            data = data.replace(b'"response": "', b'"response": "\\ud800', 1)
        elif op == "blank":
            data = b"   "
        lines.append(data)
    path = tmp_path / "mut.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = ingest(path, adapter="helpsteer", run_id="prop")
    expected_read = sum(op != "blank" for op in ops[: len(lines)])
    assert result.rows_read == expected_read
    assert result.rows_accepted + result.rows_quarantined == result.rows_read
    kept = set(result.responses["source_line"].to_pylist())
    dropped = set(result.quarantine["source_line"].to_pylist())
    assert not kept & dropped
    good = {i for i, op in enumerate(ops[: len(lines)], 1) if op == "keep"}
    assert kept == good


def test_ultrafeedback_message_lists_and_missing_assistant(tmp_path: Path) -> None:
    def chat(reply: str | None) -> list[dict]:
        messages = [{"role": "user", "content": "hi?"}]
        return messages + ([{"role": "assistant", "content": reply}] if reply is not None else [])

    lines = [
        {
            "prompt": "hi?",
            "chosen": chat("hello"),
            "rejected": chat("go away"),
            "metadata": {"score_chosen": 8, "score_rejected": 2},
        },
        {
            "prompt": "hi?",
            "chosen": chat("hey"),
            "rejected": chat("yo"),
            "metadata": {"score_chosen": 5, "score_rejected": 5},
        },
        {
            "prompt": "hi?",
            "chosen": chat(None),
            "rejected": chat("yo"),
            "metadata": {"score_chosen": 5, "score_rejected": 4},
        },
        {
            "prompt": "hi?",
            "chosen": chat("a"),
            "rejected": chat("b"),
            "metadata": {"score_chosen": "9"},
        },
    ]
    path = tmp_path / "uf.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    result = ingest(path, adapter="ultrafeedback", run_id="uf")
    assert result.responses["response"].to_pylist() == ["hello", "go away", "hey", "yo"]
    assert result.preferences["better"].to_pylist() == [1, 0]
    assert result.preferences["margin"].to_pylist() == [6.0, 0.0]
    assert result.quarantine["rule"].to_pylist() == ["missing_field", "wrong_type"]
    assert "no assistant message" in result.quarantine["reason"][0].as_py()


def test_generic_group_column_defines_prompts(tmp_path: Path) -> None:
    rows = [
        {"conv": 7, "q": "Hi", "a": "Hello", "stars": 5},
        {"conv": 7, "q": "Hi", "a": "Hey", "stars": 3},
        {"conv": 8, "q": "Hi", "a": "Hello", "stars": 1},
    ]
    path = tmp_path / "g.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    mapping = tmp_path / "g.yaml"
    mapping.write_text(
        "source: chats\nformat: jsonl\nprompt: q\nresponse: a\ngroup: conv\n"
        "attributes:\n  stars: {column: stars, dtype: int8}\n"
        "derive_pairs: {criterion: better, from: stars}\n",
        encoding="utf-8",
    )
    result = ingest(path, mapping=mapping, run_id="g")
    prompt_ids = result.responses["prompt_id"].to_pylist()
    # Same prompt text, different conversations: two prompts, and no duplicate ids.
    assert prompt_ids[0] == prompt_ids[1] != prompt_ids[2]
    assert len(set(result.responses["response_id"].to_pylist())) == 3
    assert result.responses.schema.field("stars").type == pa.int8()
    assert result.preferences.num_rows == 1
    assert result.preferences["better"].to_pylist() == [1]
    assert result.preferences["margin"].to_pylist() == [2.0]
