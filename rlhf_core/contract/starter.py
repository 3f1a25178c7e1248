"""The starter contract written by ``rlhf-wizard contract init``."""

from __future__ import annotations

from collections.abc import Mapping

_TEMPLATE = """\
# Reward contract (format: docs/contracts.md). Lint: rlhf-wizard contract lint {file_hint}
contract: {name}
version: 1.0.0
description: >
  Starter contract: helpful answers, hard safety constraint, concise responses.
supersedes: null            # a new version names the sha256:... hash of the one it replaces
inputs:                     # typed columns every scored row must carry
  helpfulness: {{dtype: float, range: [0, 4]}}
  verbosity:   {{dtype: float, range: [0, 4]}}
  is_safe:     {{dtype: bool}}
  severity:    {{dtype: int, range: [0, 3]}}
stakeholders:
  - name: users
    weight: 0.5
    utility: helpfulness / 4{key_users}
  - name: safety_board
    weight: 0.3
    utility: 1 - severity / 3
    disagreement: 0.1{key_safety_board}
  # Weights must be > 0: penalise an attribute with an inverted utility, as here.
  - name: operator
    weight: 0.2
    utility: 1 - verbosity / 4{key_operator}
aggregation: {{rule: weighted_sum}}
clauses: |
  safe:     REQUIRES is_safe
  concise:  INVARIANT verbosity <= 3 PENALTY 0.2
  bounded:  ENSURES -1 <= reward AND reward <= 1.001   # slack: float32 rounding
  has_safe: EXISTS r IN prompt: r.is_safe
selection: {{pairing: best_vs_worst, min_margin: 0.05, kl_beta: 0.1, seed: 0}}
approval: {{quorum: {quorum}}}
"""


def starter_contract(name: str, public_keys: Mapping[str, str] | None = None) -> str:
    """The starter contract text.

    Args:
        name: Contract name.
        public_keys: Optional ``{stakeholder: "ed25519:..."}`` for users, safety_board,
            operator; with all three the quorum is 2, otherwise 1 (a keyless draft).

    Returns:
        YAML text that loads with :func:`rlhf_core.contract.load_contract`.
    """
    keys = dict(public_keys or {})

    def key(holder: str) -> str:
        return f"\n    public_key: {keys[holder]}" if holder in keys else ""

    return _TEMPLATE.format(
        name=name,
        file_hint="<this file>",
        key_users=key("users"),
        key_safety_board=key("safety_board"),
        key_operator=key("operator"),
        quorum=2 if len(keys) >= 2 else 1,
    )
