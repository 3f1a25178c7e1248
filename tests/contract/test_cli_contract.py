"""`rlhf-wizard contract ...` through typer's CliRunner: exit codes, --json, one-line errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from rlhf_cli.main import app, main
from rlhf_core.errors import ContractError, ContractSchemaError, KeyFileError, SignatureError
from rlhf_core.security.keys import PASSPHRASE_ENV

COMMANDS = ["init", "lint", "hash", "keygen", "sign", "verify", "diff", "card"]
runner = CliRunner()


@pytest.fixture()
def passphrase(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(PASSPHRASE_ENV, "cli-test-passphrase")
    return "cli-test-passphrase"


@pytest.fixture()
def started(tmp_path: Path, passphrase: str) -> Path:
    """A starter contract with three generated keys (``tmp/keys/<stakeholder>.key.pem``)."""
    path = tmp_path / "c.yaml"
    result = runner.invoke(app, ["contract", "init", str(path), "--name", "cli-test",
                                 "--keys-dir", str(tmp_path / "keys")])
    assert result.exit_code == 0, result.output
    return path


def _sign(path: Path, who: str) -> None:
    key = path.parent / "keys" / f"{who}.key.pem"
    result = runner.invoke(app, ["contract", "sign", str(path), "--key", str(key),
                                 "--stakeholder", who])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = runner.invoke(app, ["contract", command, "--help"])
    assert result.exit_code == 0
    assert "Example: rlhf-wizard contract " + command in " ".join(result.output.split())


def test_init_lint_hash_sign_verify_roundtrip(started: Path) -> None:
    lint = runner.invoke(app, ["contract", "lint", str(started), "--json"])
    assert lint.exit_code == 0, lint.output
    report = json.loads(lint.output)
    assert report["ok"] is True and report["errors"] == []
    assert [s["status"] for s in report["static"]] == ["proved"]
    hashed = runner.invoke(app, ["contract", "hash", str(started), "--json"])
    assert json.loads(hashed.output)["hash"] == report["hash"]
    plain = runner.invoke(app, ["contract", "hash", str(started)])
    assert plain.output.strip() == report["hash"]

    unsigned = runner.invoke(app, ["contract", "verify", str(started)])
    assert unsigned.exit_code == 1
    assert isinstance(unsigned.exception, SignatureError)

    _sign(started, "users")
    partial = runner.invoke(app, ["contract", "verify", str(started), "--json"])
    assert partial.exit_code == 1
    assert json.loads(partial.output)["failures"] == [
        "quorum not met: 2 of 3 required, have 1: users"
    ]
    _sign(started, "safety_board")
    ok = runner.invoke(app, ["contract", "verify", str(started), "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["approved_by"] == ["users", "safety_board"]
    text = runner.invoke(app, ["contract", "verify", str(started)])
    assert text.exit_code == 0 and "approved by 2 (quorum 2)" in text.output


def test_second_signature_by_same_stakeholder_exits_1(started: Path) -> None:
    _sign(started, "users")
    again = runner.invoke(app, ["contract", "sign", str(started), "--key",
                                str(started.parent / "keys" / "users.key.pem"),
                                "--stakeholder", "users"])
    assert again.exit_code == 1
    assert isinstance(again.exception, SignatureError)


def test_wrong_passphrase_exits_1(started: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "a different passphrase")
    result = runner.invoke(app, ["contract", "sign", str(started), "--key",
                                 str(started.parent / "keys" / "users.key.pem"),
                                 "--stakeholder", "users"])
    assert result.exit_code == 1
    assert isinstance(result.exception, KeyFileError)
    assert "wrong passphrase" in str(result.exception)


def test_init_refuses_to_overwrite(started: Path) -> None:
    result = runner.invoke(app, ["contract", "init", str(started)])
    assert result.exit_code == 1
    assert isinstance(result.exception, ContractError)


def test_keygen_prints_public_key(tmp_path: Path, passphrase: str) -> None:
    result = runner.invoke(app, ["contract", "keygen", str(tmp_path / "k.key.pem")])
    assert result.exit_code == 0
    assert result.output.startswith("ed25519:")
    assert (tmp_path / "k.pub").read_text() == result.output


def test_lint_of_bad_contract_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("contract: x\nversion: 1\n")
    result = runner.invoke(app, ["contract", "lint", str(path)])
    assert result.exit_code == 1
    assert isinstance(result.exception, ContractSchemaError)
    assert f"{path}:2:10: version:" in str(result.exception)


def test_diff_requires_supersedes(started: Path, tmp_path: Path) -> None:
    old_hash = runner.invoke(app, ["contract", "hash", str(started)]).output.strip()
    text = started.read_text().replace("version: 1.0.0", "version: 1.1.0")
    text = text.replace("weight: 0.5", "weight: 0.6")
    orphan = tmp_path / "v2-orphan.yaml"
    orphan.write_text(text)
    bad = runner.invoke(app, ["contract", "diff", str(started), str(orphan)])
    assert bad.exit_code == 1
    assert isinstance(bad.exception, ContractError)
    assert f"supersedes: {old_hash}" in str(bad.exception)
    assert "~ stakeholders.users.weight" in bad.output

    v2 = tmp_path / "v2.yaml"
    v2.write_text(text.replace("supersedes: null", f"supersedes: {old_hash}"))
    good = runner.invoke(app, ["contract", "diff", str(started), str(v2), "--json"])
    assert good.exit_code == 0, good.output
    changes = {c["path"]: c for c in json.loads(good.output)["changes"]}
    assert changes["version"]["new"] == "1.1.0"
    assert changes["supersedes"]["new"] == old_hash
    assert set(changes) >= {"stakeholders.users.weight", "stakeholders.safety_board.weight"}


def test_card_writes_front_matter(started: Path, tmp_path: Path) -> None:
    out = tmp_path / "card.md"
    result = runner.invoke(app, ["contract", "card", str(started), "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    front = YAML(typ="safe").load(text.split("---\n")[1])
    assert front["reward_contract"]["name"] == "cli-test"
    assert front["reward_contract"]["approval"]["approved"] is False
    assert "| users | 0.5000 |" in text


def test_main_prints_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("contract: x\nversion: 1.0.0\nwhat: 1\n")
    monkeypatch.setattr(sys, "argv", ["rlhf-wizard", "contract", "lint", str(path)])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}:3:1: what: unknown key")
