"""Confined inputs: run parameters outside the configured roots are refused before a byte is read.

Unit checks of the resolution (symlinks, ``..``, URIs, buckets, environment overrides), then the
three ways in: the CLI, a flow call, and ``data ingest``; and the quarantine's raw-record cap.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pytest

from rlhf_core.errors import ConfinementError
from rlhf_core.ingest.raw_cap import RAW_RECORD_MAX_BYTES, cap_record, cap_records
from rlhf_core.security.audit import AuditLog
from rlhf_core.security.confine import (
    REFUSAL_KIND,
    ConfinementConfig,
    Roots,
    check_path,
    resolve_roots,
    split_roots,
)
from tests.conftest import REPO_ROOT

SECRET = "/etc/passwd"
BIN = Path(sys.executable).parent


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    """A lake root with an ``incoming/`` folder holding one allowed file."""
    (tmp_path / "home" / "incoming").mkdir(parents=True)
    (tmp_path / "home" / "incoming" / "ok.jsonl").write_text("{}\n", encoding="utf-8")
    return tmp_path / "home"


def _defaults(home: Path, **preset: list[str] | None) -> Roots:
    """The roots with no overrides: the preset's lists, else the defaults under ``home``."""
    return resolve_roots(ConfinementConfig(**preset), project_dirs=[REPO_ROOT / "configs"],
                         environ={"RLHF_WIZARD_HOME": str(home)})


def _refused(value: str, roots: Roots, parameter: str = "data") -> ConfinementError:
    with pytest.raises(ConfinementError) as caught:
        check_path(parameter, value, roots)
    message = str(caught.value)
    assert "\n" not in message and f"parameter '{parameter}'" in message
    return caught.value


def test_a_system_file_is_refused_naming_parameter_path_roots_and_fix(home: Path) -> None:
    roots = _defaults(home)
    error = _refused(SECRET, roots)
    message = str(error)
    assert error.resolved == SECRET and SECRET in message
    assert str(home.resolve() / "incoming") in message and str(REPO_ROOT / "configs") in message
    assert "confinement.data_roots" in message and "RLHF_WIZARD_DATA_ROOTS" in message


def test_a_symlink_inside_a_root_to_a_system_file_is_refused(home: Path) -> None:
    link = home / "incoming" / "innocent.jsonl"
    link.symlink_to(SECRET)
    assert _refused(str(link), _defaults(home)).resolved == SECRET
    folder_link = home / "incoming" / "etc"  # a symlinked folder: the file under it resolves out
    folder_link.symlink_to("/etc", target_is_directory=True)
    assert _refused(str(folder_link / "passwd"), _defaults(home)).resolved == SECRET


def test_dotdot_escaping_a_root_is_refused(home: Path) -> None:
    escape = f"{home}/incoming/../../../../../../../..{SECRET}"
    assert _refused(escape, _defaults(home)).resolved == SECRET
    assert _refused(f"{home}/incoming/../keys/operator.pem", _defaults(home)).resolved == \
        str(home.resolve() / "keys" / "operator.pem")


def test_allowed_paths_are_returned_resolved(home: Path) -> None:
    roots = _defaults(home)
    inside = home / "incoming" / "ok.jsonl"
    assert check_path("data", f"{home}/incoming/sub/../ok.jsonl", roots) == str(inside.resolve())
    assert check_path("contract", "configs/contracts/demo.yaml", roots) == \
        str(Path("configs/contracts/demo.yaml").resolve())
    link = home / "incoming" / "alias.jsonl"  # a symlink that stays inside: the target is returned
    link.symlink_to(inside)
    assert check_path("data", str(link), roots) == str(inside.resolve())
    assert check_path("lake_root", str(home), roots, ("output",)) == str(home.resolve())
    _refused(str(inside), replace(roots, data=()))  # no roots: nothing is allowed


