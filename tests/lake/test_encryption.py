"""Text encrypted at rest: the demo pipeline on an encrypted lake, a byte grep for its text, the
key's passphrase, numeric queries without it, rotation without rewriting data, decrypting export."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from flows.contract_pipeline import ContractPipelineParams, contract_pipeline
from ops.config import PipelineConfig
from ops.doctor import check_lake_encryption
from ops.lake_secret import LAKE_PASSPHRASE_BLOCK_ENV, export_lake_passphrase
from rlhf_cli.main import app
from rlhf_core.contract import load_contract
from rlhf_core.errors import LakeKeyError
from rlhf_core.ingest.generator import write_synthetic
from rlhf_core.lake.catalog import Table
from rlhf_core.lake.encryption import KEY_FILE_PARTS, MasterKeyClient, lake_crypto
from rlhf_core.lake.keyfile import (
    LAKE_PASSPHRASE_ENV,
    KeyRing,
    load_key_ring,
    read_header,
    write_key_ring,
)
from rlhf_core.lake.rotation import encryption_status, init_master_key, rotate_master_key
from rlhf_core.lake.store import Lake
from rlhf_core.lake.text_columns import TEXT_COLUMNS
from rlhf_core.lake.warehouse import Warehouse
from rlhf_core.optimize.export import export_pairs
from rlhf_core.report.agreement_view import WITHHELD
from rlhf_core.scoring.verify import compare_scores_with_sql
from tests.flows.conftest import DEMO_CONTRACT

pytestmark = pytest.mark.integration

PASSPHRASE = "correct horse battery staple"
RUN = "enc-1"
ROWS = 1_200


@pytest.fixture()
def passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lake passphrase in the environment, for one test."""
    monkeypatch.setenv(LAKE_PASSPHRASE_ENV, PASSPHRASE)


class EncryptedRun(NamedTuple):
    """One pipeline run on an encrypted lake and, read back with the key, its texts."""

    root: Path
    result: dict
    texts: pa.Table  # responses: prompt, response
    pairs: pa.Table  # pairs: chosen, rejected
    known: list[bytes]  # every distinct text of the run, quarantined and disagreement ones too
    contract: Path  # the demo contract plus a clause on len(response)


def _with_two_bad_rows(data_dir: Path) -> None:
    """Rate two responses out of range, so quarantine keeps their raw records (with the text)."""
    first = sorted(data_dir.glob("part-*.parquet"))[0]
    data = pq.read_table(first)
    column = data.schema.get_field_index("helpfulness")
    ratings = pa.array([9.0, 9.0, *data.column(column).to_pylist()[2:]], pa.float32())
    pq.write_table(data.set_column(column, data.schema.field(column), ratings), first)


def _contract_reading_text(folder: Path) -> Path:
    """The demo contract plus a clause on ``len(response)``: scoring and the SQL check then read
    an encrypted column (unsigned: the run is a dry run)."""
    text = DEMO_CONTRACT.read_text(encoding="utf-8")
    length = "  length:      {dtype: int, range: [0, 4096]}\n"
    text = text.replace(length, length + "  response:    {dtype: str}\n")
    text = text.replace("  has_safe:", "  brief:    INVARIANT len(response) <= 58 PENALTY 0.05\n  has_safe:")
    path = folder / "demo-reads-text.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def encrypted_run(prefect_harness: str, tmp_path_factory: pytest.TempPathFactory) -> EncryptedRun:
    """The demo pipeline (validate, ingest, score, verify, optimize, evaluate, report) on a lake
    created encrypted, over generated data with preference labels (300 prompts x 4 candidates),
    with a contract that also scores ``len(response)``."""
    data_dir = tmp_path_factory.mktemp("encrypted-demo-data")
    write_synthetic(data_dir, ROWS, seed=7, chunk_rows=600,
                    annotators=load_contract(DEMO_CONTRACT).program)
    _with_two_bad_rows(data_dir)
    root = tmp_path_factory.mktemp("encrypted-lake")
    contract = _contract_reading_text(data_dir)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(LAKE_PASSPHRASE_ENV, PASSPHRASE)
        init_master_key(Lake(root), PASSPHRASE.encode())
        config = PipelineConfig.model_validate({"scoring": {"shard_rows": 500}})
        result = contract_pipeline(ContractPipelineParams(
            contract=str(contract), data=str(data_dir), run_id=RUN,
            lake_root=str(root), dry_run=True, config=config, evaluation_resamples=50))
        lake = Lake(root)
        texts = lake.read_table(Table.RESPONSES, run_id=RUN, columns=["prompt", "response"])
        pairs = lake.read_table(Table.PAIRS, run_id=RUN, columns=["chosen", "rejected"])
        records = lake.read_table(Table.QUARANTINE, run_id=RUN, columns=["record"])
        disagreements = lake.read_table(Table.DISAGREEMENTS, run_id=RUN,
                                        columns=list(TEXT_COLUMNS[Table.DISAGREEMENTS]))
    values = {v for table in (texts, pairs, disagreements) for column in table.columns
              for v in column.to_pylist()}
    for record in map(json.loads, records.column("record").to_pylist()):
        values |= {record.get(key) for key in ("prompt", "response", "chosen", "rejected")}
    known = sorted(v.encode("utf-8") for v in values if v)
    return EncryptedRun(root, result, texts, pairs, known, contract)


