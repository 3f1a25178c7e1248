"""Canonical contract identity: SHA-256 over RFC 8785 JSON of the normalised contract.

The normalised document has every default filled, weights normalised to sum to 1 (rounded to
12 significant digits), numbers as floats, the description's whitespace collapsed, utilities
and clauses in the Legal-Blocks printer's canonical form, ``max_candidates``, ``acknowledge``,
an input's ``on_null`` and the selection's pair-policy keys only when set (so contracts written
before those keys existed keep their hash), and no signatures. YAML style, key order, comments
and whitespace inside expressions therefore do not change the hash; any change of meaning does.

References:
    RFC 8785, JSON Canonicalization Scheme (JCS). https://www.rfc-editor.org/rfc/rfc8785
"""

from __future__ import annotations

import hashlib
from typing import Any, Protocol

import rfc8785

from rlhf_core.contract.legal_blocks import format_clause, format_expr
from rlhf_core.contract.program import ContractProgram
from rlhf_core.contract.spec import ContractSpec

HASH_PREFIX = "sha256:"


class LoadedContract(Protocol):
    """What hashing needs of a contract: its validated spec and compiled program.

    :class:`rlhf_core.contract.build.LoadedContract` satisfies it; hashing depends on this shape,
    not on the loader, so the loader can hash without an import cycle.
    """

    @property
    def spec(self) -> ContractSpec: ...

    @property
    def program(self) -> ContractProgram: ...


def canonical_clauses(contract: LoadedContract) -> list[str]:
    """Each clause in canonical printed form (one string per clause, file order)."""
    return [format_clause(clause) for clause in contract.program.clauses]


def _weight(value: float) -> float:
    """A normalised weight rounded to 12 significant digits.

    Proportional weights (``[1, 2, 3]`` and ``[0.1, 0.2, 0.3]``) normalise to floats that can
    differ in the last bit; rounding makes equal meanings hash equal.
    """
    return float(f"{value:.12g}")


def _input_document(decl: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "dtype": decl.dtype,
        "range": None if decl.lo is None else [float(decl.lo), float(decl.hi)],
    }
    if decl.on_null != "quarantine":  # added later: only when set, so older hashes stay
        default = decl.default
        out["on_null"] = decl.on_null
        numeric = decl.dtype in ("float", "int") and default is not None
        out["default"] = float(default) if numeric else default
    return out


_POLICY_DEFAULTS: dict[str, Any] = {
    "max_pairs_per_prompt": None, "reward_threshold": None, "ties": "drop", "weight": "none",
    "on_disagreement": "flag", "criterion": None, "length_balance": False, "max_chosen_longer": None,
}
"""Pair-policy keys added later, with the default that leaves them out of the hash."""


def _selection_document(selection: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "pairing": selection.pairing,
        "min_margin": float(selection.min_margin),
        "kl_beta": float(selection.kl_beta),
        "seed": int(selection.seed),
    }
    for key, default in _POLICY_DEFAULTS.items():  # only when set, so older hashes stay
        value = getattr(selection, key)
        if value != default:
            out[key] = float(value) if key in ("reward_threshold", "max_chosen_longer") else value
    return out


def normalized_document(contract: LoadedContract) -> dict[str, Any]:
    """The normalised contract as a JSON-ready dict (what the hash covers).

    Args:
        contract: A loaded contract.

    Returns:
        A dict of plain JSON values; stakeholders and clauses keep file order, mappings are
        sorted by the canonicaliser.
    """
    spec, program = contract.spec, contract.program
    optional: dict[str, Any] = {}
    # Keys added to the format later appear only when set, so older contracts keep their hash.
    if program.max_candidates is not None:
        optional["max_candidates"] = int(program.max_candidates)
    if program.acknowledge:
        optional["acknowledge"] = sorted(program.acknowledge)
    holders = []
    for decl, prog in zip(spec.stakeholders, program.stakeholders, strict=True):
        holders.append(
            {
                "name": prog.name,
                "weight": _weight(prog.weight),
                "utility": format_expr(prog.utility),
                "disagreement": prog.disagreement,
                "public_key": decl.public_key,
            }
        )
    return {
        "contract": spec.contract,
        "version": spec.version,
        "description": " ".join(spec.description.split()),
        "supersedes": spec.supersedes,
        "inputs": {decl.name: _input_document(decl) for decl in program.inputs},
        "stakeholders": holders,
        "aggregation": {
            "rule": program.rule,
            "order": list(program.lex_order),
            "tolerance": float(program.lex_tolerance),
            "floor_reward": float(program.floor_reward),
        },
        "clauses": canonical_clauses(contract),
        "selection": _selection_document(spec.selection),
        "approval": {"quorum": int(spec.approval.quorum)},
        **optional,
    }


def canonical_json(contract: LoadedContract) -> bytes:
    """RFC 8785 canonical JSON bytes of :func:`normalized_document`."""
    return rfc8785.dumps(normalized_document(contract))


def contract_hash(contract: LoadedContract) -> str:
    """The contract's identity, ``sha256:<64 hex>``.

    Args:
        contract: A loaded contract (see :func:`rlhf_core.contract.load_contract`).

    Returns:
        ``"sha256:"`` followed by the lowercase hex SHA-256 of the canonical JSON.
    """
    return HASH_PREFIX + hashlib.sha256(canonical_json(contract)).hexdigest()


def file_digest(text: str) -> str:
    """``sha256:<hex>`` of the exact UTF-8 bytes of a contract file (what signatures bind)."""
    return HASH_PREFIX + hashlib.sha256(text.encode("utf-8")).hexdigest()
