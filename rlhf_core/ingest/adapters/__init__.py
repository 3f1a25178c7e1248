"""Dataset adapters: source files -> normalised ``responses`` / ``preferences`` / ``quarantine``.

Usage::

    from rlhf_core.ingest.adapters import ingest
    result = ingest("helpsteer_train500.jsonl", adapter="helpsteer", run_id="run-1")
    result.responses, result.preferences, result.quarantine, result.rows_read
"""

from rlhf_core.ingest.adapters.base import IngestResult, check_conservation
from rlhf_core.ingest.adapters.generic import GenericAdapter
from rlhf_core.ingest.adapters.helpsteer import HelpSteerAdapter
from rlhf_core.ingest.adapters.hh_rlhf import HhRlhfAdapter
from rlhf_core.ingest.adapters.mapping import Mapping, load_mapping
from rlhf_core.ingest.adapters.pku_saferlhf import PkuSafeRlhfAdapter
from rlhf_core.ingest.adapters.records import RecordError
from rlhf_core.ingest.adapters.registry import ADAPTER_NAMES, Adapter, get_adapter, ingest
from rlhf_core.ingest.adapters.ultrafeedback import UltraFeedbackAdapter

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