def _files_containing(root: Path, needles: list[bytes]) -> dict[str, int]:
    found = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        hits = sum(1 for needle in needles if needle in data)
        if hits:
            found[str(path.relative_to(root))] = hits
    return found


def test_encrypted_pipeline_passes_and_jax_agrees_with_duckdb(encrypted_run: EncryptedRun) -> None:
    root, result, texts = encrypted_run.root, encrypted_run.result, encrypted_run.texts
    assert result["ingest"]["accepted"] + result["ingest"]["quarantined"] == ROWS
    assert result["ingest"]["quarantined"] >= 2  # their raw records, with the text, are encrypted
    diff = result["differential"]  # the contract's SQL in DuckDB over the encrypted responses
    assert diff["ok"] and diff["rows"] == diff["sql_rows"] == result["scores"]["rows"] > 0
    assert "v_brief" in diff["columns"]  # len(response): both engines read the decrypted text
    flagged = Lake(root).read_table(Table.SCORES, run_id=RUN, columns=["v_brief"]).column("v_brief")
    assert 0 < pc.sum(flagged).as_py() < len(flagged)
    assert texts.num_rows == result["ingest"]["accepted"]
    assert result["optimization"]["pairs"]["pairs"] > 0 and result["agreement"]["pairs"] > 0
    assert WITHHELD in Path(result["report"]).read_text(encoding="utf-8")  # no text in the report
    encrypted = {p.name for p in (root / "lake").rglob("_KEY_MATERIAL_FOR_part-*.json")}
    assert encrypted, "no part was written encrypted"
    for table in TEXT_COLUMNS:
        for part in (root / "lake" / table).rglob("part-*.parquet"):
            assert f"_KEY_MATERIAL_FOR_{part.name}.json" in {
                p.name for p in part.parent.iterdir()}, f"{part} is not encrypted"


def test_no_known_text_in_any_file_of_the_encrypted_lake(encrypted_run: EncryptedRun,
                                                         tmp_path: Path) -> None:
    needles = encrypted_run.known
    assert len(needles) > 300
    # Every file: parts, key material, quarantine, report, artifacts, audit log, warehouse.
    assert _files_containing(encrypted_run.root, needles) == {}
    # The same grep over a plain lake written through the same path finds text (zstd hides most
    # of it, but each column's min/max statistics sit in the footer), so the check can fail.
    texts = encrypted_run.texts
    Lake(tmp_path / "plain").write_partition(Table.RESPONSES, RUN, texts, texts.schema)
    assert sum(_files_containing(tmp_path / "plain", needles).values()) >= 4


def test_encrypted_pages_hide_text_that_plain_pages_show(tmp_path: Path) -> None:
    """Uncompressed, every string is in a plain file's bytes and none in an encrypted one's."""
    crypto = lake_crypto(KeyRing.fresh())
    words = [f"canary text number {i} about a private matter" for i in range(200)]
    table = pa.table({"id": list(range(200)), "prompt": words})
    plain, sealed = str(tmp_path / "plain.parquet"), str(tmp_path / "part-00000.parquet")
    pq.write_table(table, plain, compression="NONE")
    props = crypto.encryption_properties(sealed, Lake(tmp_path).fs, ["prompt"])
    pq.write_table(table, sealed, compression="NONE", encryption_properties=props)
    needles = [w.encode() for w in words]
    assert _files_containing(tmp_path, needles) == {"plain.parquet": 200}
    assert pq.read_table(sealed, columns=["id"]).column("id").to_pylist() == list(range(200))
    decrypted = pq.read_table(sealed, decryption_properties=crypto.decryption_properties(
        sealed, Lake(tmp_path).fs))
    assert decrypted.equals(table)


