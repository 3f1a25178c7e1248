"""NaN / infinity lint: warnings with a confirmed witness; sign and the pipeline refuse unless the
contract acknowledges the risk."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rlhf_cli.main import app
from rlhf_core.contract import load_contract, load_contract_text
from rlhf_core.contract.lint import lint_contract
from rlhf_core.contract.numeric_risk import blocking_nan_risks, nan_risks
from rlhf_core.errors import ContractError
from rlhf_core.security.approval import sign, verify

EXAMPLES = Path(__file__).resolve().parents[2] / "configs" / "contracts"
KEYS = EXAMPLES / "keys"
PASS = b"demo-only-not-secret"
runner = CliRunner()


def _yaml(utility: str, inputs: str, clauses: str = "", extra: str = "") -> str:
    return (
        "contract: nan-test\nversion: 1.0.0\n"
        f"inputs:\n{inputs}"
        f"stakeholders:\n  - name: users\n    weight: 1\n    utility: {utility}\n"
        "aggregation: {rule: weighted_sum}\n"
        + (f"clauses: |\n  {clauses}\n" if clauses else "") + extra
    )


CASES = [
    # utility, inputs, sub-expression at fault, outcome(s), NumPy float32 check of the witness
    ("sqrt(y)", "  y: {dtype: float, range: [-1, 1]}\n", "sqrt(y)", {"NaN"},
     lambda w: np.sqrt(np.float32(w["y"]))),
    ("log(x)", "  x: {dtype: float, range: [0, 1]}\n", "log(x)", {"-inf", "NaN"},
     lambda w: np.log(np.float32(w["x"]))),
    ("x / (y - 0.5)", "  x: {dtype: float, range: [0, 1]}\n  y: {dtype: float, range: [0, 1]}\n",
     "x / (y - 0.5)", {"NaN", "inf", "-inf"},
     lambda w: np.float32(w["x"]) / (np.float32(w["y"]) - np.float32(0.5))),
    ("exp(x)", "  x: {dtype: float, range: [0, 200]}\n", "exp(x)", {"inf"},
     lambda w: np.exp(np.float32(w["x"]))),
    ("1 + x / (3 * y - 1)", "  x: {dtype: float, range: [1, 2]}\n  y: {dtype: float, range: [0, 1]}\n",
     "x / (3 * y - 1)", {"inf", "-inf"},
     lambda w: np.float32(1) + np.float32(w["x"]) / (np.float32(3) * np.float32(w["y"])
                                                     - np.float32(1))),
]


@pytest.mark.parametrize(("utility", "inputs", "fault", "outcomes", "check"), CASES)
def test_risky_utilities_warn_with_a_witness_that_really_fails(
    utility, inputs, fault, outcomes, check
) -> None:
    contract = load_contract_text(_yaml(utility, inputs), "risky.yaml")
    [risk] = nan_risks(contract.program)
    assert risk.confirmed and risk.expr == fault and risk.outcome in outcomes
    assert risk.where == "utility of stakeholder 'users'"
    # the location is the sub-expression's file:line:col (a call: its name; a binary operation:
    # its operator), on the utility's line, which starts at col 14
    line, col = map(int, risk.location.split(":")[1:])
    utility_line = 7 + inputs.count("\n")
    assert line == utility_line and col == 14 + utility.index(fault) + fault.index(
        "/" if "/" in fault else fault)
    for name, value in risk.witness.items():  # inside the declared ranges
        decl = contract.program.input(name)
        assert decl.lo <= value <= decl.hi
    with np.errstate(all="ignore"):
        value = check(risk.witness)
    assert not np.isfinite(value)
    result = lint_contract(contract)
    [line_text] = [w for w in result.warnings if w.startswith("nan_risk")]
    assert f"{fault} at risky.yaml:{utility_line}:" in line_text and "witness" in line_text
    assert "refuse this contract until it declares 'acknowledge: [nan_risk]'" in line_text
    assert result.blocking_nan_risks == (risk,)
    assert not result.errors  # a warning: lint itself passes


def test_witness_search_bisects_to_a_zero_off_the_grid() -> None:
    contract = load_contract_text(
        _yaml("1 / (y - 0.3)", "  y: {dtype: float, range: [0, 1]}\n"), "b.yaml")
    [risk] = nan_risks(contract.program)
    assert risk.confirmed and np.float32(risk.witness["y"]) == np.float32(0.3)


@pytest.mark.parametrize("name", sorted(p.stem for p in EXAMPLES.glob("*.yaml")))
def test_shipped_contracts_have_no_nan_risk(name: str) -> None:
    contract = load_contract(EXAMPLES / f"{name}.yaml")
    assert nan_risks(contract.program) == ()
    assert not [w for w in lint_contract(contract).warnings if "nan_risk" in w]


@pytest.mark.parametrize("utility", ["sqrt(max(y, 0))", "log(1 + abs(y))", "clip(1 / y, -5, 5)",
                                     "sigmoid(exp(y * 100))", "rank(sqrt(y) IN prompt)"])
def test_guarded_expressions_are_clean(utility: str) -> None:
    contract = load_contract_text(_yaml(utility, "  y: {dtype: float, range: [-1, 1]}\n"), "g.yaml")
    assert nan_risks(contract.program) == ()


def test_unconfirmed_risk_is_a_warning_that_does_not_block() -> None:
    contract = load_contract_text(
        _yaml("IF y > 0 THEN sqrt(y) ELSE 0", "  y: {dtype: float, range: [-1, 1]}\n"), "u.yaml")
    [risk] = nan_risks(contract.program)
    assert not risk.confirmed and risk.expr == "sqrt(y)"
    assert "no witness found (not enforced)" in risk.describe()
    assert blocking_nan_risks(contract.program) == ()


def test_penalty_and_reward_overflow() -> None:
    penalty = load_contract_text(_yaml(
        "x", "  x: {dtype: float, range: [0, 1]}\n",
        "big: INVARIANT x < 0.5 PENALTY 1e20 SEVERITY 1e20"), "p.yaml")
    [risk] = nan_risks(penalty.program)
    assert risk.where == "the penalty" and risk.confirmed and risk.witness["x"] >= 0.5
    reward = load_contract_text(
        "contract: nan-test\nversion: 1.0.0\ninputs:\n  x: {dtype: float, range: [0, 88.5]}\n"
        "stakeholders:\n  - {name: a, weight: 1, utility: exp(x)}\n"
        "  - {name: b, weight: 1, utility: exp(x)}\naggregation: {rule: utilitarian}\n", "r.yaml")
    [risk] = nan_risks(reward.program)
    assert risk.where == "the reward" and risk.outcome == "inf" and risk.witness["x"] > 88


def test_acknowledged_risks_are_listed_but_not_blocking() -> None:
    inputs = "  y: {dtype: float, range: [-1, 1]}\n"
    plain = load_contract_text(_yaml("sqrt(y)", inputs), "a.yaml")
    acked = load_contract_text(_yaml("sqrt(y)", inputs, extra="acknowledge: [nan_risk]\n"),
                               "a.yaml")
    assert acked.hash != plain.hash  # approvers sign the acknowledgement
    [risk] = nan_risks(acked.program)
    assert risk.acknowledged and blocking_nan_risks(acked.program) == ()
    assert "nan_risk [acknowledged]:" in lint_contract(acked).warnings[0]
    with pytest.raises(ContractError, match="listed twice"):
        load_contract_text(_yaml("y", inputs, extra="acknowledge: [nan_risk, nan_risk]\n"))
    with pytest.raises(ContractError):
        load_contract_text(_yaml("y", inputs, extra="acknowledge: [everything]\n"))


def _risky_demo(tmp_path: Path, acknowledge: bool) -> Path:
    text = (EXAMPLES / "demo.yaml").read_text()
    text = text.replace("utility: (helpfulness + correctness) / 8",
                        "utility: sqrt(helpfulness - 1) / 2")
    # a NaN reward also refutes the demo's bounds: drop them so the NaN risk is what is refused
    text = re.sub(r"\n *bounded: *ENSURES[^\n]*", "", text)
    if acknowledge:
        text += "acknowledge: [nan_risk]   # rows with helpfulness < 1 score NaN: we accept it\n"
    path = tmp_path / "risky.yaml"
    path.write_text(text)
    return path


def test_sign_refuses_unless_acknowledged(tmp_path: Path) -> None:
    path = _risky_demo(tmp_path, acknowledge=False)
    with pytest.raises(ContractError) as info:
        sign(path, KEYS / "users.key.pem", "users", PASS)
    message = str(info.value)
    assert "\n" not in message
    assert re.search(r"refusing to sign: utility of stakeholder 'users' can be NaN: "
                     r"sqrt\(helpfulness - 1\) at .*risky.yaml:\d+:\d+ ", message)
    assert "helpfulness = 0" in message
    assert "add nan_risk to the contract's 'acknowledge' list" in message
    assert not (tmp_path / "risky.contract.dsse.json").exists()
    acked = _risky_demo(tmp_path, acknowledge=True)
    report = sign(acked, KEYS / "users.key.pem", "users", PASS)
    assert report.approved_by == ("users",)
    assert verify(acked).approved_by == ("users",)


def test_cli_lint_prints_the_warning_and_sign_refuses(tmp_path: Path, monkeypatch) -> None:
    path = _risky_demo(tmp_path, acknowledge=False)
    lint = runner.invoke(app, ["contract", "lint", str(path)])
    assert lint.exit_code == 0, lint.output
    assert "warning: nan_risk: utility of stakeholder 'users' can be NaN: sqrt(helpfulness - 1)" \
        in " ".join(lint.output.split())
    as_json = runner.invoke(app, ["contract", "lint", str(path), "--json"])
    [risk] = __import__("json").loads(as_json.output)["nan_risks"]
    assert risk["confirmed"] and risk["witness"]["helpfulness"] < 1
    monkeypatch.delenv("RLHF_WIZARD_KEY_PASSPHRASE", raising=False)  # refused before any prompt
    signed = runner.invoke(app, ["contract", "sign", str(path), "--key",
                                 str(KEYS / "users.key.pem"), "--stakeholder", "users"])
    assert signed.exit_code == 1
    assert isinstance(signed.exception, ContractError)
    assert "refusing to sign" in str(signed.exception)


def test_validate_contract_refuses_unless_acknowledged(prefect_harness, tmp_path: Path) -> None:
    from flows.validate_contract import ValidateContractParams, validate_contract

    lake = str(tmp_path / "lake")
    risky = _risky_demo(tmp_path, acknowledge=False)
    with pytest.raises(ContractError, match=r"refusing to run this contract: utility of "
                                            r"stakeholder 'users' can be NaN"):
        validate_contract(ValidateContractParams(contract=str(risky), dry_run=True,
                                                 lake_root=lake))
    acked = _risky_demo(tmp_path, acknowledge=True)
    facts = validate_contract(ValidateContractParams(contract=str(acked), dry_run=True,
                                                     lake_root=lake))
    assert facts["nan_risks"][0]["acknowledged"] is True
