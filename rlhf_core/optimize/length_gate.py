"""The length gate: pairs whose chosen response is too often the longer one are not exported.

DPO and reward models learn length whenever chosen responses are systematically longer. When a
contract sets ``selection.max_chosen_longer`` (e.g. 0.65), the pair selection checks the share of
pairs with the longer response chosen with a Great Expectations expectation
(:func:`rlhf_core.quality.gx.check_length_bias`) and stores the verdict with the selection counts
(``artifacts/<run>/pairs.json``, key ``length_gate``). The run goes on either way (the figures
are in its summary and report); ``rlhf-wizard export`` refuses a failed gate in one line naming
the share, the threshold and the fix (``length_balance: true``, or a relaxed threshold).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rlhf_core.errors import DataQualityError
from rlhf_core.optimize.export_lengths import PairLengthBias
from rlhf_core.optimize.pair_rows import paired_rows

__all__ = ["LengthBiasError", "chosen_longer", "length_gate", "require_length_gate"]


class LengthBiasError(DataQualityError):
    """A run's pairs fail the contract's length gate; the export is refused."""


def chosen_longer(pairs: pa.Table) -> np.ndarray:
    """bool per row exported as a pair (``kind`` pair / tie): the chosen response is longer."""
    if "kind" in pairs.column_names:
        pairs = pairs.filter(paired_rows(pairs.column("kind")))
    longer = pc.greater(pc.utf8_length(pairs.column("chosen")), pc.utf8_length(pairs.column("rejected")))
    return np.asarray(longer.to_numpy(zero_copy_only=False), bool)


def length_gate(pairs: pa.Table, lengths: PairLengthBias, max_chosen_longer: float | None,
                run_id: str) -> dict[str, Any]:
    """The gate's record for ``pairs.json``: the figures, the threshold and the GX verdict.

    Args:
        pairs: The pair set (``chosen``, ``rejected``, ``kind``).
        lengths: Its length figures (:func:`rlhf_core.optimize.export_lengths.pair_length_bias`).
        max_chosen_longer: The contract's threshold; None: no gate (``passed`` True).
        run_id: Named in errors.
    """
    doc: dict[str, Any] = {"max_chosen_longer": max_chosen_longer, **lengths.as_dict()}
    if max_chosen_longer is None:
        return {**doc, "passed": True, "expectation": None}
    from rlhf_core.quality.gx import check_length_bias

    verdict = check_length_bias(chosen_longer(pairs), max_chosen_longer, run_id=run_id)
    return {**doc, "passed": verdict["success"], "expectation": verdict}


def require_length_gate(pair_counts: Mapping[str, Any] | None, run_id: str) -> None:
    """Refuse an export whose pairs failed the length gate.

    Args:
        pair_counts: The selection's ``pairs.json`` (None or without ``length_gate``: pairs
            selected without a gate, nothing to refuse).
        run_id: The run.

    Raises:
        LengthBiasError: One line: the share, the threshold and the fix.
    """
    gate = (pair_counts or {}).get("length_gate")
    if not isinstance(gate, Mapping) or gate.get("passed", True):
        return
    share, limit = gate.get("chosen_longer_share"), gate.get("max_chosen_longer")
    d = gate.get("cohens_d")
    raise LengthBiasError(
        f"run {run_id}: export refused by the length gate: the chosen response is the longer one in "
        f"{share:.1%} of {gate.get('n_pairs')} pairs, above selection.max_chosen_longer {limit:.1%}"
        + (f" (Cohen's d {d:.2f})" if isinstance(d, float) else "")
        + "; set selection.length_balance: true (or relax max_chosen_longer) in the contract and "
          "re-run `rlhf-wizard optimize`, then export")
