"""Conversations: the prompt as every turn before the response (``prompt_messages``), next to
its rendered text.

* HH-RLHF dialogues keep every turn (real data; turns counted here independently of the adapter);
* single-turn adapters carry one user turn;
* the generic mapping reads chat-format columns (``messages``, ``pair.messages_a/b``), quarantines
  malformed conversations with exact counts, and refuses bad mappings in one line naming the file;
* contracts see the same columns: ``len(prompt)`` and quantifiers score a table that carries the
  list column, and the JAX and SQL compilations agree on it;
* the ``trl-conversational`` export keeps multi-turn prompts. TRL's conversational preference
  format (https://huggingface.co/docs/trl/dataset_formats, "Conversational" / "Preference"):
  ``prompt`` is a list of ``{"role", "content"}`` messages, ``chosen`` / ``rejected`` lists of
  assistant messages.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rlhf_core.contract import load_contract
from rlhf_core.errors import DataError
from rlhf_core.ingest.adapters import ingest
from rlhf_core.ingest.adapters.generic import GenericAdapter
from rlhf_core.ingest.adapters.hh_rlhf import HhRlhfAdapter
from rlhf_core.ingest.adapters.mapping import load_mapping
from rlhf_core.ingest.write import write_ingest
from rlhf_core.lake.catalog import PAIRS_SCHEMA, Table
from rlhf_core.lake.store import Lake
from rlhf_core.optimize.export import export_pairs
from rlhf_core.scoring.score import score_sql, score_table
from tests.conftest import REPO_ROOT

CONVERSATION_TYPE = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))


@pytest.fixture(scope="module")
def hh(shared_data: Path):
    """The real HH-RLHF helpful-base sample through the built-in adapter."""
    path = shared_data / "preferences" / "hh_helpful_train500.jsonl"
    return path, HhRlhfAdapter().ingest(path, run_id="hh-turns")


def _turns_by_scanning(prompt: str) -> list[tuple[str, str]]:
    """(speaker, text) of every ``\\n\\nHuman:`` / ``\\n\\nAssistant:`` turn, found by scanning."""
    marks = {"\n\nHuman:": "user", "\n\nAssistant:": "assistant"}
    found, start = [], 0
    while True:
        hits = [(at, m) for m in marks if (at := prompt.find(m, start)) >= 0]
        if not hits:
            break
        at, mark = min(hits)
        found.append((at, mark))
        start = at + len(mark)
    bounds = [at for at, _ in found[1:]] + [len(prompt)]
    return [(marks[mark], prompt[at + len(mark):end].strip())
            for (at, mark), end in zip(found, bounds, strict=True)]


def test_hh_dialogues_keep_every_turn(hh) -> None:
    _, result = hh
    responses = result.responses
    assert responses.schema.field("prompt_messages").type == CONVERSATION_TYPE
    rows = responses.select(["prompt", "prompt_messages", "response"]).to_pylist()
    deep = 0
    for row in rows:
        expected = _turns_by_scanning(row["prompt"])
        got = [(m["role"], m["content"]) for m in row["prompt_messages"]]
        assert got == expected
        assert got[-1][0] == "user"  # the response answers the last human turn
        deep += len(got) >= 3
    # the sample's multi-turn dialogues, counted from the raw file (not through the adapter)
    quarantined = set(result.quarantine.column("source_line").to_pylist())
    multi = {r["chosen"][:r["chosen"].rfind("\n\nAssistant:")]
             for line, r in enumerate(map(json.loads, hh[0].open()), start=1)
             if line not in quarantined and r["chosen"].count("\n\nHuman:") >= 2}
    assert {row["prompt"] for row in rows if len(row["prompt_messages"]) >= 3} == multi
    assert deep >= len(multi) > 200


def test_single_turn_adapters_carry_one_user_turn(shared_data: Path) -> None:
    result = ingest(shared_data / "preferences" / "helpsteer_train500.jsonl", run_id="hs",
                    adapter="helpsteer")
    table = result.responses
    assert table.schema.names[:4] == ["prompt_id", "response_id", "prompt", "prompt_messages"]
    for prompt, turns in zip(table.column("prompt").to_pylist(),
                             table.column("prompt_messages").to_pylist(), strict=True):
        assert turns == [{"role": "user", "content": prompt}]


def test_partitions_and_files_written_before_the_column_stay_readable(tmp_path: Path) -> None:
    from rlhf_core.ingest.native import read_native_responses
    from rlhf_core.lake.schemas import responses_schema
    from rlhf_core.lake.warehouse import Warehouse

    new = responses_schema([])
    old = pa.schema([f for f in new if f.name != "prompt_messages"])
    row = {"prompt_id": "p", "response_id": "r1", "prompt": "Why?", "response": "Because.",
           "source": "s", "source_line": 1, "ingest_run": "old"}
    lake = Lake(tmp_path / "home")
    lake.write_partition(Table.RESPONSES, "old", pa.Table.from_pylist([row], schema=old), old)
    turns = _conversation("Hi", "Hello", "Why?")
    lake.write_partition(Table.RESPONSES, "new", pa.Table.from_pylist(
        [{**row, "response_id": "r2", "ingest_run": "new", "prompt_messages": turns}], schema=new), new)
    got = Warehouse(lake).query("SELECT response_id, prompt_messages FROM responses ORDER BY 1").to_pylist()
    assert got == [{"response_id": "r1", "prompt_messages": None},
                   {"response_id": "r2", "prompt_messages": turns}]
    pq.write_table(pa.Table.from_pylist([row], schema=old), tmp_path / "old.parquet")
    native = read_native_responses(tmp_path / "old.parquet", run_id="again").responses
    assert native.schema.names == new.names and native.column("prompt_messages").to_pylist() == [
        [{"role": "user", "content": "Why?"}]]


def _conversation(*turns: str) -> list[dict[str, str]]:
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]


def _write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_generic_messages_column_splits_prompt_and_response(tmp_path: Path) -> None:
    rows = [
        {"conversation": _conversation("Hi", "Hello!", "How tall is Everest?", "8,849 m."), "q": 3},
        {"conversation": _conversation("Name a prime.", "Seven."), "q": 4},
        {"conversation": [{"role": "system", "content": "Be brief."}, *_conversation("Why?", "Because.")],
         "q": 2},
        {"conversation": _conversation("No answer yet"), "q": 1},              # no assistant turn
        {"conversation": _conversation("Q", "A", "trailing question"), "q": 1},  # turn after the answer
        {"conversation": [{"role": "assistant", "content": "Unprompted."}], "q": 1},  # no prompt
        {"conversation": "not a list", "q": 1},
        {"conversation": [{"role": "user", "text": "wrong key"}], "q": 1},
    ]
    mapping = tmp_path / "chat.yaml"
    mapping.write_text("source: chat\nformat: jsonl\nmessages: conversation\n"
                       "attributes:\n  quality: {column: q, dtype: float32}\n")
    result = GenericAdapter(mapping).ingest(_write_jsonl(tmp_path / "chat.jsonl", rows), run_id="c")
    assert (result.rows_read, result.rows_accepted, result.rows_quarantined) == (8, 3, 5)
    assert result.quarantine.column("rule").to_pylist() == [
        "bad_conversation", "bad_conversation", "bad_conversation", "wrong_type", "wrong_type"]
    assert result.quarantine.column("source_line").to_pylist() == [4, 5, 6, 7, 8]
    got = result.responses.select(["prompt", "prompt_messages", "response", "quality"]).to_pylist()
    assert got[0] == {"prompt": "User: Hi\n\nAssistant: Hello!\n\nUser: How tall is Everest?",
                      "prompt_messages": _conversation("Hi", "Hello!", "How tall is Everest?"),
                      "response": "8,849 m.", "quality": 3.0}
    assert got[1]["prompt"] == "Name a prime." and got[1]["response"] == "Seven."  # lone user turn
    assert [m["role"] for m in got[2]["prompt_messages"]] == ["system", "user"]


def test_generic_chat_pairs_from_parquet_share_their_prompt(tmp_path: Path) -> None:
    """Hugging Face chat layout (list<struct<role, content>> columns) with per-side scores."""
    base = _conversation("Plan a trip", "Where to?", "Lisbon")
    rows = [
        {"chosen": [*base, {"role": "assistant", "content": "Day 1: Alfama."}],
         "rejected": [*base, {"role": "assistant", "content": "No."}], "sc": 8.0, "sr": 2.0},
        {"chosen": _conversation("2+2?", "4"), "rejected": _conversation("2+2?", "5"), "sc": 9.0, "sr": 1.0},
        {"chosen": _conversation("a", "b"), "rejected": _conversation("c", "d"), "sc": 1.0, "sr": 0.0},
    ]
    source = tmp_path / "pairs.parquet"
    pq.write_table(pa.Table.from_pylist(rows), source)
    mapping = tmp_path / "pairs.yaml"
    mapping.write_text("source: chatpairs\nformat: parquet\npair:\n  messages_a: chosen\n"
                       "  messages_b: rejected\n  labels: {better: {constant: 1}}\n"
                       "attributes:\n  score: {column_a: sc, column_b: sr, dtype: float32}\n")
    result = GenericAdapter(mapping).ingest(source, run_id="p")
    assert (result.rows_accepted, result.rows_quarantined) == (2, 1)
    assert result.quarantine.column("rule").to_pylist() == ["prompt_mismatch"]
    assert result.preferences.num_rows == 2 and result.preferences.column("better").to_pylist() == [1, 1]
    trip = [r for r in result.responses.to_pylist() if r["prompt_messages"] == base]
    assert sorted(r["response"] for r in trip) == ["Day 1: Alfama.", "No."]
    assert len({r["prompt_id"] for r in trip}) == 1


@pytest.mark.parametrize(("text", "message"), [
    ("prompt: p\nresponse: r\nmessages: m\n", "exactly one of 'response'.*got response, messages"),
    ("response: r\n", "'prompt' .* is required unless"),
    ("pair:\n  messages_a: c\n  response_b: r\n  labels: {better: {constant: 1}}\n", "not a mix"),
    ("prompt: p\npair:\n  messages_a: c\n  labels: {better: {constant: 1}}\n", "both 'messages_a'"),
])
def test_bad_chat_mappings_are_refused_in_one_line_naming_the_file(tmp_path: Path, text: str,
                                                                  message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("source: s\nformat: jsonl\n" + text)
    with pytest.raises(DataError, match=message) as caught:
        load_mapping(path)
    assert str(caught.value).startswith(f"{path}: ") and "\n" not in str(caught.value)


def test_csv_conversations_need_a_query_that_builds_them(tmp_path: Path) -> None:
    csv = tmp_path / "csv.yaml"
    csv.write_text("source: s\nformat: csv\nmessages: m\n")
    with pytest.raises(DataError, match=f"^{re.escape(str(csv))}: .*CSV cells cannot hold"):
        load_mapping(csv)
    csv.write_text("source: s\nformat: csv\nmessages: m\nsql: |\n  SELECT [{'role': 'user', "
                   "'content': q}, {'role': 'assistant', 'content': a}] AS m FROM source\n")
    source = tmp_path / "qa.csv"
    source.write_text("q,a\nWhat is 1+1?,Two.\n")
    result = GenericAdapter(csv).ingest(source, run_id="csv")
    assert result.responses.select(["prompt", "response"]).to_pylist() == [
        {"prompt": "What is 1+1?", "response": "Two."}]


LEN_CONTRACT = REPO_ROOT / "configs" / "contracts" / "hh_rlhf.yaml"


def test_contracts_read_len_prompt_and_quantifiers_beside_the_list_column(hh, tmp_path: Path) -> None:
    text = LEN_CONTRACT.read_text().replace(
        "  response: {dtype: str}", "  response: {dtype: str}\n  prompt: {dtype: str}").replace(
        "  non_empty: REQUIRES len(response) >= 1",
        "  non_empty: REQUIRES len(response) >= 1\n"
        "  short_prompt: INVARIANT len(prompt) <= 600 PENALTY 0.1\n"
        "  answered: EXISTS r IN prompt: len(r.response) >= 40")
    path = tmp_path / "hh_prompt.yaml"
    path.write_text(text)
    program = load_contract(path).program
    responses = hh[1].responses
    assert "prompt_messages" in responses.column_names
    jax_scores = score_table(program, responses, id_columns=["response_id"])
    con = duckdb.connect()
    con.register("responses", responses)
    sql_scores = score_sql(program, con, "responses", id_columns=["response_id"],
                           order_by=["response_id"])
    jax_scores = jax_scores.sort_by("response_id")
    for name in ("veto", "v_short_prompt", "v_answered"):
        assert jax_scores.column(name).to_pylist() == sql_scores.column(name).to_pylist()
    assert 0 < sum(jax_scores.column("v_short_prompt").to_pylist()) < responses.num_rows
    lengths = [len(p) for p in responses.sort_by("response_id").column("prompt").to_pylist()]
    assert jax_scores.column("v_short_prompt").to_pylist() == [n > 600 for n in lengths]


def test_trl_conversational_export_keeps_multi_turn_prompts(hh, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")  # dev extra; installs without torch
    lake = Lake(tmp_path / "home")
    written = write_ingest(lake, "hh-export", hh[1], max_failure_rate=0.05)
    responses = {r["response_id"]: r for r in written.gated.responses.to_pylist()}
    prefs = written.gated.preferences.to_pylist()
    chosen = [responses[p["response_a_id"]] for p in prefs]
    rejected = [responses[p["response_b_id"]] for p in prefs]
    n = len(prefs)
    mine = {
        "prompt": [c["prompt"] for c in chosen], "chosen": [c["response"] for c in chosen],
        "rejected": [r["response"] for r in rejected], "prompt_id": [c["prompt_id"] for c in chosen],
        "chosen_id": [c["response_id"] for c in chosen], "rejected_id": [r["response_id"] for r in rejected],
        "chosen_reward": [1.0] * n, "rejected_reward": [0.0] * n, "margin": [1.0] * n,
        "strategy": ["human"] * n, "contract_hash": ["sha256:" + "0" * 64] * n}
    schema = PAIRS_SCHEMA.append(pa.field("contract_hash", pa.string()))
    pairs = pa.table({f.name: pa.array(mine[f.name], f.type) if f.name in mine else pa.nulls(n, f.type)
                      for f in schema}, schema=schema)  # the dataset's own pairs, chosen first
    lake.write_partition(Table.PAIRS, "hh-export", pairs, schema)
    out = export_pairs("hh-export", tmp_path / "conv.jsonl", lake, format="trl-conversational")
    ds = datasets.load_dataset("json", data_files=str(tmp_path / "conv.jsonl"), split="train",
                               cache_dir=str(tmp_path / "cache"))
    conversation = datasets.List({"role": datasets.Value("string"), "content": datasets.Value("string")})
    assert dict(ds.features) == {"prompt": conversation, "chosen": conversation, "rejected": conversation}
    assert len(ds) == out["rows"] == len(prefs)
    multi = 0
    for row, c, r in zip(ds, chosen, rejected, strict=True):
        assert row["prompt"] == c["prompt_messages"]
        assert row["chosen"] == [{"role": "assistant", "content": c["response"]}]
        assert row["rejected"] == [{"role": "assistant", "content": r["response"]}]
        multi += len(row["prompt"]) >= 3
    assert multi > 100


def test_run_passes_split_through_to_the_ingest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``rlhf-wizard run --split`` reaches the ingest stage as ``data ingest --split`` does."""
    from typer.testing import CliRunner

    from flows.contract_pipeline import ContractPipelineParams
    from rlhf_cli.main import app
    from tasks.ingest import ingest_source

    data = tmp_path / "hf" / "data"
    data.mkdir(parents=True)
    for split, answers in (("train", ["A1", "A2", "A3"]), ("test", ["B1"])):
        pq.write_table(pa.Table.from_pylist([
            {"chat": _conversation(f"Question {a}?", a), "q": 1.0} for a in answers]),
            data / f"{split}-00000-of-00001.parquet")
    mapping = tmp_path / "hf.yaml"
    mapping.write_text("source: hf\nformat: huggingface\nmessages: chat\n"
                       "attributes:\n  quality: {column: q, dtype: float32}\n")
    assert ContractPipelineParams(contract="c.yaml", data="d", mapping=str(mapping), split="test",
                                  run_id="r").split == "test"
    written = ingest_source.fn(str(data.parent), None, str(mapping), "split-test", str(tmp_path / "lake"),
                               0.05, 1000, split="test")
    assert written["accepted"] == 1
    assert Lake(tmp_path / "lake").read_run("responses", "split-test").column("response").to_pylist() == ["B1"]
    monkeypatch.setenv("RLHF_WIZARD_HOME", str(tmp_path / "lake"))
    refused = CliRunner().invoke(app, ["run", "--contract", str(LEN_CONTRACT), "--data", str(data.parent),
                                       "--split", "test"])
    assert refused.exit_code == 1 and "--split applies to a mapping" in str(refused.exception)
