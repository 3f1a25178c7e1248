"""The signed, hash-chained audit log: append, verify, and every kind of tampering."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from rlhf_cli.main import app
from rlhf_core.errors import AuditError, KeyFileError
from rlhf_core.lake.store import Lake
from rlhf_core.security.audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditLog,
    append_audit,
    canonical_bytes,
)
from rlhf_core.security.audit_verify import verify_audit
from rlhf_core.security.keys import key_id_of, public_key_string


@pytest.fixture()
def log(wizard_home: Path) -> AuditLog:
    log = AuditLog()
    for i in range(6):
        log.append("run_started" if i % 2 == 0 else "run_finished", f"run-{i // 2}",
                   {"i": i, "rows": 10 * i}, actor="alice")
    return log


def _lines(log: AuditLog) -> list[bytes]:
    return log.path.read_bytes().splitlines(keepends=True)


def _write(log: AuditLog, lines: list[bytes]) -> None:
    log.path.write_bytes(b"".join(lines))


def _problems(lake: Lake | None = None) -> list[str]:
    report = verify_audit(lake)
    assert not report.ok
    return [str(p) for p in report.problems]


def test_append_and_verify_ok(log: AuditLog, wizard_home: Path) -> None:
    entries = log.entries()
    assert [e.seq for e in entries] == list(range(6))
    assert entries[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in zip(entries, entries[1:], strict=False))
    assert entries[3].details == {"i": 3, "rows": 30} and entries[3].actor == "alice"
    report = verify_audit()
    assert report.ok and report.entries == 6 and report.last_seq == 5
    assert report.checkpoint_seq == 5 and report.last_hash == entries[-1].hash
    key_file = wizard_home / "keys/operator.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert (wizard_home / "keys/operator.pub").read_text().startswith("ed25519:")
    assert json.loads(log.checkpoint.read_text())["seq"] == 5


@pytest.mark.parametrize("field,value", [
    ("timestamp", "2020-01-01T00:00:00.000000Z"), ("kind", "contract_approved"),
    ("actor", "mallory"), ("subject", "run-9"), ("details", {"i": 2, "rows": 999}),
    ("prev_hash", "f" * 64), ("key_id", "a" * 64), ("seq", 7), ("hash", "0" * 64),
    ("signature", base64.b64encode(b"\0" * 64).decode()),
])
def test_tampering_any_field_is_detected_at_its_line(log: AuditLog, field: str, value: object) -> None:
    lines = _lines(log)
    record = json.loads(lines[2])
    record[field] = value
    lines[2] = canonical_bytes(record) + b"\n"
    _write(log, lines)
    problems = _problems()
    assert any(p.startswith("audit.log line 3 ") for p in problems), problems


def test_edit_with_recomputed_hash_still_fails_signature_and_chain(log: AuditLog) -> None:
    lines = _lines(log)
    entry = AuditEntry.from_json(json.loads(lines[1]))
    body = {**entry.body(), "details": {"i": 1, "rows": 0}}
    import hashlib
    forged = {**body, "hash": hashlib.sha256(canonical_bytes(body)).hexdigest(),
              "signature": entry.signature}
    lines[1] = canonical_bytes(forged) + b"\n"
    _write(log, lines)
    problems = _problems()
    assert any("line 2 (seq 1): signature does not verify" in p for p in problems), problems
    assert any("line 3 (seq 2): prev_hash does not match entry 1" in p for p in problems), problems


def test_deleting_an_entry_says_which(log: AuditLog) -> None:
    lines = _lines(log)
    del lines[3]
    _write(log, lines)
    problems = _problems()
    assert problems[0] == "audit.log line 4 (seq 4): seq 4 follows seq 2 — entry 3 removed or moved"
    assert any("prev_hash does not match entry 2" in p for p in problems)


def test_deleting_the_head_is_detected(log: AuditLog) -> None:
    _write(log, _lines(log)[1:])
    assert _problems()[0] == ("audit.log line 1 (seq 1): the log starts at seq 1, expected 0 — "
                              "entry 0 was removed from the head")


def test_swapping_two_entries_is_detected(log: AuditLog) -> None:
    lines = _lines(log)
    lines[2], lines[3] = lines[3], lines[2]
    _write(log, lines)
    problems = _problems()
    assert problems[0].startswith("audit.log line 3 (seq 3): seq 3 follows seq 1")
    assert any("line 4 (seq 2): seq 2 follows seq 3 — entries were reordered" in p for p in problems)


def test_cutting_the_tail_is_detected(log: AuditLog) -> None:
    _write(log, _lines(log)[:4])
    problems = _problems()
    assert problems == ["audit.log line 4 (seq 3): the log ends at seq 3 but the signed checkpoint "
                        "records seq 5 — entries 4..5 were cut from the tail"]
    _write(log, [])
    assert "whole log was truncated" in _problems()[0]


def test_cut_mid_line_and_deleted_checkpoint(log: AuditLog) -> None:
    data = log.path.read_bytes()
    log.path.write_bytes(data[:-20])
    assert any("line 6: the last line is incomplete" in p for p in _problems())
    with pytest.raises(AuditError, match="last line is incomplete"):
        log.append("run_started", "run-x")
    log.path.write_bytes(data)
    log.checkpoint.unlink()
    assert _problems() == ["audit.checkpoint.json: signed checkpoint is missing — it was deleted, "
                           "so tail truncation cannot be ruled out; restore it from backup"]


def test_checkpoint_lagging_one_entry_is_tolerated(log: AuditLog) -> None:
    saved = log.checkpoint.read_bytes()
    log.append("export_written", "pairs.jsonl")
    log.checkpoint.write_bytes(saved)  # as if killed between the append and the checkpoint
    report = verify_audit()
    assert report.ok and report.entries == 7 and "lags one entry" in report.notes[0]


def test_forged_signatures_and_pinned_keys(log: AuditLog, wizard_home: Path) -> None:
    mallory = Ed25519PrivateKey.generate()
    lines = _lines(log)
    entry = AuditEntry.from_json(json.loads(lines[4]))
    resigned = {**entry.body(), "hash": entry.hash,
                "signature": base64.b64encode(mallory.sign(entry.body_bytes())).decode()}
    lines[4] = canonical_bytes(resigned) + b"\n"
    _write(log, lines)
    assert _problems()[0].startswith("audit.log line 5 (seq 4): signature does not verify with operator key")
    # Mallory rewrites the whole log with her own key and replaces keys/operator.pub ...
    genuine = (wizard_home / "keys/operator.pub").read_text()
    for name in ("keys/operator.pem", "keys/operator.pub", "audit/audit.log", "audit/audit.checkpoint.json"):
        (wizard_home / name).unlink()
    forged_log = AuditLog()
    forged_log.append("contract_approved", "sha256:evil")
    assert verify_audit().ok  # ... which only a pinned key can catch:
    runner = CliRunner()
    result = runner.invoke(app, ["audit", "verify", "--pubkey", genuine.strip()])
    assert result.exit_code == 1
    assert "signed by unknown key id" in result.output and "line 1 (seq 0)" in result.output


def test_operator_key_from_environment(wizard_home: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    key = Ed25519PrivateKey.generate()
    path = tmp_path / "operator.key.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.BestAvailableEncryption(b"correct horse")))
    (tmp_path / "operator.pub").write_text(public_key_string(key.public_key()) + "\n")
    monkeypatch.setenv("RLHF_WIZARD_OPERATOR_KEY", str(path))
    monkeypatch.delenv("RLHF_WIZARD_KEY_PASSPHRASE", raising=False)
    with pytest.raises(KeyFileError, match="needs its passphrase"):
        AuditLog().append("run_started", "r1")
    monkeypatch.setenv("RLHF_WIZARD_KEY_PASSPHRASE", "wrong passphrase")
    with pytest.raises(KeyFileError, match="cannot decrypt"):
        AuditLog().append("run_started", "r1")
    monkeypatch.setenv("RLHF_WIZARD_KEY_PASSPHRASE", "correct horse")
    entry = AuditLog().append("run_started", "r1")
    assert entry.key_id == key_id_of(key.public_key())
    assert not (wizard_home / "keys/operator.pem").exists()
    assert verify_audit().ok
    (tmp_path / "operator.pub").unlink()  # without the .pub, the public half is derived
    assert verify_audit().ok


def test_append_audit_uses_the_env_lake(wizard_home: Path) -> None:
    entry = append_audit("export_written", "exports/r1/pairs.jsonl", {"rows": 12})
    assert entry.seq == 0 and AuditLog(Lake(wizard_home)).entries() == [entry]


def test_invalid_kind_and_details(wizard_home: Path) -> None:
    log = AuditLog()
    with pytest.raises(AuditError, match="invalid audit kind"):
        log.append("Run Started", "r1")
    with pytest.raises(AuditError, match="not JSON-serialisable"):
        log.append("run_started", "r1", {"x": float("nan")})
    assert log.entries() == []


_APPENDER = textwrap.dedent("""
    import sys
    from rlhf_core.lake.store import Lake
    from rlhf_core.security.audit import AuditLog
    log = AuditLog(Lake(sys.argv[1]))
    for i in range(int(sys.argv[3])):
        log.append("run_started", f"{sys.argv[2]}-{i}", {"writer": sys.argv[2], "i": i})
