"""The Parquet lake: explicit schemas, hive partitions, atomic and idempotent writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from rlhf_core.errors import LakeError, SchemaMismatchError
from rlhf_core.lake.store import Lake

SCHEMA = pa.schema([("response_id", pa.string(), False), ("score", pa.float32())])


def _rows(n: int, offset: int = 0, score: float = 0.5) -> pa.Table:
    return pa.table({
        "response_id": pa.array([f"r{i}" for i in range(offset, offset + n)], pa.string()),
        "score": pa.array([score + i for i in range(n)], pa.float32()),
    })


def _visible_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.parquet")
                  if not any(part.startswith(".") for part in p.relative_to(root).parts))


def test_root_from_env_and_file_uri(wizard_home: Path) -> None:
    assert Lake().base == str(wizard_home)
    assert Lake(f"file://{wizard_home}").base == str(wizard_home)
    lake = Lake(f"file://{wizard_home}")
    lake.write_part("scores", "run-1", _rows(3), SCHEMA)
    assert (wizard_home / "lake/scores/run_id=run-1/part-00000.parquet").is_file()


def test_hive_partitions_read_back_with_run_id(wizard_home: Path) -> None:
    lake = Lake()
    lake.write_part("scores", "run-a", _rows(3), SCHEMA)
    lake.write_part("scores", "run-b", _rows(2, offset=10), SCHEMA)
    assert lake.list_runs("scores") == ["run-a", "run-b"]
    everything = lake.read_table("scores")
    assert everything.num_rows == 5
    assert everything.schema.field("run_id").type == pa.string()
    only_b = lake.read_table("scores", run_id="run-b", columns=["response_id", "run_id"])
    assert only_b.column("response_id").to_pylist() == ["r10", "r11"]
    assert set(only_b.column("run_id").to_pylist()) == {"run-b"}
    filtered = lake.read_table("scores", filter=ds.field("score") > 1.0)
    assert sorted(filtered.column("response_id").to_pylist()) == ["r1", "r11", "r2"]
    assert lake.count_rows("scores") == 5 and lake.count_rows("scores", "run-a") == 3
    assert lake.partition_path("scores", "run-a").endswith("lake/scores/run_id=run-a")


def test_files_are_zstd_with_explicit_schema(wizard_home: Path) -> None:
    lake = Lake()
    path = lake.write_part("scores", "r1", _rows(4).select(["score", "response_id"]), SCHEMA)
    meta = pq.ParquetFile(path).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"
    schema = pq.read_schema(path)
    assert schema.names == ["response_id", "score"]
    assert not schema.field("response_id").nullable


def test_schema_mismatch_names_columns(wizard_home: Path) -> None:
    lake = Lake()
    bad = pa.table({"response_id": ["a"], "score": pa.array([1.0], pa.float64()), "extra": [1]})
    with pytest.raises(SchemaMismatchError) as err:
        lake.write_part("scores", "r1", bad, SCHEMA)
    message = str(err.value)
    assert "unexpected columns ['extra']" in message
    assert "score is double, expected float" in message
    assert "scores run r1" in message
    with pytest.raises(SchemaMismatchError, match=r"missing columns \['score'\]"):
        lake.write_part("scores", "r1", pa.table({"response_id": ["a"]}), SCHEMA)
    nulls = pa.table({"response_id": pa.array([None], pa.string()), "score": pa.array([1], pa.float32())})
    with pytest.raises(SchemaMismatchError, match="response_id has 1 nulls"):
        lake.write_part("scores", "r1", nulls, SCHEMA)
    with pytest.raises(SchemaMismatchError, match="partition key"):
        lake.write_part("scores", "r1", _rows(1), SCHEMA.append(pa.field("run_id", pa.string())))
    assert lake.list_runs("scores") == []


@pytest.mark.parametrize("run_id", ["../x", "a/b", "", ".hidden", "x=y"])
def test_unsafe_run_ids_rejected(wizard_home: Path, run_id: str) -> None:
    with pytest.raises(LakeError, match="invalid run id"):
        Lake().write_part("scores", run_id, _rows(1), SCHEMA)


def test_idempotent_rewrite_of_same_part(wizard_home: Path) -> None:
    lake = Lake()
    lake.write_part("scores", "r1", _rows(3, score=1.0), SCHEMA, part=2)
    lake.write_part("scores", "r1", _rows(3, score=7.0), SCHEMA, part=2)
    table = lake.read_table("scores", "r1")
    assert table.num_rows == 3
    assert table.column("score").to_pylist() == [7.0, 8.0, 9.0]
    assert _visible_files(wizard_home) == ["lake/scores/run_id=r1/part-00002.parquet"]


def test_staged_commit_replaces_whole_partition(wizard_home: Path) -> None:
    lake = Lake()
    for part in range(3):
        lake.write_part("scores", "r1", _rows(2, offset=10 * part), SCHEMA, part=part)
    for part in range(2):
        lake.write_part("scores", "r1", _rows(1, offset=100 + part), SCHEMA, part=part, staged=True)
    assert lake.count_rows("scores", "r1") == 6  # staged parts are invisible until commit
    with pytest.raises(LakeError, match=r"part-00002.parquet'\] are missing"):
        lake.commit_partition("scores", "r1", expected_parts=3)
    paths = lake.commit_partition("scores", "r1", expected_parts=2)
    assert [Path(p).name for p in paths] == ["part-00000.parquet", "part-00001.parquet"]
    assert sorted(lake.read_table("scores", "r1").column("response_id").to_pylist()) == ["r100", "r101"]
    assert not any(p.name.startswith(".") for p in (wizard_home / "lake/scores").iterdir())
    lake.write_partition("scores", "r1", _rows(5), SCHEMA)
    assert lake.count_rows("scores", "r1") == 5
    assert lake.part_paths("scores", "r1") == [lake.partition_path("scores", "r1") + "/part-00000.parquet"]
    with pytest.raises(LakeError, match="nothing staged"):
        lake.commit_partition("scores", "r1")


def test_sharded_rerun_drops_stale_staged_parts_and_recommit_is_noop(wizard_home: Path) -> None:
    lake = Lake()
    for part in range(4):  # a first attempt with 4 shards crashed before its commit
        lake.write_part("scores", "r1", _rows(1, offset=part), SCHEMA, part=part, staged=True)
    for part in range(2):  # the re-run uses 2 shards
        lake.write_part("scores", "r1", _rows(2, offset=10 * part), SCHEMA, part=part, staged=True)
    published = lake.commit_partition("scores", "r1", expected_parts=2)
    assert len(published) == 2 and lake.count_rows("scores", "r1") == 4
    # a later re-run whose shard tasks were all cached writes nothing: the commit is a no-op
    assert lake.commit_partition("scores", "r1", expected_parts=2) == published
    with pytest.raises(LakeError, match="are missing"):
        lake.commit_partition("scores", "r1", expected_parts=3)


def test_commit_killed_mid_swap_recovers(wizard_home: Path) -> None:
    lake = Lake()
    lake.write_partition("scores", "r1", _rows(3), SCHEMA)
    lake.write_part("scores", "r1", _rows(5), SCHEMA, staged=True)
    table_dir = Path(lake.table_path("scores"))
    # the state a commit killed between its two renames leaves: old partition in trash
    (table_dir / "run_id=r1").rename(table_dir / ".trash-dead")
    assert lake.list_runs("scores") == []  # nothing half-visible
    lake.commit_partition("scores", "r1")
    assert lake.count_rows("scores", "r1") == 5
    assert lake.remove_stale_temps() == [str(table_dir / ".trash-dead")]
    assert sorted(p.name for p in table_dir.iterdir()) == ["run_id=r1"]


def test_parquet_metadata_round_trip(wizard_home: Path) -> None:
    lake = Lake()
    meta = {"contract_hash": "sha256:" + "ab" * 32, "flow": "score-responses"}
    lake.write_part("scores", "r9", _rows(2), SCHEMA.with_metadata({"schema_version": "3"}), metadata=meta)
    got = lake.read_metadata("scores", "r9")
    assert got["contract_hash"] == meta["contract_hash"]
    assert got["flow"] == "score-responses"
    assert got["schema_version"] == "3"
    assert got["rlhf_wizard.run_id"] == "r9" and got["rlhf_wizard.table"] == "scores"
    streamed = lake.write_batches("scores", "r10", (_rows(2, offset=i).to_batches()[0] for i in (0, 2)),
                                  SCHEMA, metadata=meta)
    assert pq.read_metadata(streamed).num_rows == 4
    assert lake.read_metadata("scores", "r10")["contract_hash"] == meta["contract_hash"]


def test_delete_partition_and_missing_data_errors(wizard_home: Path) -> None:
    lake = Lake()
    with pytest.raises(LakeError, match="has no data"):
        lake.read_table("scores")
    lake.write_part("scores", "r1", _rows(1), SCHEMA)
    lake.write_part("scores", "r2", _rows(1), SCHEMA)
    with pytest.raises(LakeError, match="no partition for run r3; runs present: r1, r2"):
        lake.read_table("scores", "r3")
    assert lake.delete_partition("scores", "r1") is True
    assert lake.delete_partition("scores", "r1") is False
    assert lake.list_runs("scores") == ["r2"]


def test_write_file_atomic_for_artifacts(wizard_home: Path) -> None:
    lake = Lake()
    path = lake.write_file_atomic("reports/r1/report.html", b"<html></html>")
    assert Path(path).read_bytes() == b"<html></html>"
    lake.write_file_atomic("reports/r1/report.html", [b"<html>", b"v2", b"</html>"])
    assert Path(path).read_bytes() == b"<html>v2</html>"
    assert os.listdir(Path(path).parent) == ["report.html"]
    with pytest.raises(LakeError, match="escapes the lake root"):
        lake.write_file_atomic("../outside.txt", b"x")


_KILLED_WRITER = textwrap.dedent("""
    import sys, time
    import pyarrow as pa
    from rlhf_core.lake.store import Lake
    schema = pa.schema([("response_id", pa.string(), False), ("score", pa.float32())])
    def batches():
        for i in range(10_000):
            yield pa.table({"response_id": [f"x{i}"] * 1000, "score": pa.array([9.0] * 1000, pa.float32())})
            if i == 2:
                print("WRITING", flush=True)
            time.sleep(0.05)
    Lake(sys.argv[1]).write_batches("scores", "r1", batches(), schema, part=0)
