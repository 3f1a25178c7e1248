"""The signed access policy: every action × every role, approval by the previous admins, open mode,
tampering, and audit entries naming principal and role."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rlhf_cli.main import app
from rlhf_core.errors import AccessDeniedError, ConfigError, SignatureError
from rlhf_core.lake.store import Lake
from rlhf_core.security.access.changes import propose_grant, propose_revoke
from rlhf_core.security.access.context import acting_as
from rlhf_core.security.access.enforce import authorize
from rlhf_core.security.access.policy import ACTIONS, load_policy, policy_yaml
from rlhf_core.security.access.store import ANCHOR_ENV, PolicyStore
from rlhf_core.security.audit import AuditLog
from rlhf_core.security.audit_verify import verify_audit
from tests.security.access_helpers import (
    PASSPHRASE,
    ROLES,
    TEMPLATE,
    install,
    key,
    policy,
    write_key,
)

EXPECTED: dict[str, set[str]] = {
    "author": {"run.unapproved", "report", "plan"},
    "approver": {"contract.sign", "report"},
    "operator": {"run", "run.replace", "export", "report", "plan"},
    "auditor": {"audit.read"},
    "admin": {"policy.change", "keys.rotate", "audit.read"},
}
"""The table of the closing note: what each role of configs/access/policy.yaml may do."""

runner = CliRunner()


@pytest.fixture(scope="module")
def role_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """A lake with the shipped template installed, one principal per role (``<role>-1``)."""
    lake = Lake(tmp_path_factory.mktemp("access") / "lake")
    install(lake, policy({f"{role}-1": [role] for role in ROLES}), ["admin-1"])
    return lake


def test_the_template_ships_the_table_and_every_action() -> None:
    template = load_policy(TEMPLATE)
    assert {name: set(role.permissions) for name, role in template.roles.items()} == EXPECTED
    assert set().union(*EXPECTED.values()) == set(ACTIONS)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", ACTIONS)
def test_every_action_for_every_role(role_lake: Lake, role: str, action: str) -> None:
    who = f"{role}-1"
    if action in EXPECTED[role]:
        grant = authorize(action, principal=who, lake=role_lake)
        assert (grant.principal, grant.role, grant.open) == (who, role, False)
        return
    with pytest.raises(AccessDeniedError) as denied:
        authorize(action, principal=who, lake=role_lake)
    message = str(denied.value)
    assert "\n" not in message
    assert message.startswith(f"access denied: {who} may not {action}: missing permission '{action}'")
    last = AuditLog(role_lake).entries()[-1]
    assert (last.kind, last.actor, last.details["action"], last.details["role"]) == (
        "access_denied", who, action, role)


def test_open_mode_without_a_policy_allows_everything_and_writes_nothing(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "open")
    for action in ACTIONS:
        grant = authorize(action, lake=lake)
        assert grant.open and grant.role is None
    assert not (tmp_path / "open").exists()


def test_replacing_a_run_needs_run_replace(role_lake: Lake) -> None:
    assert authorize("run", principal="operator-1", lake=role_lake, replaces_run=True).role == "operator"
    with pytest.raises(AccessDeniedError, match="missing permission 'run.replace'"):
        authorize("run.unapproved", principal="author-1", lake=role_lake, replaces_run=True)


def test_nested_work_is_allowed_what_the_grant_covers(role_lake: Lake) -> None:
    from rlhf_core.security.access.enforce import permit

    dry = authorize("run.unapproved", principal="author-1", lake=role_lake)
    assert permit(dry, "run", lake=role_lake).action == "run.unapproved"  # a stage of the dry run
    assert permit(dry, "report", lake=role_lake).action == "report"
    report = authorize("report", principal="author-1", lake=role_lake)
    with pytest.raises(AccessDeniedError, match="missing permission 'run' \\(granted report as author"):
        permit(report, "run", lake=role_lake)


def test_a_change_needs_the_previous_admins_and_an_operator_cannot_promote_itself(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    store = install(lake, policy({"alice": ["admin"], "bob": ["admin"], "op": ["operator"]},
                                 quorum=2), ["alice", "bob"])
    assert store.installed().version == 1
    # The operator proposes its own promotion (anyone can write a proposal file) and signs it.
    pending = propose_grant(store, "op", "admin", actor="op")
    assert pending.policy.version == 2 and "op" in pending.policy.admins()
    with pytest.raises(SignatureError, match="only the admins of the version before it"):
        store.sign_pending(key("op"))
    # One admin is not the quorum of the previous version; a second one installs it.
    _, installed = store.sign_pending(key("alice"))
    assert not installed and store.installed().version == 1
    with pytest.raises(AccessDeniedError, match="missing permission 'policy.change'"):
        authorize("policy.change", principal="op", lake=lake)
    _, installed = store.sign_pending(key("bob"))
    assert installed and store.installed().version == 2
    assert authorize("policy.change", principal="op", lake=lake).role == "admin"
    # Revoking follows the same path, and a revoked principal may do nothing.
    propose_revoke(store, "op", actor="alice")
    store.sign_pending(key("alice"))
    store.sign_pending(key("bob"))
    assert store.installed().version == 3
    with pytest.raises(AccessDeniedError, match="not a principal of access policy v3"):
        authorize("run", principal="op", lake=lake)


def test_a_forged_or_edited_policy_denies_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lake = Lake(tmp_path / "lake")
    store = install(lake, policy({"alice": ["admin"], "op": ["operator"]}), ["alice"])
    genesis = store.installed().genesis
    # The operator writes version 2 with itself as admin, signed by itself, straight into the lake.
    forged = policy({"alice": ["admin"], "op": ["operator", "admin"]}).model_copy(
        update={"version": 2, "supersedes": store.installed().hash})
    versions = tmp_path / "lake" / "access" / "versions"
    (versions / "v000002.yaml").write_text(policy_yaml(forged))
    (versions / "v000002.dsse.json").write_text((versions / "v000001.dsse.json").read_text())
    (tmp_path / "lake" / "access" / "current.json").write_text(
        json.dumps({"version": 2, "hash": forged.hash()}))
    for who, action in (("op", "policy.change"), ("alice", "audit.read")):
        with pytest.raises(AccessDeniedError, match="installed access policy does not verify"):
            authorize(action, principal=who, lake=lake)
    # Deleting the policy to fall back to open mode is refused where the anchor is pinned.
    for path in sorted((tmp_path / "lake" / "access").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    assert authorize("run", lake=lake).open
    monkeypatch.setenv(ANCHOR_ENV, genesis)
    with pytest.raises(AccessDeniedError, match=f"{ANCHOR_ENV} pins access policy"):
        authorize("run", principal="alice", lake=lake)


def test_a_proposal_that_could_never_be_changed_again_is_refused(tmp_path: Path) -> None:
    store = PolicyStore(Lake(tmp_path / "lake"))
    lonely = policy({"alice": ["admin"], "op": ["operator"]}, quorum=2)
    with pytest.raises(ConfigError, match="1 admin\\(s\\) for a quorum of 2"):
        store.stage(lonely, policy_yaml(lonely), actor="alice")


def test_audit_entries_name_principal_and_role_and_still_verify(role_lake: Lake) -> None:
    grant = authorize("run", principal="operator-1", lake=role_lake)
    with acting_as(grant):
        entry = AuditLog(role_lake).append("run_started", "r-audit", {"flow": "test"})
    assert (entry.actor, entry.details) == ("operator-1", {"flow": "test", "role": "operator"})
    outside = AuditLog(role_lake).append("run_started", "r-open", {"flow": "test"})
    assert outside.actor != "operator-1" and "role" not in outside.details
    report = verify_audit(role_lake)
    assert report.ok, report.problems


def test_cli_installs_proposes_and_refuses_self_promotion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("RLHF_WIZARD_HOME", str(home))
    monkeypatch.setenv("RLHF_WIZARD_KEY_PASSPHRASE", PASSPHRASE)
    monkeypatch.delenv("RLHF_WIZARD_TOKEN", raising=False)
    monkeypatch.delenv("RLHF_WIZARD_PRINCIPAL_KEY", raising=False)
    keys = {name: write_key(tmp_path, name) for name in ("alice", "op", "carol")}
    source = tmp_path / "policy.yaml"
    source.write_text(policy_yaml(policy({"alice": ["admin"], "op": ["operator", "auditor"]})))
    done = runner.invoke(app, ["access", "init", str(source), "--key", str(keys["alice"])])
    assert done.exit_code == 0, done.output
    assert "installed access policy v1" in done.output
    # Without credentials, a command refuses before doing anything.
    refused = runner.invoke(app, ["audit", "log", "--json"])
    assert refused.exit_code == 1 and "access denied: anonymous may not audit.read" in str(refused.exception)
    # The operator's key identifies it; it may read the audit log but not change the policy.
    monkeypatch.setenv("RLHF_WIZARD_PRINCIPAL_KEY", str(keys["op"]))
    read = runner.invoke(app, ["audit", "log", "--json"])
    assert read.exit_code == 0, read.output
    entries = json.loads(read.output)
    assert entries[-1]["kind"] == "access_granted" and entries[-1]["actor"] == "op"
    assert entries[-1]["details"]["role"] == "auditor"
    promote = runner.invoke(app, ["access", "grant", "--principal", "op", "--role", "admin"])
    assert promote.exit_code == 1
    assert str(promote.exception).startswith("access denied: op may not policy.change: missing "
                                             "permission 'policy.change'")
    assert PolicyStore(Lake(home)).pending() is None
    # An admin grants a new principal; its own signature installs v2 (quorum 1).
    monkeypatch.delenv("RLHF_WIZARD_PRINCIPAL_KEY")
    public = (tmp_path / "carol.pub")
    from rlhf_core.security.keys import public_key_string

    public.write_text(public_key_string(key("carol").public_key()))
    done = runner.invoke(app, ["access", "grant", "--principal", "carol", "--role", "auditor",
                               "--public-key", public.read_text(), "--key", str(keys["alice"])])
    assert done.exit_code == 0, done.output
    shown = json.loads(runner.invoke(app, ["access", "show", "--json"]).output)
    assert shown["policy"]["version"] == 2 and shown["approved_by"] == ["alice"]
    assert shown["policy"]["principals"]["carol"]["roles"] == ["auditor"]
    check = runner.invoke(app, ["access", "check", "--principal", "carol", "--action", "export"])
    assert check.exit_code == 1 and "missing permission 'export'" in check.output
    check = runner.invoke(app, ["access", "check", "--principal", "carol", "--action", "audit.read"])
    assert check.exit_code == 0 and "allowed" in check.output


def test_doctor_reports_open_mode_and_the_installed_policy(tmp_path: Path) -> None:
    from ops.doctor import check_access

    rows = check_access(Lake(tmp_path / "open"))
    assert rows[0].ok and rows[0].detail.startswith("no access policy: open mode")
    lake = Lake(tmp_path / "lake")
    install(lake, policy({"alice": ["admin"], "op": ["operator"]}), ["alice"])
    from rlhf_core.security.access.session import issue

    path = write_key(tmp_path, "op")
    issue(path, role="operator", ttl_seconds=3600, lake=lake, passphrase=PASSPHRASE.encode())
    rows = {row.name: row for row in check_access(lake)}
    assert rows["access policy"].ok and "v1" in rows["access policy"].detail
    assert "2 principals, 1 admins" in rows["access policy"].detail
    assert "1 expire within 24 h: op (operator)" in rows["access tokens"].detail
