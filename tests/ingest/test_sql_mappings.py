"""SQL mappings: message trees and Hugging Face folders without code, in a sandbox that reads only
its source."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from rlhf_cli.main import app
from rlhf_core.errors import DataError
from rlhf_core.ingest.adapters.generic import GenericAdapter
from rlhf_core.ingest.adapters.sql_source import SqlMappingError, run_mapping_sql
from rlhf_core.lake.store import Lake
from tests.conftest import REPO_ROOT

MAPPINGS = REPO_ROOT / "configs" / "mappings"
LABELS = pa.struct([("name", pa.list_(pa.string())), ("value", pa.list_(pa.float64()))])


def _message_tree(path: Path) -> Path:
    """Two conversations in the message-tree layout, one of them two turns deep."""
    def msg(mid, parent, role, text, rank=None, labels=None):
        return {"message_id": mid, "parent_id": parent, "role": role, "text": text, "rank": rank,
                "labels": labels}

    rows = [
        msg("p1", None, "prompter", "How do I boil an egg?"),
        msg("a1", "p1", "assistant", "Boil it for nine minutes.", 0,
            {"name": ["toxicity", "quality"], "value": [0.0, 0.9]}),
        msg("a2", "p1", "assistant", "Microwave it whole.", 1,
            {"name": ["quality", "toxicity"], "value": [0.2, 0.1]}),
        msg("a3", "p1", "assistant", "Unranked draft reply.", None,
            {"name": ["quality", "toxicity"], "value": [0.5, 0.0]}),
        msg("p2", "a1", "prompter", "And a soft one?"),  # a second turn below a reply
        msg("a4", "p2", "assistant", "Six minutes.", 0,
            {"name": ["quality", "toxicity"], "value": [0.8, 0.0]}),
        msg("a5", "p2", "assistant", "Never boil eggs.", 1,
            {"name": ["quality", "toxicity"], "value": [0.1, 0.3]}),
    ]
    schema = pa.schema([("message_id", pa.string()), ("parent_id", pa.string()),
                        ("role", pa.string()), ("text", pa.string()), ("rank", pa.int32()),
                        ("labels", LABELS)])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


def test_message_tree_mapping_flattens_replies_and_reads_labels_by_position(tmp_path: Path) -> None:
    source = _message_tree(tmp_path / "messages.parquet")
    result = GenericAdapter(MAPPINGS / "message_tree.yaml").ingest(source, run_id="tree-1")
    responses = {r["response"]: r for r in result.responses.to_pylist()}
    assert set(responses) == {"Boil it for nine minutes.", "Microwave it whole.", "Six minutes.",
                              "Never boil eggs."}  # the unranked draft is not a response
    assert responses["Six minutes."]["prompt"] == "And a soft one?"  # parent's text, not the root's
    assert responses["Boil it for nine minutes."]["quality"] == pytest.approx(0.9)  # position 2
    assert responses["Microwave it whole."]["quality"] == pytest.approx(0.2)  # position 1
    assert responses["Never boil eggs."]["toxicity"] == pytest.approx(0.3)
    # rank 0 beats rank 1 under each parent: the better reply wins its pair, on whichever side
    by_id = {r["response_id"]: r["response"] for r in result.responses.to_pylist()}
    winners = set()
    for pair in result.preferences.to_pylist():
        a, b = by_id[pair["response_a_id"]], by_id[pair["response_b_id"]]
        assert pair["better"] in (1, -1)
        winners.add(a if pair["better"] == 1 else b)
    assert result.preferences.num_rows == 2
    assert winners == {"Boil it for nine minutes.", "Six minutes."}


def _hf_folder(tmp_path: Path, shared_data: Path) -> tuple[Path, int]:
    """A Hugging Face dataset folder in chat layout built from the real UltraFeedback sample."""
    rows = [json.loads(line) for line in (shared_data / "preferences" /
                                          "ultrafeedback_binarized_train1000.jsonl").open()]

    def chat(prompt: str, answer: str) -> list[dict[str, str]]:
        return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]

    records = [{"prompt": r["prompt"], "chosen": chat(r["prompt"], r["chosen"]),
                "rejected": chat(r["prompt"], r["rejected"]),
                "score_chosen": float(r["metadata"]["score_chosen"]),
                "score_rejected": float(r["metadata"]["score_rejected"])} for r in rows]
    data = tmp_path / "hf" / "data"
    data.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(records[:600]), data / "train_prefs-00000-of-00002.parquet")
    pq.write_table(pa.Table.from_pylist(records[600:900]), data / "train_prefs-00001-of-00002.parquet")
    pq.write_table(pa.Table.from_pylist(records[900:]), data / "test_prefs-00000-of-00001.parquet")
    return data.parent, len(rows)


def test_huggingface_folder_mapping_matches_the_flat_mapping_on_the_same_rows(
        tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder, _ = _hf_folder(tmp_path, shared_data)
    monkeypatch.setenv("RLHF_WIZARD_HOME", str(tmp_path / "lake"))
    runner = CliRunner()
    reply = runner.invoke(app, ["data", "ingest", str(shared_data / "preferences" /
                                                      "ultrafeedback_binarized_train1000.jsonl"),
                                "--mapping", str(MAPPINGS / "ultrafeedback_pairs.yaml"),
                                "--run-id", "flat", "--json"])
    assert reply.exit_code == 0, reply.output
    flat = Lake(tmp_path / "lake").read_table("responses", run_id="flat")
    reply = runner.invoke(app, ["data", "ingest", str(folder), "--mapping",
                                str(MAPPINGS / "hf_ultrafeedback.yaml"), "--run-id", "hf-train",
                                "--json"])
    assert reply.exit_code == 0, reply.output
    train = Lake(tmp_path / "lake").read_table("responses", run_id="hf-train")
    reply = runner.invoke(app, ["data", "ingest", str(folder), "--mapping",
                                str(MAPPINGS / "hf_ultrafeedback.yaml"), "--split", "test_prefs",
                                "--run-id", "hf-test", "--json"])
    assert reply.exit_code == 0, reply.output
    test = Lake(tmp_path / "lake").read_table("responses", run_id="hf-test")
    # both shards of the train split, then the test split: together the same responses as the
    # flat file read without SQL (same texts, same scores)
    combined = train.column("response_id").to_pylist() + test.column("response_id").to_pylist()
    assert train.num_rows > test.num_rows > 0
    assert sorted(combined) == sorted(flat.column("response_id").to_pylist())
    scores = dict(zip(flat.column("response_id").to_pylist(),
                      flat.column("score").to_pylist(), strict=True))
    for rid, score in zip(train.column("response_id").to_pylist(),
                          train.column("score").to_pylist(), strict=True):
        assert scores[rid] == pytest.approx(score)

    with pytest.raises(DataError, match=r"no data/validation-\*\.parquet.*test_prefs, train_prefs"):
        GenericAdapter(MAPPINGS / "hf_ultrafeedback.yaml", split="validation").ingest(folder, run_id="x")


SOURCE = pa.table({"prompt": ["p1", "p2"], "response": ["r1", "r2"]})


@pytest.mark.parametrize("sql", [
    "COPY (SELECT * FROM source) TO '{out}'",
    "ATTACH '{out}' AS other",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "PRAGMA database_list",
    "CREATE TABLE stolen AS SELECT * FROM source",
    "SELECT * FROM source; SELECT 1",
    "DELETE FROM source",
])
def test_statements_other_than_one_select_are_refused_before_running(sql: str, tmp_path: Path) -> None:
    out = tmp_path / "out.db"
    with pytest.raises(SqlMappingError, match=r"^my-mapping\.yaml: sql: must be exactly one SELECT"):
        run_mapping_sql(SOURCE, sql.format(out=out), "my-mapping.yaml")
    assert not out.exists()


@pytest.mark.parametrize("sql", [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM '{secret}'",
    "SELECT * FROM read_parquet('{secret}')",
    "SELECT * FROM source UNION ALL SELECT content, content FROM read_text('{secret}')",
])
def test_the_query_can_read_nothing_but_its_source(sql: str, tmp_path: Path) -> None:
    secret = tmp_path / "secret.parquet"
    pq.write_table(pa.table({"prompt": ["leak"], "response": ["leak"]}), secret)
    with pytest.raises(SqlMappingError, match=r"^m\.yaml: sql: refused: .*read only the view 'source'"):
        run_mapping_sql(SOURCE, sql.format(secret=secret), "m.yaml")


def test_a_good_query_runs_and_a_bad_one_names_the_mapping_file() -> None:
    out = run_mapping_sql(SOURCE, "WITH s AS (SELECT * FROM source) SELECT upper(prompt) AS prompt "
                                  "FROM s ORDER BY 1", "m.yaml")
    assert out.column("prompt").to_pylist() == ["P1", "P2"]
    with pytest.raises(SqlMappingError, match=r"^m\.yaml: sql: .*nope.*fix the query"):
        run_mapping_sql(SOURCE, "SELECT nope FROM source", "m.yaml")


def test_a_runaway_query_is_interrupted_at_its_deadline() -> None:
    big = pa.table({"x": list(range(20_000))})
    with pytest.raises(SqlMappingError, match=r"still running after 1 s \(interrupted\)"):
        run_mapping_sql(big, "SELECT count(*) FROM source a, source b, source c WHERE a.x + b.x "
                             "+ c.x = -1", "m.yaml", timeout_s=1.0)
