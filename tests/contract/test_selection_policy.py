"""The pair-policy keys of ``selection``: located one-line errors, and hashes that only move when set."""

from __future__ import annotations

import re

import pytest

from rlhf_core.contract import load_contract_text
from rlhf_core.contract.hashing import normalized_document
from rlhf_core.errors import ContractSchemaError
from tests.conftest import REPO_ROOT

DEMO = (REPO_ROOT / "configs" / "contracts" / "demo.yaml").read_text()
OLD = "{pairing: best_vs_worst, min_margin: 0.05, kl_beta: 0.1, seed: 0}"


def _with(selection: str):
    return load_contract_text(re.sub(r"^selection: .*$", f"selection: {selection}", DEMO, flags=re.M), "demo.yaml")


@pytest.mark.parametrize(("selection", "where", "says"), [
    ("{pairing: threshold}", "selection.pairing", "needs reward_threshold"),
    ("{pairing: best_vs_random, max_pairs_per_prompt: 2}", "selection.max_pairs_per_prompt", "one pair per prompt"),
    ("{pairing: all_pairs, max_pairs_per_prompt: 0}", "selection.max_pairs_per_prompt", "greater than or equal to 1"),
    ("{ties: kto}", "selection.ties", "needs reward_threshold"),
    ("{ties: maybe}", "selection.ties", "drop"),
    ("{pairing: threshold, reward_threshold: 0.5, ties: keep}", "selection.ties", "never tie"),
    ("{pairing: adjacent, reward_threshold: 0.5}", "selection.reward_threshold", "applies to pairing: threshold"),
    ("{weight: label_confidence}", "selection.weight", "needs pairing: human"),
    ("{on_disagreement: drop}", "selection.on_disagreement", "only to pairing: human"),
    ("{pairing: human, min_margin: 0.1}", "selection.min_margin", "does not apply to pairing: human"),
    ("{max_chosen_longer: 0}", "selection.max_chosen_longer", "(0, 1]"),
    ("{length_balance: maybe}", "selection.length_balance", "boolean"),
])
def test_inconsistent_policies_fail_in_one_located_line(selection: str, where: str, says: str) -> None:
    with pytest.raises(ContractSchemaError) as raised:
        _with(selection)
    message = str(raised.value)
    assert "\n" not in message and re.match(r"demo\.yaml:\d+:\d+: ", message)
    assert where in message and says in message


def test_hash_moves_only_when_a_policy_key_is_set() -> None:
    old = _with(OLD)
    assert set(normalized_document(old)["selection"]) == {"pairing", "min_margin", "kl_beta", "seed"}
    defaults = _with("{pairing: best_vs_worst, min_margin: 0.05, kl_beta: 0.1, seed: 0, ties: drop, "
                     "weight: none, length_balance: false, on_disagreement: flag}")
    assert defaults.hash == old.hash
    for change in ("ties: keep", "weight: margin_sigmoid", "length_balance: true", "max_chosen_longer: 0.65"):
        assert _with(OLD[:-1] + f", {change}}}").hash != old.hash, change
    # Equal meanings hash equal: an integer threshold is the same number as its float.
    assert (_with("{pairing: threshold, reward_threshold: 1}").hash
            == _with("{pairing: threshold, reward_threshold: 1.0}").hash)
