"""Semantic diff between versions, the supersedes rule, and the model card."""

from __future__ import annotations

import pytest
from ruamel.yaml import YAML

from rlhf_core.contract import check_supersedes, diff_contracts, load_contract_text, render_card
from rlhf_core.contract.card import ApprovalSummary, StaticResult
from rlhf_core.errors import ContractError

V1 = """\
contract: diff-test
version: 1.0.0
inputs:
  helpfulness: {dtype: float, range: [0, 4]}
  verbosity: {dtype: float, range: [0, 4]}
  is_safe: {dtype: bool}
stakeholders:
  - name: users
    weight: 0.5
    utility: helpfulness / 4
  - name: operator
    weight: 0.5
    utility: 1 - verbosity / 4
aggregation: {rule: weighted_sum}
clauses: |
  safe: REQUIRES is_safe
  concise: INVARIANT verbosity <= 3 PENALTY 0.2
"""


def test_reformatting_is_not_a_change() -> None:
    old = load_contract_text(V1)
    again = load_contract_text(V1.replace("helpfulness / 4", "helpfulness/4   # users"))
    result = diff_contracts(old, again)
    assert result.identical and result.changes == ()


def test_diff_lists_each_semantic_change() -> None:
    old = load_contract_text(V1)
    text = (V1.replace("version: 1.0.0", f"version: 2.0.0\nsupersedes: {old.hash}")
            .replace("weight: 0.5\n    utility: helpfulness / 4", "weight: 3\n    utility: helpfulness / 4")
            .replace("weight: 0.5\n    utility: 1 - verbosity / 4",
                     "weight: 1\n    utility: 1 - verbosity/2")
            .replace("rule: weighted_sum", "rule: nash_bargaining")
            .replace("PENALTY 0.2", "PENALTY 0.4")
            .replace("  safe: REQUIRES is_safe\n", "  long: INVARIANT verbosity >= 1\n")
            .replace("  is_safe: {dtype: bool}\n", "  is_safe: {dtype: bool}\n  score: {dtype: float}\n"))
    new = load_contract_text(text)
    changes = {c.path: c for c in diff_contracts(old, new).changes}
    assert changes["version"].new == "2.0.0"
    assert changes["stakeholders.users.weight"].old == 0.5
    assert changes["stakeholders.users.weight"].new == 0.75
    assert changes["stakeholders.operator.utility"].new == "1 - verbosity / 2"
    assert changes["aggregation.rule"].new == "nash_bargaining"
    assert changes["clauses.concise"].new.endswith("PENALTY 0.4 SEVERITY 1.0")
    assert changes["clauses.safe"].kind == "removed"
    assert changes["clauses.long"].kind == "added"
    assert changes["inputs.score"].kind == "added"
    assert changes["stakeholders.users.weight"].describe() == (
        "~ stakeholders.users.weight: 0.5 -> 0.75"
    )
    check_supersedes(old, new)


def test_supersedes_rule() -> None:
    old = load_contract_text(V1)
    changed = V1.replace("PENALTY 0.2", "PENALTY 0.3").replace("version: 1.0.0", "version: 1.0.1")
    with pytest.raises(ContractError, match=f"add 'supersedes: {old.hash}'"):
        check_supersedes(old, load_contract_text(changed))
    wrong = changed.replace("version: 1.0.1", "version: 1.0.1\nsupersedes: sha256:" + "0" * 64)
    with pytest.raises(ContractError, match="set supersedes to the old hash"):
        check_supersedes(old, load_contract_text(wrong))
    with pytest.raises(ContractError, match="nothing changed"):
        check_supersedes(old, load_contract_text(V1))
    good = changed.replace("version: 1.0.1", f"version: 1.0.1\nsupersedes: {old.hash}")
    check_supersedes(old, load_contract_text(good))


def test_quorum_change_is_reported() -> None:
    keys = ["ed25519:" + c * 43 + "=" for c in "AB"]
    with_keys = (V1.replace("utility: helpfulness / 4", f"utility: helpfulness / 4\n    public_key: {keys[0]}")
                 .replace("utility: 1 - verbosity / 4", f"utility: 1 - verbosity / 4\n    public_key: {keys[1]}"))
    old = load_contract_text(with_keys + "approval: {quorum: 1}\n")
    new = load_contract_text(with_keys + "approval: {quorum: 2}\n")
    changes = {c.path: c for c in diff_contracts(old, new).changes}
    assert (changes["approval.quorum"].old, changes["approval.quorum"].new) == (1, 2)


def test_card_front_matter_and_body() -> None:
    contract = load_contract_text(V1)
    approval = ApprovalSummary(False, 1, (), ("quorum not met: 1 of 2 required, have 0: none",))
    text = render_card(contract, approval, [StaticResult("bounded", "proved", "reward in [0, 1]")])
    assert text.startswith("---\n")
    front = YAML(typ="safe").load(text.split("---\n")[1])
    meta = front["reward_contract"]
    assert meta["hash"] == contract.hash
    assert meta["aggregation"] == "weighted_sum"
    assert meta["stakeholders"] == [{"name": "users", "weight": 0.5},
                                    {"name": "operator", "weight": 0.5}]
    assert meta["approval"] == {"approved": False, "quorum": 1, "approved_by": []}
    assert "| operator | 0.5000 | `1 - verbosity / 4` |" in text
    assert "concise: INVARIANT verbosity <= 3 PENALTY 0.2 SEVERITY 1.0" in text
    assert "| bounded | proved | reward in [0, 1] |" in text
    assert "NOT approved" in text and "- quorum not met" in text
