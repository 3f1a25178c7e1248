"""Write a new version of a contract with only its stakeholder weights replaced.

The new version names the old one's hash in ``supersedes``, bumps the minor version (or takes
the one given) and keeps every other key, value and comment of the file (a round-trip YAML
edit). Signatures are not carried over — they bind the old file's exact bytes, and a contract
whose weights changed must be approved again by its stakeholders.
"""

from __future__ import annotations

import io
from collections.abc import Mapping

from ruamel.yaml import YAML

from rlhf_core.contract.build import LoadedContract, load_contract_text
from rlhf_core.contract.spec import semver_key
from rlhf_core.errors import ContractError

__all__ = ["next_minor_version", "revise_weights"]


def next_minor_version(version: str) -> str:
    """``1.2.3`` (or ``1.2.3-rc.1``) -> ``1.3.0``."""
    major, minor, _ = semver_key(version)
    return f"{major}.{minor + 1}.0"


def revise_weights(contract: LoadedContract, weights: Mapping[str, float], *,
                   version: str | None = None, note: str | None = None) -> str:
    """The text of a new contract version with ``weights`` in place of the stakeholders' weights.

    Args:
        contract: The current version (loaded from its file).
        weights: New weight per stakeholder name; every stakeholder must be given, each >= 0,
            not all zero. Written rounded to 6 significant digits.
        version: The new version (default: the next minor version); must be higher.
        note: A comment line to put at the top (e.g. where the weights came from).

    Returns:
        The YAML text; it loads, checks and hashes differently from ``contract``.

    Raises:
        ContractError: Missing or unknown stakeholders, invalid weights, or a version that is not
            higher than the current one.
    """
    names = [s.name for s in contract.program.stakeholders]
    where = str(contract.path or contract.spec.contract)
    if set(weights) != set(names):
        raise ContractError(f"{where}: new weights must name exactly the stakeholders "
                            f"{', '.join(names)}; got {', '.join(sorted(weights)) or 'none'}")
    if any(not (w >= 0.0) for w in weights.values()) or sum(weights.values()) <= 0.0:
        raise ContractError(f"{where}: new weights must be non-negative and not all zero")
    new_version = version or next_minor_version(contract.spec.version)
    if semver_key(new_version) <= semver_key(contract.spec.version):
        raise ContractError(f"{where}: version {new_version} is not higher than "
                            f"{contract.spec.version}; give a higher --version")
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 100
    document = yaml.load(contract.text)
    document["version"] = new_version
    document["supersedes"] = contract.hash
    for holder in document["stakeholders"]:
        holder["weight"] = float(f"{weights[holder['name']]:.6g}")
    out = io.StringIO()
    if note:
        out.write("".join(f"# {line}\n" for line in note.splitlines()))
    yaml.dump(document, out)
    text = out.getvalue()
    load_contract_text(text, file=f"{where} (revised)")  # fail here, not at the next load
    return text
