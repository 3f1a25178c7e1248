"""Adapter registry: name -> adapter (``helpsteer``, ``pku_saferlhf``, ``ultrafeedback``,
``hh_rlhf``, ``generic``)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from rlhf_core.errors import DataError
from rlhf_core.ingest.adapters.base import IngestResult
from rlhf_core.ingest.adapters.generic import GenericAdapter
from rlhf_core.ingest.adapters.helpsteer import HelpSteerAdapter
from rlhf_core.ingest.adapters.hh_rlhf import HhRlhfAdapter
from rlhf_core.ingest.adapters.mapping import Mapping
from rlhf_core.ingest.adapters.pku_saferlhf import PkuSafeRlhfAdapter
from rlhf_core.ingest.adapters.ultrafeedback import UltraFeedbackAdapter


class Adapter(Protocol):
    """What every adapter offers."""

    name: str

    def ingest(self, path: str | Path, *, run_id: str) -> IngestResult:
        """Read one source file into the normalised tables."""
        ...


BUILTIN_ADAPTERS: dict[str, type] = {
    "helpsteer": HelpSteerAdapter,
    "pku_saferlhf": PkuSafeRlhfAdapter,
    "ultrafeedback": UltraFeedbackAdapter,
    "hh_rlhf": HhRlhfAdapter,
}

ADAPTER_NAMES: tuple[str, ...] = (*BUILTIN_ADAPTERS, "generic")


def get_adapter(name: str, mapping: Mapping | str | Path | None = None) -> Adapter:
    """The adapter called ``name``; ``generic`` needs ``mapping`` (a :class:`Mapping` or file).

    Raises:
        DataError: For an unknown name, or ``generic`` without a mapping.
    """
    if name == "generic":
        if mapping is None:
            raise DataError("adapter 'generic' needs a mapping file (--mapping FILE)")
        return GenericAdapter(mapping)
    if name not in BUILTIN_ADAPTERS:
        raise DataError(f"unknown adapter '{name}'; choose one of {', '.join(ADAPTER_NAMES)}")
    return BUILTIN_ADAPTERS[name]()


def ingest(
    path: str | Path,
    *,
    run_id: str,
    adapter: str | None = None,
    mapping: Mapping | str | Path | None = None,
) -> IngestResult:
    """Ingest ``path`` with a named adapter, or with the generic adapter when ``mapping`` is given."""
    if adapter is None:
        adapter = "generic" if mapping is not None else None
    if adapter is None:
        raise DataError("give an adapter name (--adapter) or a mapping file (--mapping)")
    return get_adapter(adapter, mapping).ingest(path, run_id=run_id)
