"""Reward contracts: spec models, Legal-Blocks, compiled program, canonical hash, diff, card.

Public API (imported lazily so that submodules such as ``program`` and ``legal_blocks`` can be
imported on their own)::

    load_contract(path) -> LoadedContract          # spec + program + path + text
    load_contract_text(text, file) -> LoadedContract
    build_program(spec, source=None) -> ContractProgram
    contract_hash(contract) -> "sha256:<hex>"
    diff_contracts(old, new) -> ContractDiff; check_supersedes(old, new)
    render_card(contract, report=None) -> str
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ContractSpec": "rlhf_core.contract.spec",
    "LoadedContract": "rlhf_core.contract.build",
    "load_contract": "rlhf_core.contract.build",
    "load_contract_text": "rlhf_core.contract.build",
    "build_program": "rlhf_core.contract.build",
    "contract_hash": "rlhf_core.contract.hashing",
    "normalized_document": "rlhf_core.contract.hashing",
    "ContractDiff": "rlhf_core.contract.diff",
    "diff_contracts": "rlhf_core.contract.diff",
    "check_supersedes": "rlhf_core.contract.diff",
    "render_card": "rlhf_core.contract.card",
    "ContractProgram": "rlhf_core.contract.program",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rlhf_core.contract' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
