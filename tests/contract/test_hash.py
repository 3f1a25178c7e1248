"""Canonical hash: invariant under YAML reformatting, changed by every change of meaning."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import random
from typing import Any

import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlhf_core.contract import contract_hash, load_contract_text, normalized_document
from rlhf_core.contract.hashing import canonical_json

INPUTS = {
    "helpfulness": {"dtype": "float", "range": [0, 4]},
    "verbosity": {"dtype": "float", "range": [0, 4]},
    "is_safe": {"dtype": "bool"},
    "severity": {"dtype": "int", "range": [0, 3]},
}
# Expressions as token lists: the renderer chooses the whitespace between tokens.
UTILITIES = [
    ["helpfulness", "/", "4"],
    ["1", "-", "verbosity", "/", "4"],
    ["1", "-", "severity", "/", "3"],
    ["(", "helpfulness", "+", "4", "-", "verbosity", ")", "/", "8"],
    ["min", "(", "helpfulness", ",", "3", ")", "/", "3"],
    ["IF", "is_safe", "THEN", "1", "ELSE", "0"],
]
CLAUSES = [
    ["safe", ":", "REQUIRES", "is_safe"],
    ["concise", ":", "INVARIANT", "verbosity", "<=", "3", "PENALTY", "0.2"],
    ["bounded", ":", "ENSURES", "-1", "<=", "reward", "AND", "reward", "<=", "1"],
    ["has_safe", ":", "EXISTS", "r", "IN", "prompt", ":", "r.is_safe"],
    ["mild", ":", "INVARIANT", "severity", "<", "2", "PENALTY", "0.1", "SEVERITY", "2"],
]
RULES = ["weighted_sum", "utilitarian", "nash_bargaining", "max_min", "lexicographic"]
NAMES = ["users", "safety_board", "operator"]


def _key(i: int) -> str:
    return "ed25519:" + base64.b64encode(bytes([i + 1]) * 32).decode()


@st.composite
def contracts(draw: st.DrawFn) -> dict[str, Any]:
    """A random valid contract as plain data (utilities and clauses as token lists)."""
    n = draw(st.integers(2, 3))
    holders = [
        {
            "name": NAMES[i],
            "weight": draw(st.sampled_from([0.1, 0.2, 0.25, 0.3, 0.5, 1, 2, 3])),
            "utility": draw(st.sampled_from(UTILITIES)),
            "public_key": _key(i),
        }
        for i in range(n)
    ]
    clause_ids = draw(st.lists(st.integers(0, len(CLAUSES) - 1), unique=True, max_size=4))
    return {
        "contract": "hash-test",
        "version": "1.2.3",
        "description": "A contract   used by\nthe hash tests.",
        "inputs": copy.deepcopy(INPUTS),
        "stakeholders": holders,
        "aggregation": {"rule": draw(st.sampled_from(RULES))},
        "clauses": [CLAUSES[i] for i in clause_ids],
        "selection": {"pairing": "best_vs_worst", "min_margin": 0.05, "kl_beta": 0.1},
        "approval": {"quorum": draw(st.integers(1, n))},
    }


def _join(tokens: list[str], rnd: random.Random | None) -> str:
    out = tokens[0]
    for prev, tok in zip(tokens, tokens[1:], strict=False):
        glue = prev in "(," or tok in "),:" or prev == ":"
        if rnd is None:
            sep = "" if tok in ",):" or prev == "(" else " "
        elif glue and prev != ":" and tok != ":":
            sep = rnd.choice(["", " ", "  "])
        else:
            sep = rnd.choice([" ", "  ", "   "]) if tok != ":" else rnd.choice(["", " "])
        out += sep + tok
    return out


def _scalar(value: Any, flow: bool, rnd: random.Random | None) -> str:
    if isinstance(value, str):
        if flow or "\n" in value or (rnd is not None and rnd.random() < 0.3):
            return json.dumps(value)
        return value
    if isinstance(value, float) and rnd is not None and rnd.random() < 0.3:
        return f"{value:.3e}"
    return json.dumps(value)


def _mapping(data: dict[str, Any], indent: int, rnd: random.Random | None) -> list[str]:
    keys = list(data)
    if rnd is not None:
        rnd.shuffle(keys)
    flow = rnd is not None and rnd.random() < 0.5
    pad = " " * indent
    if flow:
        inner = ", ".join(f"{k}: {_flow(data[k], rnd)}" for k in keys)
        return [f"{{{inner}}}"]
    lines = []
    for k in keys:
        v = data[k]
        if isinstance(v, dict):
            sub = _mapping(v, indent + 2, rnd)
            if len(sub) == 1 and sub[0].startswith("{"):
                lines.append(f"{pad}{k}: {sub[0]}")
            else:
                lines += [f"{pad}{k}:", *sub]
        elif isinstance(v, list):
            lines.append(f"{pad}{k}: [{', '.join(_flow(x, rnd) for x in v)}]")
        else:
            comment = "  # note" if rnd is not None and rnd.random() < 0.2 else ""
            lines.append(f"{pad}{k}: {_scalar(v, False, rnd)}{comment}")
    return lines


def _flow(value: Any, rnd: random.Random | None) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v, rnd)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v, rnd) for v in value) + "]"
    return _scalar(value, True, rnd)


def render(doc: dict[str, Any], rnd: random.Random | None = None) -> str:
    """YAML text for ``doc``; ``rnd`` randomises style, key order, comments and whitespace."""
    top = list(doc)
    if rnd is not None:
        rnd.shuffle(top)
    lines: list[str] = ["# generated contract"] if rnd is not None else []
    for key in top:
        value = doc[key]
        if key == "stakeholders":
            lines.append("stakeholders:")
            for holder in value:
                item = dict(holder, utility=_join(holder["utility"], rnd))
                body = _mapping(item, 4, rnd)
                if body[0].startswith("{"):
                    lines.append(f"  - {body[0]}")
                else:
                    lines.append("  - " + body[0].lstrip())
                    lines += body[1:]
        elif key == "clauses":
            if not value:
                continue
            indent = " " * (rnd.choice([2, 4]) if rnd else 2)
            lines.append("clauses: |" if rnd is None or rnd.random() < 0.5 else "clauses: |-")
            for clause in value:
                if rnd is not None and rnd.random() < 0.3:
                    lines.append(f"{indent}# a comment inside the clauses")
                lines.append(indent + _join(clause, rnd))
        elif key == "description" and rnd is not None and rnd.random() < 0.5:
            lines += ["description: >", *("  " + w for w in value.split())]
        elif isinstance(value, dict):
            body = _mapping(value, 2, rnd)
            lines += [f"{key}: {body[0]}"] if body[0].startswith("{") else [f"{key}:", *body]
        else:
            lines.append(f"{key}: {_scalar(value, False, rnd)}")
        if rnd is not None and rnd.random() < 0.2:
            lines.append("")
    return "\n".join(lines) + "\n"


def _fixed() -> dict[str, Any]:
    return {
        "contract": "hash-test",
        "version": "1.2.3",
        "description": "Fixed example.",
        "inputs": copy.deepcopy(INPUTS),
        "stakeholders": [
            {"name": NAMES[i], "weight": w, "utility": UTILITIES[i], "public_key": _key(i)}
            for i, w in enumerate([0.1, 0.2, 0.3])
        ],
        "aggregation": {"rule": "weighted_sum"},
        "clauses": [CLAUSES[0], CLAUSES[2]],
        "selection": {"pairing": "best_vs_worst", "min_margin": 0.05, "kl_beta": 0.1},
        "approval": {"quorum": 2},
    }


def _hash(doc: dict[str, Any], rnd: random.Random | None = None) -> str:
    return load_contract_text(render(doc, rnd), "gen.yaml").hash


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=contracts(), rnd=st.randoms(use_true_random=False))
def test_hash_unchanged_by_reformatting(doc: dict[str, Any], rnd: random.Random) -> None:
    assert _hash(doc, rnd) == _hash(doc)


MUTATIONS = ["weight", "utility", "clause", "rule", "quorum"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=contracts(), mutation=st.sampled_from(MUTATIONS), data=st.data())
def test_hash_changed_by_any_change_of_meaning(
    doc: dict[str, Any], mutation: str, data: st.DataObject
) -> None:
    new = copy.deepcopy(doc)
    holders = new["stakeholders"]
    if mutation == "weight":
        i = data.draw(st.integers(0, len(holders) - 1))
        holders[i]["weight"] *= data.draw(st.sampled_from([0.5, 1.5, 3]))
    elif mutation == "utility":
        i = data.draw(st.integers(0, len(holders) - 1))
        others = [u for u in UTILITIES if u != holders[i]["utility"]]
        holders[i]["utility"] = data.draw(st.sampled_from(others))
    elif mutation == "clause":
        missing = [c for c in CLAUSES if c not in new["clauses"]]
        if new["clauses"] and (not missing or data.draw(st.booleans())):
            new["clauses"].pop(data.draw(st.integers(0, len(new["clauses"]) - 1)))
        else:
            new["clauses"].append(data.draw(st.sampled_from(missing)))
    elif mutation == "rule":
        rule = new["aggregation"]["rule"]
        new["aggregation"]["rule"] = data.draw(st.sampled_from([r for r in RULES if r != rule]))
    else:
        quorum = new["approval"]["quorum"]
        choices = [q for q in range(1, len(holders) + 1) if q != quorum]
        new["approval"]["quorum"] = data.draw(st.sampled_from(choices))
    assert _hash(new) != _hash(doc)


def test_penalty_and_label_changes_change_the_hash() -> None:
    doc = {**_fixed(), "clauses": [CLAUSES[1]]}
    base = _hash(doc)
    assert _hash({**doc, "clauses": [[*CLAUSES[1][:-1], "0.3"]]}) != base
    assert _hash({**doc, "clauses": [["terse", *CLAUSES[1][1:]]]}) != base


def test_hash_is_sha256_of_rfc8785_json() -> None:
    contract = load_contract_text(render(_fixed()), "gen.yaml")
    data = canonical_json(contract)
    assert data == rfc8785.dumps(json.loads(data))

    assert contract_hash(contract) == "sha256:" + hashlib.sha256(data).hexdigest()
    weights = [h["weight"] for h in normalized_document(contract)["stakeholders"]]
    assert abs(sum(weights) - 1.0) < 1e-9


def test_proportional_weights_and_defaults_hash_the_same() -> None:
    doc = _fixed()
    scaled = copy.deepcopy(doc)
    for h, w in zip(scaled["stakeholders"], [1, 2, 3], strict=True):
        h["weight"] = w
    assert _hash(doc) == _hash(scaled)
    explicit = copy.deepcopy(doc)
    explicit["selection"]["seed"] = 0
    explicit["supersedes"] = None
    explicit["aggregation"]["floor_reward"] = -1.0
    assert _hash(explicit) == _hash(doc)