""")


def test_sigkilled_writer_leaves_nothing_visible(wizard_home: Path) -> None:
    lake = Lake()
    lake.write_part("scores", "r1", _rows(3), SCHEMA, part=0)
    before = lake.read_table("scores", "r1")
    child = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(wizard_home)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "WRITING"
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL
    temps = list((wizard_home / "lake/scores/run_id=r1").glob(".tmp-*-part-00000.parquet"))
    assert len(temps) == 1  # the writer really died mid-file
    assert _visible_files(wizard_home) == ["lake/scores/run_id=r1/part-00000.parquet"]
    assert lake.read_table("scores", "r1").equals(before)  # the previous version is intact
    assert lake.remove_stale_temps("scores") == [str(temps[0])]
    lake.write_part("scores", "r1", _rows(2), SCHEMA, part=0)  # the re-run replaces it cleanly
    assert lake.count_rows("scores", "r1") == 2


def test_lake_on_a_non_local_filesystem_uri() -> None:
    lake = Lake("mock:///wizard")  # pyarrow's in-memory filesystem, reached through a URI
    assert not isinstance(lake.fs, pafs.LocalFileSystem)
    lake.write_part("scores", "r1", _rows(3), SCHEMA, metadata={"contract_hash": "h1"})
    lake.write_partition("scores", "r2", _rows(2), SCHEMA)
    lake.write_partition("scores", "r2", _rows(4), SCHEMA)
    assert lake.list_runs("scores") == ["r1", "r2"]
    assert lake.count_rows("scores") == 7
    assert lake.read_table("scores", "r2").num_rows == 4
    assert lake.read_metadata("scores", "r1")["contract_hash"] == "h1"
    lake.write_file_atomic("exports/r1/pairs.jsonl", b'{"a": 1}\n')
    with lake.fs.open_input_stream(lake.path("exports/r1/pairs.jsonl")) as handle:
        assert handle.read() == b'{"a": 1}\n'
    assert lake.delete_partition("scores", "r1") and lake.list_runs("scores") == ["r2"]


class _NoDirectoryRename(pafs.LocalFileSystem):
    """A local filesystem that, like S3, cannot rename directories."""

    def move(self, src: str, dest: str) -> None:
        if self.get_file_info(src).type == pafs.FileType.Directory:
            raise NotImplementedError("directory rename is not supported")
        super().move(src, dest)


def test_commit_on_stores_without_directory_rename(wizard_home: Path) -> None:
    lake = Lake()
    lake.fs = _NoDirectoryRename()
    for part in range(3):
        lake.write_part("scores", "r1", _rows(1, offset=part), SCHEMA, part=part)
    for part in range(2):
        lake.write_part("scores", "r1", _rows(2, offset=10 + part), SCHEMA, part=part, staged=True)
    lake.commit_partition("scores", "r1")
    assert [Path(p).name for p in lake.part_paths("scores", "r1")] == ["part-00000.parquet",
                                                                       "part-00001.parquet"]
    assert lake.count_rows("scores", "r1") == 4
    assert not (wizard_home / "lake/scores/.staging-run_id=r1").exists()
    assert lake.delete_partition("scores", "r1") and lake.list_runs("scores") == []


_REWRITER = textwrap.dedent("""
    import sys
    import pyarrow as pa
    from rlhf_core.lake.store import Lake
    schema = pa.schema([("response_id", pa.string(), False), ("score", pa.float32())])
    lake = Lake(sys.argv[1])
    for i in range(40):
        n = 1000 if i % 2 else 3000
        lake.write_part("scores", "r1", pa.table({"response_id": [f"v{i}"] * n,
                        "score": pa.array([float(i)] * n, pa.float32())}, schema=schema), schema)
""")


@pytest.mark.integration
def test_readers_never_see_a_partial_rewrite(wizard_home: Path) -> None:
    lake = Lake()
    lake.write_part("scores", "r1", _rows(1000), SCHEMA)
    writer = subprocess.Popen([sys.executable, "-c", _REWRITER, str(wizard_home)])
    seen = set()
    while writer.poll() is None:
        table = lake.read_table("scores", "r1")
        ids = set(table.column("response_id").to_pylist())
        if len(ids) == 1:  # one complete rewrite: 1000 or 3000 rows of the same version
            version = int(next(iter(ids))[1:])
            assert table.num_rows == (1000 if version % 2 else 3000)
            seen.add(version)
        else:
            assert table.num_rows == 1000  # the original file, not yet replaced
    assert writer.wait() == 0
    assert seen, "the reader never observed a rewrite"
    assert lake.read_table("scores", "r1").column("response_id")[0].as_py() == "v39"
