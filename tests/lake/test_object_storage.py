"""The lake on object storage for real: an S3 server over HTTP (moto, started here), the audit log
by compare-and-swap, a partition commit killed midway, and the whole ``contract-pipeline`` on it
(Dask worker processes writing their parts there) killed mid-run and re-run."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from rlhf_core.errors import KeyFileError
from rlhf_core.ingest.generator import write_synthetic
from rlhf_core.lake.append_log import AppendLog
from rlhf_core.lake.catalog import Table
from rlhf_core.lake.commit import COMMIT_MARKER
from rlhf_core.lake.keyfile import LAKE_PASSPHRASE_ENV
from rlhf_core.lake.objects import ObjectStore
from rlhf_core.lake.rotation import init_master_key, rotate_master_key
from rlhf_core.lake.runs import get_run
from rlhf_core.lake.store import Lake
from rlhf_core.lake.warehouse import Warehouse
from rlhf_core.security.audit import AuditLog
from rlhf_core.security.audit_verify import verify_audit
from rlhf_core.security.keys import generate_keypair
from tests.conftest import REPO_ROOT
from tests.flows.conftest import DEMO_CONTRACT

pytestmark = pytest.mark.integration

BUCKET = "rlhf-lake"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test-key", "AWS_SECRET_ACCESS_KEY": "test-secret",
               "AWS_DEFAULT_REGION": "us-east-1"}
PASSPHRASE = "s3 lake test passphrase"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An S3 server (``python -m moto.server``) on a free local port with one bucket; yields the
    ``host:port`` endpoint, with test credentials in the environment, and stops it afterwards."""
    port = _free_port()
    log = (tmp_path_factory.mktemp("moto") / "server.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=log, stderr=subprocess.STDOUT)
    with pytest.MonkeyPatch.context() as env:
        for key, value in CREDENTIALS.items():
            env.setenv(key, value)
        for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
            env.delenv(key, raising=False)  # nothing of this host's own AWS set-up applies
        home = tmp_path_factory.mktemp("aws")
        env.setenv("AWS_CONFIG_FILE", str(home / "config"))
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "credentials"))
        try:
            deadline = time.monotonic() + 60
            while not _listening(port):
                assert server.poll() is None, "the moto server exited; see its server.log"
                assert time.monotonic() < deadline, "the moto server did not start within 60 s"
                time.sleep(0.1)
            boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}").create_bucket(Bucket=BUCKET)
            yield f"127.0.0.1:{port}"
        finally:
            server.terminate()
            server.wait(timeout=30)
            log.close()
    assert not _listening(port), "the moto server still answers after it was stopped"


def _root(endpoint: str, prefix: str) -> str:
    return f"s3://{BUCKET}/{prefix}?endpoint_override={endpoint}&scheme=http&region=us-east-1"


@pytest.fixture()
def operator_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The operator's encrypted signing key, a file on this host (never in the shared bucket)."""
    path = tmp_path / "keys" / "operator.key.pem"
    path.parent.mkdir()
    generate_keypair(path, PASSPHRASE.encode())
    monkeypatch.setenv("RLHF_WIZARD_OPERATOR_KEY", str(path))
    monkeypatch.setenv("RLHF_WIZARD_KEY_PASSPHRASE", PASSPHRASE)
    return path


# -- conditional writes and the audit log ---------------------------------------------------------

def test_conditional_writes_refuse_a_stale_version(s3: str) -> None:
    store = ObjectStore(_root(s3, "cas"))
    path = f"{BUCKET}/cas/object"
    assert store.get(path) is None
    assert store.put(path, b"one", replaces=None)
    assert not store.put(path, b"again", replaces=None)  # If-None-Match: * on an existing object
    first = store.get(path)
    assert first is not None and first.data == b"one"
    assert store.put(path, b"two", replaces=first)
    assert not store.put(path, b"lost update", replaces=first)  # If-Match with a stale ETag
    assert store.get(path).data == b"two"