""")


@pytest.mark.integration
def test_concurrent_appends_from_two_processes(wizard_home: Path) -> None:
    env = {**os.environ, "RLHF_WIZARD_ACTOR": "worker"}
    procs = [subprocess.Popen([sys.executable, "-c", _APPENDER, str(wizard_home), name, "25"], env=env)
             for name in ("a", "b")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    report = verify_audit()
    assert report.ok, report.problems
    entries = AuditLog().entries()
    assert [e.seq for e in entries] == list(range(50))
    for writer in ("a", "b"):
        mine = [e.details["i"] for e in entries if e.details["writer"] == writer]
        assert mine == list(range(25))


def test_audit_cli_log_and_verify(log: AuditLog) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["audit", "log", "--json", "--limit", "2"])
    assert result.exit_code == 0, result.output
    assert [e["seq"] for e in json.loads(result.stdout)] == [4, 5]
    result = runner.invoke(app, ["audit", "log"])
    assert result.exit_code == 0 and "run_finished" in result.stdout and "6 entries shown" in result.stdout
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 0 and "audit log OK: 6 entries (seq 0..5)" in result.stdout
    lines = _lines(log)
    _write(log, lines[:2] + lines[3:])
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 1
    assert "audit.log line 3 (seq 3): seq 3 follows seq 1 — entry 2 removed or moved" in result.output
    assert "audit verify FAILED" in result.output


def test_non_canonical_edits_are_detected(log: AuditLog) -> None:
    lines = _lines(log)
    record = json.loads(lines[1])
    sig = record["signature"]  # 64 bytes -> 86 base64 chars + "=="; the 86th has 2 spare bits
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    spare = alphabet[alphabet.index(sig[85]) ^ 1]
    assert base64.b64decode(sig[:85] + spare + "==") == base64.b64decode(sig)
    _write(log, [*lines[:1], lines[1].replace(sig.encode(), (sig[:85] + spare + "==").encode()), *lines[2:]])
    assert _problems()[0].startswith("audit.log line 2 (seq 1): signature does not verify")
    _write(log, [*lines[:1], lines[1].replace(b'"actor":', b'"actor": '), *lines[2:]])
    assert _problems() == ["audit.log line 2 (seq 1): the line is not in the canonical form the log "
                           "writes (fields added or reformatted) — it was edited"]


def test_root_path_accepted_everywhere(log: AuditLog, wizard_home: Path) -> None:
    assert verify_audit(str(wizard_home)).entries == 6
    assert len(AuditLog(wizard_home).entries()) == 6
