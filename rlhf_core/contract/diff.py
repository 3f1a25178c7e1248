"""Semantic diff between two versions of a contract, and the supersedes rule.

The diff compares the normalised documents (see :mod:`rlhf_core.contract.hashing`), so
reformatting never shows up as a change; utilities and clauses are compared in canonical
printed form, clauses matched by label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rlhf_core.contract.build import LoadedContract
from rlhf_core.contract.hashing import normalized_document
from rlhf_core.errors import ContractError


@dataclass(frozen=True)
class Change:
    """One semantic change.

    Attributes:
        kind: ``added``, ``removed`` or ``changed``.
        path: What changed, e.g. ``stakeholders.users.weight`` or ``clauses.safe``.
        old: Previous value (None when added).
        new: New value (None when removed).
    """

    kind: str
    path: str
    old: Any = None
    new: Any = None

    def describe(self) -> str:
        """Human-readable one-liner."""
        if self.kind == "added":
            return f"+ {self.path}: {self.new}"
        if self.kind == "removed":
            return f"- {self.path}: {self.old}"
        return f"~ {self.path}: {self.old} -> {self.new}"


@dataclass(frozen=True)
class ContractDiff:
    """All semantic changes from ``old_hash`` to ``new_hash``."""

    old_hash: str
    new_hash: str
    changes: tuple[Change, ...]

    @property
    def identical(self) -> bool:
        """True when the two versions mean the same (equal canonical hashes)."""
        return self.old_hash == self.new_hash

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "old_hash": self.old_hash,
            "new_hash": self.new_hash,
            "identical": self.identical,
            "changes": [c.__dict__ for c in self.changes],
        }


def _compare(path: str, old: Any, new: Any, out: list[Change]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(old) + [k for k in new if k not in old]:
            sub = f"{path}.{key}" if path else str(key)
            if key not in new:
                out.append(Change("removed", sub, old=old[key]))
            elif key not in old:
                out.append(Change("added", sub, new=new[key]))
            else:
                _compare(sub, old[key], new[key], out)
    elif old != new:
        out.append(Change("changed", path, old=old, new=new))


def _by_name(holders: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {h["name"]: {k: v for k, v in h.items() if k != "name"} for h in holders}


def _clauses_by_label(clauses: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for text in clauses:
        label, _, _ = text.partition(":")
        out[label.strip()] = text
    return out


def diff_contracts(old: LoadedContract, new: LoadedContract) -> ContractDiff:
    """The semantic changes between two contract versions.

    Args:
        old: The earlier version.
        new: The later version.

    Returns:
        Changes to metadata, inputs, stakeholders (weights are the normalised ones; a
        stakeholder order change shows as ``stakeholders.order``), aggregation, clauses
        (by label), selection and approval.
    """
    a, b = normalized_document(old), normalized_document(new)
    changes: list[Change] = []
    for key in ("contract", "version", "description", "supersedes"):
        _compare(key, a[key], b[key], changes)
    _compare("inputs", a["inputs"], b["inputs"], changes)
    _compare("stakeholders", _by_name(a["stakeholders"]), _by_name(b["stakeholders"]), changes)
    old_order = [h["name"] for h in a["stakeholders"]]
    new_order = [h["name"] for h in b["stakeholders"]]
    if set(old_order) == set(new_order) and old_order != new_order:
        changes.append(Change("changed", "stakeholders.order", old_order, new_order))
    _compare("aggregation", a["aggregation"], b["aggregation"], changes)
    _compare("clauses", _clauses_by_label(a["clauses"]), _clauses_by_label(b["clauses"]), changes)
    if [c for c in a["clauses"]] != b["clauses"] and not any(
        c.path.startswith("clauses.") for c in changes
    ):
        changes.append(Change("changed", "clauses.order", a["clauses"], b["clauses"]))
    _compare("selection", a["selection"], b["selection"], changes)
    _compare("approval", a["approval"], b["approval"], changes)
    for key in ("max_candidates", "acknowledge"):
        if a.get(key) != b.get(key):
            kind = "added" if key not in a else "removed" if key not in b else "changed"
            changes.append(Change(kind, key, a.get(key), b.get(key)))
    return ContractDiff(old.hash, new.hash, tuple(changes))


def check_supersedes(old: LoadedContract, new: LoadedContract) -> None:
    """Enforce the amendment rule: a new version names the hash of the version it replaces.

    Raises:
        ContractError: ``new.supersedes`` is missing or is not ``old``'s hash, or the new
            version is the same contract (equal hashes).
    """
    where = str(new.path or new.spec.contract)
    if old.hash == new.hash:
        raise ContractError(f"{where}: same canonical hash as the old version; nothing changed")
    if new.spec.supersedes is None:
        raise ContractError(
            f"{where}: a new version must name the hash it supersedes; add "
            f"'supersedes: {old.hash}'"
        )
    if new.spec.supersedes != old.hash:
        raise ContractError(
            f"{where}: supersedes {new.spec.supersedes} but the old version's hash is "
            f"{old.hash}; set supersedes to the old hash"
        )