def test_an_appender_that_loses_the_race_reseals_on_the_new_tail(s3: str) -> None:
    lake = Lake(_root(s3, "race"))
    first, second = (AppendLog(Lake(lake.root), ("log", "chain.log"), ("log", "head")) for _ in range(2))
    calls: list[bytes | None] = []

    def newer(new: bytes, old: bytes) -> bool:
        return int(new) > int(old)

    def seal_as(writer: str):  # a chain: each line numbers itself after the last one
        def seal(last: bytes | None) -> tuple[bytes, bytes]:
            number = 0 if last is None else int(last.split()[0]) + 1
            return f"{number} {writer}\n".encode(), str(number).encode()
        return seal

    def seal_after_a_rival(last: bytes | None) -> tuple[bytes, bytes]:
        calls.append(last)
        if len(calls) == 1:  # another host appends between this read and this write
            second.append(seal_as("rival"), supersedes=newer)
        return seal_as("first")(last)

    first.append(seal_as("first"), supersedes=newer)
    first.append(seal_after_a_rival, supersedes=newer)
    assert calls == [b"0 first\n", b"1 rival\n"]  # re-sealed on the rival's line
    assert first.read() == b"0 first\n1 rival\n2 first\n" and first.read_sidecar() == b"2"


def test_audit_log_on_s3_appends_verifies_and_detects_tampering(s3: str, operator_key: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    lake = Lake(_root(s3, "audit"))
    log = AuditLog(lake)
    for i in range(4):
        log.append("run_started", f"run-{i}", {"i": i}, actor="alice")
    assert [e.seq for e in AuditLog(lake).entries()] == [0, 1, 2, 3]
    report = verify_audit(lake)
    assert report.ok and report.entries == 4 and report.checkpoint_seq == 3, report.problems
    rows = Warehouse(lake).query("SELECT seq, subject FROM audit WHERE actor = ?", ["alice"])
    assert rows.column("subject").to_pylist() == ["run-0", "run-1", "run-2", "run-3"]

    store = ObjectStore(lake.root)
    key = f"{lake.base}/audit/audit.log"
    original = store.get(key)
    lines = original.data.splitlines(keepends=True)
    assert store.put(key, lines[0] + lines[1].replace(b"run-1", b"run-9") + b"".join(lines[2:]),
                     replaces=original)
    assert "audit.log line 2 (seq 1)" in str(verify_audit(lake).problems[0])
    edited = store.get(key)
    assert store.put(key, b"".join(lines[:2]), replaces=edited)  # the tail cut off
    assert any("cut from the tail" in str(p) for p in verify_audit(lake).problems)

    monkeypatch.delenv("RLHF_WIZARD_OPERATOR_KEY")
    with pytest.raises(KeyFileError, match="RLHF_WIZARD_OPERATOR_KEY"):
        AuditLog(lake).append("run_started", "run-x")
    assert not Path(lake.base).exists()  # no lake key was created on local disk either


# -- a partition commit killed midway ---------------------------------------------------------------

_COMMITTER = textwrap.dedent("""
    import sys
    from concurrent.futures import ThreadPoolExecutor
    import pyarrow as pa
    from rlhf_core.lake.store import Lake
    lake, parts = Lake(sys.argv[1]), int(sys.argv[2])
    schema = pa.schema([("i", pa.int64())])
    def stage(part):
        lake.write_part("scores", "r1", pa.table({"i": [part]}), schema, part=part, staged=True)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(stage, range(parts)))
    print("STAGED", flush=True)
    lake.commit_partition("scores", "r1", expected_parts=parts)
""")


def _parts_in(lake: Lake, directory: str) -> list[str]:
    listing = lake.fs.get_file_info(pafs.FileSelector(directory, allow_not_found=True))
    return [i.base_name for i in listing if i.base_name.startswith("part-")]


def test_commit_killed_midway_is_invisible_and_the_next_commit_repairs_it(s3: str) -> None:
    parts = 120
    schema = pa.schema([("i", pa.int64())])
    for attempt in range(3):  # the kill must land inside the commit; retried if it came too late
        lake = Lake(_root(s3, f"commit-{attempt}"))
        for part in range(3):  # the old version, committed
            lake.write_part("scores", "r1", pa.table({"i": [1000 + part]}), schema, part=part, staged=True)
        lake.commit_partition("scores", "r1")
        final = lake.partition_path("scores", "r1")
        marker = f"{final}/{COMMIT_MARKER}"
        child = subprocess.Popen([sys.executable, "-c", _COMMITTER, lake.root, str(parts)],
                                 stdout=subprocess.PIPE, cwd=REPO_ROOT)
        assert child.stdout.readline().strip() == b"STAGED"
        # Kill once the new version is partly copied in (more parts than the old version had).
        while len(_parts_in(lake, final)) <= 3 and child.poll() is None:
            time.sleep(0.001)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        copied = len(_parts_in(lake, final))
        if lake.fs.get_file_info(marker).type != pafs.FileType.File:
            break
    else:
        pytest.fail("the commit finished before the kill three times; raise `parts`")
    # Killed mid-commit with a mix of versions on the store: readers see no partition at all.
    assert 3 < copied < parts
    assert lake.part_paths("scores", "r1") == [] and lake.list_runs("scores") == []
    assert len(_parts_in(lake, lake.staging_path("scores", "r1"))) == parts  # staging is whole
    lake.commit_partition("scores", "r1", expected_parts=parts)  # what the re-run does
    assert sorted(lake.read_run("scores", "r1").column("i").to_pylist()) == list(range(parts))
    assert Warehouse(lake).query("SELECT count(*) AS n FROM scores").column("n").to_pylist() == [parts]


# -- text encrypted at rest, on object storage -----------------------------------------------------

def _objects(endpoint: str, prefix: str) -> dict[str, bytes]:
    """Every object under ``prefix`` in the bucket, as stored (read past the lake's own code)."""
    client = boto3.client("s3", endpoint_url=f"http://{endpoint}")
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return {o["Key"]: client.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listed}


def test_an_encrypted_lake_on_s3_seals_text_reads_it_back_and_rotates(
        s3: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The master key file, the parts and their external key material all live in the bucket: no
    object holds a known text, the lake reads it back with the passphrase (ids and numbers
    without), and a rotation re-wraps the key material without rewriting a part."""
    write_synthetic(tmp_path / "data", 400, seed=11)
    texts = pq.read_table(tmp_path / "data")
    needles = sorted({t.encode() for c in ("prompt", "response") for t in texts.column(c).to_pylist()})
    plain = Lake(_root(s3, "plain"))
    plain.write_partition(Table.RESPONSES, "r1", texts, texts.schema)
    assert any(n in data for data in _objects(s3, "plain/").values() for n in needles)  # the control

    monkeypatch.setenv(LAKE_PASSPHRASE_ENV, PASSPHRASE)
    sealed = Lake(_root(s3, "sealed"))
    init_master_key(sealed, PASSPHRASE.encode())
    sealed.write_partition(Table.RESPONSES, "r1", texts, texts.schema)
    objects = _objects(s3, "sealed/")
    assert not {k for k, data in objects.items() if any(n in data for n in needles)}
    parts = {k: v for k, v in objects.items() if k.rsplit("/", 1)[-1].startswith("part-")}
    assert parts and any("_KEY_MATERIAL_FOR_" in k for k in objects) and any(
        k.endswith("keys/master.key") for k in objects)
    columns = ["response_id", "prompt", "response"]
    assert sealed.read_table(Table.RESPONSES, run_id="r1", columns=columns).sort_by(
        "response_id").equals(texts.select(columns).sort_by("response_id"))

    report = rotate_master_key(sealed, PASSPHRASE.encode())
    assert (report.from_version, report.to_version, report.parts) == (1, 2, len(parts))
    after = _objects(s3, "sealed/")
    assert {k: after[k] for k in parts} == parts  # not a byte of data rewritten
    assert sealed.read_table(Table.RESPONSES, run_id="r1", columns=columns).sort_by(
        "response_id").equals(texts.select(columns).sort_by("response_id"))
    monkeypatch.delenv(LAKE_PASSPHRASE_ENV)
    numbers = Lake(_root(s3, "sealed")).read_table(Table.RESPONSES, run_id="r1",
                                                   columns=["response_id", "helpfulness"])
    assert numbers.num_rows == texts.num_rows


# -- the whole pipeline -----------------------------------------------------------------------------

ROWS, SHARD_ROWS = 400, 50
COMPARED = ("responses", "preferences", "scores", "selections", "pareto", "pairs", "agreement")


def _start_cli(root: str, data: Path, preset: Path, run_id: str, cwd: Path) -> subprocess.Popen:
    cli = str(Path(sys.executable).with_name("rlhf-wizard"))
    return subprocess.Popen(
        [cli, "run", "--contract", str(DEMO_CONTRACT), "--data", str(data), "--run-id", run_id,
         "--config", str(preset)],
        env={**os.environ, "RLHF_WIZARD_HOME": root}, cwd=cwd, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def _tables(lake: Lake, run_id: str) -> dict[str, pa.Table]:
    out = {}
    for table in COMPARED:
        data = lake.read_run(table, run_id)
        out[table] = data.sort_by([(name, "ascending") for name in data.column_names
                                   if not pa.types.is_nested(data.schema.field(name).type)])
    return out


def test_pipeline_on_s3_survives_sigkill_and_reruns_identically(
        s3: str, operator_key: Path, prefect_harness: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.contract_pipeline import ContractPipelineParams, contract_pipeline
    from ops.config import PipelineConfig
    from rlhf_core.contract import load_contract
    from rlhf_core.ingest.generator import write_synthetic

    # The three runs share JAX's compilation cache (workers and CLI runs read it from the env).
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "jax-cache"))
    monkeypatch.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    monkeypatch.setenv("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
    data = tmp_path / "data"
    write_synthetic(data, ROWS, seed=3, annotators=load_contract(DEMO_CONTRACT).program)
    # One spawned worker process (never the in-process cluster): the parts cross process lines.
    settings = {"scoring": {"shard_rows": SHARD_ROWS},
                "dask": {"n_workers": 1, "in_process_max_rows": 0}}
    preset = tmp_path / "preset.yaml"
    preset.write_text(json.dumps(settings))  # JSON is YAML
    reference, crashed = Lake(_root(s3, "reference")), Lake(_root(s3, "crashed"))

    def run_in_process(lake: Lake) -> None:
        contract_pipeline(ContractPipelineParams(
            contract=str(DEMO_CONTRACT), data=str(data), run_id="s3-run", lake_root=lake.root,
            config=PipelineConfig.model_validate(settings)))

    run_in_process(reference)
    expected = _tables(reference, "s3-run")
    assert expected["scores"].num_rows == ROWS

    proc = _start_cli(crashed.root, data, preset, "s3-run", tmp_path)
    staging = pafs.FileSelector(crashed.staging_path("scores", "s3-run"), allow_not_found=True)
    deadline = time.monotonic() + 300
    try:
        while not any(i.base_name.startswith("part-") for i in crashed.fs.get_file_info(staging)):
            assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline, "scoring never started"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    # Killed mid-scoring: no scores partition, every visible part whole, the audit log intact.
    assert "s3-run" not in crashed.list_runs("scores")
    assert get_run(crashed, "s3-run").status == "running"
    for table in crashed.list_tables():
        for paths in crashed.visible_parts(table).values():
            assert all(pq.ParquetFile(p, filesystem=crashed.fs).metadata.num_rows >= 0 for p in paths)
    staged_before = sum(i.base_name.startswith("part-") for i in crashed.fs.get_file_info(staging))
    assert 1 <= staged_before < ROWS // SHARD_ROWS
    assert verify_audit(crashed).ok

    run_in_process(crashed)  # the re-run of the same run id
    actual = _tables(crashed, "s3-run")
    for table in COMPARED:
        assert actual[table].equals(expected[table]), f"{table} differs from the uninterrupted run"
    assert get_run(crashed, "s3-run").row_counts == get_run(reference, "s3-run").row_counts
    assert crashed.fs.get_file_info(staging) == []

    warehouse = Warehouse(crashed)
    counts = warehouse.query("SELECT count(*) AS n FROM scores WHERE run_id = ?", ["s3-run"])
    assert counts.column("n").to_pylist() == [ROWS]
    kinds = warehouse.query("SELECT kind FROM audit WHERE subject = ? ORDER BY seq",
                            ["s3-run"]).column("kind").to_pylist()
    # The killed run's entry stays; the re-run's follow it on the same chain.
    assert kinds[:2] == ["run_started", "run_started"] and kinds.count("run_finished") == 1
    assert kinds[-2:] == ["run_finished", "report_written"]
    report = verify_audit(crashed)
    assert report.ok and report.entries > 0, report.problems
