"""Dataset adapters: source files -> normalised ``responses`` / ``preferences`` / ``quarantine``.

Usage::

    from rlhf_core.io.adapters import ingest
    result = ingest("helpsteer_train500.jsonl", adapter="helpsteer", run_id="run-1")
    result.responses, result.preferences, result.quarantine, result.rows_read
"""

from rlhf_core.io.adapters.base import IngestResult, check_conservation
from rlhf_core.io.adapters.generic import GenericAdapter
from rlhf_core.io.adapters.helpsteer import HelpSteerAdapter
from rlhf_core.io.adapters.hh_rlhf import HhRlhfAdapter
from rlhf_core.io.adapters.mapping import Mapping, load_mapping
from rlhf_core.io.adapters.pku_saferlhf import PkuSafeRlhfAdapter
from rlhf_core.io.adapters.records import RecordError
from rlhf_core.io.adapters.registry import ADAPTER_NAMES, Adapter, get_adapter, ingest
from rlhf_core.io.adapters.ultrafeedback import UltraFeedbackAdapter

__all__ = [
    "ADAPTER_NAMES",
    "Adapter",
    "GenericAdapter",
    "HelpSteerAdapter",
    "HhRlhfAdapter",
    "IngestResult",
    "Mapping",
    "PkuSafeRlhfAdapter",
    "RecordError",
    "UltraFeedbackAdapter",
    "check_conservation",
    "get_adapter",
    "ingest",
    "load_mapping",
]