def test_uris_need_an_allowed_scheme_and_bucket_or_root(home: Path) -> None:
    roots = _defaults(home, data_roots=["s3://lake-data/incoming"], allowed_buckets=["shared"])
    assert check_path("data", "s3://lake-data/incoming/x.parquet?region=eu", roots) == \
        "s3://lake-data/incoming/x.parquet?region=eu"
    assert check_path("data", "s3://shared/any/where.jsonl", roots) == "s3://shared/any/where.jsonl"
    bucket = _refused("s3://other-bucket/incoming/x.parquet", roots)
    assert "bucket 'other-bucket' is not allowed" in str(bucket)
    assert "confinement.allowed_buckets" in str(bucket)
    _refused("s3://lake-data/incoming/../private/x.parquet", roots)
    _refused("s3://lake-data/incoming-not/x.parquet", roots)
    scheme = _refused("http://example.org/passwd", roots)
    assert "scheme 'http'" in str(scheme) and "confinement.allowed_schemes" in str(scheme)
    assert _refused(f"file://{SECRET}", roots).resolved == SECRET  # file:// is a local path


def test_environment_overrides_replace_the_preset_and_keep_uris_whole(home: Path,
                                                                      tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    assert split_roots(f"{other}{os.pathsep}s3://b/x{os.pathsep}{os.pathsep}gs://c") == \
        [str(other), "s3://b/x", "gs://c"]
    env = {"RLHF_WIZARD_HOME": str(home),
           "RLHF_WIZARD_DATA_ROOTS": f"{other}{os.pathsep}s3://b/x"}
    roots = resolve_roots(ConfinementConfig(data_roots=[str(home)]), environ=env)
    assert roots.data == (str(other.resolve()), "s3://b/x")
    assert roots.output == (str(home.resolve()),)
    assert _defaults(home, data_roots=[str(other)]).data == (str(other.resolve()),)
    remote = resolve_roots(environ={"RLHF_WIZARD_HOME": "s3://lake/wizard?region=eu-west-1"})
    assert remote.data == ("s3://lake/wizard/incoming",) and remote.output == ("s3://lake/wizard",)


def test_raw_records_are_capped_with_the_original_size() -> None:
    assert cap_record("short") == "short"
    long = "é" * 3000  # 6000 bytes: the cut falls inside no character
    capped = cap_record(long)
    head, marker = capped.split("…[truncated: ", 1)
    assert marker == "6000 bytes in all]" and len(head.encode()) <= RAW_RECORD_MAX_BYTES
    assert long.startswith(head) and len(head) == RAW_RECORD_MAX_BYTES // 2
    table = pa.table({"record": ["a", "x" * 10_000, None], "n": [1, 2, 3]})
    out = cap_records(table)
    assert out.column("record").to_pylist()[0::2] == ["a", None]
    assert out.column("record")[1].as_py().endswith("[truncated: 10000 bytes in all]")
    assert out.schema == table.schema


def test_ingest_keeps_only_a_capped_raw_record_in_quarantine(shared_data: Path,
                                                             tmp_path: Path) -> None:
    from rlhf_core.ingest.write import read_source, write_ingest
    from rlhf_core.lake.store import Lake

    lines = (shared_data / "preferences" / "helpsteer_train500.jsonl").read_text(
        encoding="utf-8").splitlines()[:40]
    huge = '{"prompt": "' + "p" * 200_000  # one broken record of 200 KB
    source = tmp_path / "hs.jsonl"
    source.write_text("\n".join([*lines, huge]) + "\n", encoding="utf-8")
    lake = Lake(tmp_path / "lake")
    write_ingest(lake, "cap", read_source(source, run_id="cap", adapter="helpsteer"))
    records = lake.read_run("quarantine", "cap").column("record").to_pylist()
    assert len(records) == 1 and records[0].startswith('{"prompt": "ppp')
    assert records[0].endswith(f"[truncated: {len(huge)} bytes in all]")
    assert len(records[0].encode()) < RAW_RECORD_MAX_BYTES + 64


def _refusals(root: Path) -> list:
    return [e for e in AuditLog(root).entries() if e.kind == REFUSAL_KIND]


def test_cli_run_on_a_system_file_is_refused_in_one_line_lake_untouched(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "RLHF_WIZARD_HOME": str(home)}
    done = subprocess.run(
        [str(BIN / "rlhf-wizard"), "run", "--contract", "configs/contracts/helpsteer.yaml",
         "--data", SECRET, "--adapter", "helpsteer", "--run-id", "leak"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: rlhf-wizard run: parameter '--data'"), \
        done.stderr
    assert SECRET in lines[0] and "RLHF_WIZARD_DATA_ROOTS" in lines[0]
    assert not (home / "lake").exists()  # no quarantine, no run record, nothing
    (entry,) = _refusals(home)
    assert entry.subject == "rlhf-wizard run" and entry.details["parameter"] == "--data"
    assert entry.details["resolved"] == SECRET and entry.details["run_id"] == "leak"


def test_data_ingest_refuses_a_system_file_before_hashing_it(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from rlhf_cli.main import app

    out = tmp_path / "lake"
    result = CliRunner().invoke(app, ["data", "ingest", SECRET, "--adapter", "helpsteer",
                                      "--out", str(out)])
    assert isinstance(result.exception, ConfinementError), result.output
    assert "parameter 'PATH'" in str(result.exception)
    assert not (out / "lake").exists() and len(_refusals(out)) == 1


def test_a_flow_started_on_a_system_file_fails_before_reading(prefect_harness: str,
                                                              tmp_path: Path) -> None:
    from flows.contract_pipeline import ContractPipelineParams, contract_pipeline

    lake, incoming = tmp_path / "lake", tmp_path / "incoming"
    incoming.mkdir()
    (incoming / "innocent.jsonl").symlink_to(SECRET)
    tries = {"direct": SECRET, "symlink": str(incoming / "innocent.jsonl"),
             "dotdot": f"{incoming}/{'../' * 16}{SECRET.lstrip('/')}"}
    for kind, data in tries.items():
        params = ContractPipelineParams(
            contract=str(REPO_ROOT / "configs/contracts/helpsteer.yaml"), data=data,
            adapter="helpsteer", run_id=f"leak-{kind}", lake_root=str(lake))
        with pytest.raises(ConfinementError, match="contract-pipeline: parameter 'data'"):
            contract_pipeline(params)
    assert not (lake / "lake").exists()
    refused = {e.details["run_id"]: e for e in _refusals(lake)}
    assert set(refused) == {f"leak-{kind}" for kind in tries}
    assert {e.subject for e in refused.values()} == {"contract-pipeline"}
    assert {e.details["resolved"] for e in refused.values()} == {SECRET}


def test_a_lake_root_outside_the_output_roots_is_refused_and_audited_at_home(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.ingest_dataset import IngestDatasetParams, ingest_dataset

    home, outside = tmp_path / "home", tmp_path / "outside"
    monkeypatch.setenv("RLHF_WIZARD_HOME", str(home))
    monkeypatch.setenv("RLHF_WIZARD_OUTPUT_ROOTS", str(home))
    params = IngestDatasetParams(source=str(REPO_ROOT / "configs/contracts/demo.yaml"),
                                 adapter="helpsteer", run_id="r1", lake_root=str(outside))
    with pytest.raises(ConfinementError, match="parameter 'lake_root'.*output roots"):
        ingest_dataset.fn(params)  # the flow's body: the check is its first statement
    assert not outside.exists()
    assert [e.details["parameter"] for e in _refusals(home)] == ["lake_root"]


@pytest.mark.parametrize("flow, field", [
    ("validate_contract", "contract"), ("ingest_dataset", "source"),
    ("evaluate_contract", "contract"), ("optimize_policy", "contract"),
    ("score_responses", "inputs"), ("plan_campaign", "source.path"),
])
def test_every_flow_checks_its_paths_first(flow: str, field: str, tmp_path: Path) -> None:
    import importlib

    module = importlib.import_module(f"flows.{flow}")
    model = next(v for k, v in vars(module).items() if k.endswith("Params") and k != "BaseModel")
    allowed = str(REPO_ROOT / "configs" / "contracts" / "demo.yaml")
    values = {"contract": SECRET if field == "contract" else allowed, "run_id": "r1",
              "lake_root": str(tmp_path / "lake"), "source": SECRET, "contract_hash": "0" * 64,
              "inputs": [allowed, SECRET]}
    if flow == "plan_campaign":
        values["source"] = {"path": SECRET}
    fields = set(model.model_fields)
    params = model(**{k: v for k, v in values.items() if k in fields})
    refusal = rf"parameter '{re.escape(field)}(\[1\])?' = '/etc/passwd'"
    with pytest.raises(ConfinementError, match=refusal):
        getattr(module, flow).fn(params)
    assert not (tmp_path / "lake" / "lake").exists()
