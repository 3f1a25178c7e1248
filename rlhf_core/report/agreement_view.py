"""The report's agreement section: how the reward ranks pairs against the annotators' labels.

Reads the run's ``agreement`` and ``disagreements`` tables (written by
:func:`rlhf_core.evaluate.write_evaluation`); None when the run was not evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass

from rlhf_core.lake.catalog import DISAGREEMENTS_SCHEMA, Table
from rlhf_core.lake.store import Lake
from rlhf_core.lake.text_columns import TEXT_COLUMNS
from rlhf_core.report.optional_tables import read_json

TOP_DISAGREEMENTS = 5
"""Pairs per criterion the report shows (the table in the lake keeps more)."""
TEXT_CHARS = 400
"""Characters of a prompt or response the report shows before cutting it."""
WITHHELD = "[text withheld: the lake encrypts text at rest; read it with `rlhf-wizard query`]"
"""What the report shows instead of a text on an encrypted lake (the report is a plain file)."""


@dataclass(frozen=True)
class AgreementView:
    """The agreement section.

    Attributes:
        signals: ``signal`` rows (reward, utilities, scores, inputs, length), per criterion.
        breakdown: ``length`` and ``group`` rows of the reward.
        clauses: ``clause`` rows (chosen vs rejected flag rates, ``flagged``).
        disagreements: The top pairs per criterion, texts cut to :data:`TEXT_CHARS`.
        calibrations: Weights calibrated to each criterion (``artifacts/<run>/calibration-*``).
    """

    signals: tuple[dict, ...]
    breakdown: tuple[dict, ...]
    clauses: tuple[dict, ...]
    disagreements: tuple[dict, ...]
    calibrations: tuple[dict, ...] = ()

    @property
    def criteria(self) -> tuple[str, ...]:
        """The criteria evaluated, in table order."""
        return tuple(dict.fromkeys(r["criterion"] for r in self.signals))


def _cut(text: str | None, withheld: bool = False) -> str:
    if withheld:
        return WITHHELD
    text = text or ""
    return text if len(text) <= TEXT_CHARS else text[:TEXT_CHARS] + " …"


def read_agreement(lake: Lake, run_id: str) -> AgreementView | None:
    """The run's agreement section, or None when it has no ``agreement`` partition."""
    if not lake.part_paths(Table.AGREEMENT, run_id):
        return None
    rows = lake.read_run(Table.AGREEMENT, run_id).to_pylist()
    review = []
    withheld = lake.encryption.enabled  # never copy encrypted text into a plain HTML file
    if lake.part_paths(Table.DISAGREEMENTS, run_id):
        text = list(TEXT_COLUMNS[Table.DISAGREEMENTS])
        columns = [c for c in DISAGREEMENTS_SCHEMA.names if c not in text] if withheld else None
        for row in lake.read_run(Table.DISAGREEMENTS, run_id, columns=columns).to_pylist():
            if row["rank"] <= TOP_DISAGREEMENTS:
                review.append({**row, **{c: _cut(row.get(c), withheld) for c in text}})
    criteria = dict.fromkeys(r["criterion"] for r in rows)
    calibrations = [doc for c in criteria
                    for doc in [read_json(lake, f"artifacts/{run_id}/calibration-{c}.json")]
                    if isinstance(doc, dict) and "weights" in doc]
    return AgreementView(
        signals=tuple(r for r in rows if r["section"] == "signal"),
        breakdown=tuple(r for r in rows if r["section"] in ("length", "group")),
        clauses=tuple(r for r in rows if r["section"] == "clause"),
        disagreements=tuple(review),
        calibrations=tuple(calibrations),
    )