def test_queries_read_text_with_the_key(encrypted_run: EncryptedRun, passphrase: None) -> None:
    root, texts = encrypted_run.root, encrypted_run.texts
    rows = Warehouse(Lake(root)).query("SELECT prompt, response FROM responses WHERE run_id = ?", [RUN])
    assert sorted(rows.column("response").to_pylist()) == sorted(texts.column("response").to_pylist())
    out = CliRunner().invoke(app, ["query", "SELECT count(DISTINCT prompt) AS n FROM responses", "--json"],
                             env={"RLHF_WIZARD_HOME": str(root), LAKE_PASSPHRASE_ENV: PASSPHRASE})
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)[0]["n"] == len(set(texts.column("prompt").to_pylist()))


def test_numeric_queries_need_no_key_and_text_queries_say_what_to_do(
        encrypted_run: EncryptedRun, monkeypatch: pytest.MonkeyPatch) -> None:
    root, result = encrypted_run.root, encrypted_run.result
    monkeypatch.delenv(LAKE_PASSPHRASE_ENV, raising=False)
    lake = Lake(root)
    rows = Warehouse(lake).query(
        "SELECT count(*) AS n, avg(s.reward) AS r, avg(r.helpfulness) AS h FROM scores s "
        "JOIN responses r USING (response_id) WHERE s.run_id = ?", [RUN])
    assert rows.column("n")[0].as_py() == result["scores"]["rows"]
    numeric = lake.read_table(Table.RESPONSES, run_id=RUN, columns=["response_id", "helpfulness"])
    assert numeric.num_rows == result["ingest"]["accepted"]
    with pytest.raises(LakeKeyError, match=f"encrypted at rest; export {LAKE_PASSPHRASE_ENV}"):
        Warehouse(lake).query("SELECT prompt FROM responses")
    with pytest.raises(LakeKeyError, match="encrypted at rest"):
        lake.read_table(Table.PAIRS, run_id=RUN)
    program = load_contract(encrypted_run.contract).program  # reads len(response)
    with pytest.raises(LakeKeyError, match="differential check: text columns are encrypted"):
        compare_scores_with_sql(program, lake.part_paths(Table.RESPONSES, RUN),
                                result["scores"]["paths"], lake=lake)


def test_a_wrong_passphrase_fails_with_one_clear_line(encrypted_run: EncryptedRun) -> None:
    root = encrypted_run.root
    out = CliRunner().invoke(app, ["query", "SELECT prompt FROM responses LIMIT 1"],
                             env={"RLHF_WIZARD_HOME": str(root), LAKE_PASSPHRASE_ENV: "not the passphrase"})
    assert out.exit_code == 1 and isinstance(out.exception, LakeKeyError)  # main() prints it
    message = str(out.exception)
    assert "\n" not in message and "wrong passphrase" in message and LAKE_PASSPHRASE_ENV in message


def test_export_decrypts(encrypted_run: EncryptedRun, passphrase: None, tmp_path: Path) -> None:
    root, pairs = encrypted_run.root, encrypted_run.pairs
    result = export_pairs(RUN, tmp_path / "pairs.jsonl", Lake(root))
    rows = [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text().splitlines()]
    assert result["rows"] == len(rows) == pairs.num_rows
    assert {r["chosen"] for r in rows} == set(pairs.column("chosen").to_pylist())


def test_rotation_rewraps_without_rewriting_data_and_drops_the_old_key(
        encrypted_run: EncryptedRun, passphrase: None, tmp_path: Path) -> None:
    source, texts = encrypted_run.root, encrypted_run.texts
    root = tmp_path / "lake"
    shutil.copytree(source, root)
    old_key = tmp_path / "old-master.key"
    shutil.copy(root.joinpath(*KEY_FILE_PARTS), old_key)
    parts = sorted((root / "lake").rglob("part-*.parquet"))
    before = {p: p.read_bytes() for p in parts}
    out = CliRunner().invoke(app, ["keys", "rotate"],
                             env={"RLHF_WIZARD_HOME": str(root), LAKE_PASSPHRASE_ENV: PASSPHRASE})
    assert out.exit_code == 0, out.output
    assert "version 1 -> 2" in out.output
    assert {p: p.read_bytes() for p in parts} == before  # not a byte of data rewritten
    lake = Lake(root)
    assert read_header(lake.fs, lake.path(*KEY_FILE_PARTS)).versions == (2,)
    again = lake.read_table(Table.RESPONSES, run_id=RUN, columns=["prompt", "response"])
    assert again.sort_by("response").equals(texts.sort_by("response"))
    shutil.copy(old_key, root.joinpath(*KEY_FILE_PARTS))  # the old master key file is back…
    with pytest.raises(LakeKeyError, match="master key version 2, which the key file does not hold"):
        Lake(root).read_table(Table.RESPONSES, run_id=RUN)  # …and no longer unwraps anything


