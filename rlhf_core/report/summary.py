"""Markdown run summaries (the Prefect artifact and the CLI's closing print)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "–" if value is None else str(value)


def score_table_rows(stats: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per measure, for a Prefect table artifact."""
    rows = [{"measure": f"reward {k}", "value": _fmt(v)} for k, v in stats["reward"].items()]
    rows.append({"measure": "veto rate", "value": _fmt(stats["veto_rate"])})
    rows.append({"measure": "mean penalty", "value": _fmt(stats["mean_penalty"])})
    rows.append({"measure": "outside bargaining set", "value": _fmt(stats["outside_bargaining_rate"])})
    for name, s in stats["utilities"].items():
        rows.append({"measure": f"utility {name} mean", "value": _fmt(s["mean"])})
    for clause, rate in stats["violations"].items():
        rows.append({"measure": f"clause {clause} violation rate", "value": _fmt(rate)})
    return rows


def render_score_summary(
    run_id: str,
    stats: Mapping[str, Any],
    *,
    ingest: Mapping[str, Any] | None = None,
    contract: Mapping[str, Any] | None = None,
    paths: Sequence[str] = (),
) -> str:
    """A Markdown summary of one run.

    Args:
        run_id: The run.
        stats: Output of :func:`rlhf_core.io.score_stats.score_stats`.
        ingest: Row counts (``rows_in``, ``accepted``, ``quarantined``, reasons) when ingested.
        contract: Contract facts (``name``, ``hash``, ``approved_by``) when known.
        paths: Files written by the run.
    """
    lines = [f"# Run `{run_id}`", ""]
    if contract:
        approved = ", ".join(contract.get("approved_by", [])) or "not approved (dry run)"
        lines += [f"Contract **{contract.get('name', '?')}** `{contract.get('hash', '?')}` — approved by {approved}", ""]
    if ingest:
        lines += [
            "## Rows",
            "",
            "| in | accepted | quarantined |",
            "|---:|---:|---:|",
            f"| {ingest.get('rows_in', '–')} | {ingest.get('accepted', '–')} | {ingest.get('quarantined', '–')} |",
            "",
        ]
        reasons = ingest.get("quarantine_reasons") or {}
        if reasons:
            lines += ["| quarantine rule | rows |", "|---|---:|"]
            lines += [f"| {rule} | {n} |" for rule, n in sorted(reasons.items())] + [""]
    reward = stats["reward"]
    lines += [
        f"## Reward ({stats['rows']} scored responses)",
        "",
        "| mean | std | min | p05 | p25 | p50 | p75 | p95 | max |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        "| " + " | ".join(_fmt(reward[k]) for k in ("mean", "std", "min", "p05", "p25", "p50", "p75", "p95", "max")) + " |",
        "",
        f"Veto rate {_fmt(stats['veto_rate'])} · mean penalty {_fmt(stats['mean_penalty'])} · "
        f"outside the bargaining set {_fmt(stats['outside_bargaining_rate'])}",
        "",
        "## Stakeholder utilities",
        "",
        "| stakeholder | mean | std | min | max |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {name} | {_fmt(s['mean'])} | {_fmt(s['std'])} | {_fmt(s['min'])} | {_fmt(s['max'])} |"
        for name, s in stats["utilities"].items()
    ]
    lines += ["", "## Clauses", "", "| clause | violation rate |", "|---|---:|"]
    lines += [f"| {clause} | {_fmt(rate)} |" for clause, rate in stats["violations"].items()]
    if paths:
        lines += ["", "## Written", ""] + [f"- `{p}`" for p in paths]
    return "\n".join(lines) + "\n"