def test_status_and_doctor_report_the_state(encrypted_run: EncryptedRun, passphrase: None,
                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = encrypted_run.root
    state = encryption_status(Lake(root), PASSPHRASE.encode())
    assert state.enabled and state.unlocks and state.header.current == 1
    assert state.encrypted_parts > 0 and state.plain_text_parts == 0 and state.problem is None
    row = check_lake_encryption(Lake(root))
    assert row.ok and "on, master key version 1, the passphrase opens it" in row.detail
    monkeypatch.setenv(LAKE_PASSPHRASE_ENV, "a wrong passphrase")
    row = check_lake_encryption(Lake(root))
    assert not row.ok and "does NOT open it" in row.detail
    assert check_lake_encryption(Lake(tmp_path / "plain")).detail.startswith("off")
    out = CliRunner().invoke(app, ["keys", "status", "--json"],
                             env={"RLHF_WIZARD_HOME": str(root), LAKE_PASSPHRASE_ENV: PASSPHRASE})
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["master_key_version"] == 1


def test_key_file_and_wrapped_keys_are_bound_to_their_context(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "w")
    init_master_key(lake, PASSPHRASE.encode())
    with pytest.raises(LakeKeyError, match="already has a master key"):
        init_master_key(lake, PASSPHRASE.encode())
    path = Path(lake.path(*KEY_FILE_PARTS))
    assert path.stat().st_mode & 0o077 == 0
    document = json.loads(path.read_text())
    document["current"] = 7  # an edited header no longer opens, even with the right passphrase
    path.write_text(json.dumps(document))
    with pytest.raises(LakeKeyError, match="wrong passphrase or an altered file"):
        load_key_ring(lake.fs, str(path), PASSPHRASE.encode())
    client = MasterKeyClient(KeyRing.fresh())
    wrapped = client.wrap_key(b"k" * 16, "column")
    assert client.unwrap_key(wrapped, "column") == b"k" * 16
    with pytest.raises(LakeKeyError, match="does not unwrap"):
        client.unwrap_key(wrapped, "footer")  # a column key cannot pass for the footer's


def test_an_interrupted_rotation_is_finished_by_the_next(tmp_path: Path, passphrase: None) -> None:
    """Killed after pyarrow removed a part's key material but before it moved the re-wrapped one
    (``_TMP_…``) into place: the next ``keys rotate`` puts it back and drops the old key."""
    lake = Lake(tmp_path / "w")
    init_master_key(lake, PASSPHRASE.encode())
    table = pa.table({"prompt": ["a private question"], "response": ["a private answer"]})
    Lake(lake.root).write_partition(Table.RESPONSES, RUN, table, table.schema)
    part = Path(Lake(lake.root).part_paths(Table.RESPONSES, RUN)[0])
    key_path = lake.path(*KEY_FILE_PARTS)
    ring = load_key_ring(lake.fs, key_path, PASSPHRASE.encode()).rotated()
    write_key_ring(lake.fs, key_path, ring, PASSPHRASE.encode())  # step 1 of a rotation
    lake_crypto(ring).rotate(str(part), lake.fs)  # step 2 for this part, then the "crash":
    material = part.with_name(f"_KEY_MATERIAL_FOR_{part.name}.json")
    material.rename(part.with_name(f"_TMP{material.name}"))
    assert "unfinished" in (encryption_status(lake, PASSPHRASE.encode()).problem or "")
    report = rotate_master_key(Lake(lake.root), PASSPHRASE.encode())
    assert (report.from_version, report.to_version, report.parts, report.restored) == (1, 2, 1, 1)
    assert read_header(lake.fs, key_path).versions == (2,)
    assert Lake(lake.root).read_run(Table.RESPONSES, RUN).equals(table)


def test_the_passphrase_comes_from_a_secret_block(prefect_harness: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.blocks.system import Secret

    Secret(value=PASSPHRASE).save("lake-passphrase-test", overwrite=True)
    monkeypatch.delenv(LAKE_PASSPHRASE_ENV, raising=False)
    monkeypatch.setenv(LAKE_PASSPHRASE_BLOCK_ENV, "lake-passphrase-test")
    assert export_lake_passphrase() and os.environ[LAKE_PASSPHRASE_ENV] == PASSPHRASE
    assert not export_lake_passphrase()  # a passphrase already set wins
    monkeypatch.delenv(LAKE_PASSPHRASE_ENV)
    monkeypatch.setenv(LAKE_PASSPHRASE_BLOCK_ENV, "no-such-block")
    with pytest.raises(LakeKeyError, match="cannot load the lake passphrase from Secret block"):
        export_lake_passphrase()
