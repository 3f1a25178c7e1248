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
    optimization: Mapping[str, Any] | None = None,
    agreement: Mapping[str, Any] | None = None,
) -> str:
    """A Markdown summary of one run.

    Args:
        run_id: The run.
        stats: Output of :func:`rlhf_core.scoring.stats.score_stats`.
        ingest: Row counts (``rows_in``, ``accepted``, ``quarantined``, reasons) when ingested.
        contract: Contract facts (``name``, ``hash``, ``approved_by``) when known.
        paths: Files written by the run.
        optimization: Output of the ``optimize-policy`` flow (Pareto summary, KL policy, pairs).
        agreement: Output of the ``evaluate-agreement`` task (accuracy per criterion and
            signal, calibrated weights).
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
    if optimization:
        lines += ["", *optimization_lines(optimization)]
    if agreement:
        lines += ["", *agreement_lines(agreement)]
    if paths:
        lines += ["", "## Written", ""] + [f"- `{p}`" for p in paths]
    return "\n".join(lines) + "\n"


def _point(values: Mapping[str, Any] | Sequence[Any] | None) -> str:
    if values is None:
        return "–"
    if isinstance(values, Mapping):
        return ", ".join(f"{k} {_fmt(v)}" for k, v in values.items())
    return ", ".join(_fmt(v) for v in values)


def _front_head(pareto: Mapping[str, Any]) -> str:
    """``Pareto front: N non-dominated points of M weight vectors``, or one point and why."""
    if pareto.get("single_point"):
        return f"Pareto front: 1 point ({pareto['single_point']})"
    return (f"Pareto front: {pareto.get('n_front', '–')} non-dominated points of "
            f"{pareto.get('n_weights', '–')} weight vectors")


def optimization_lines(opt: Mapping[str, Any]) -> list[str]:
    """Markdown for the Pareto front, the chosen points, λ and the pair counts."""
    pareto, policy, pairs = opt.get("pareto") or {}, opt.get("policy") or {}, opt.get("pairs") or {}
    lines = [
        "## Trade-offs",
        "",
        _front_head(pareto) + f" · hypervolume {_fmt(pareto.get('hypervolume'))}"
        + (f" ± {_fmt(pareto.get('hypervolume_stderr'))}" if pareto.get("hypervolume_stderr") else ""),
        "",
        "| point | mean utilities |",
        "|---|---|",
    ]
    for name in ("contract", "knee", "nash", "ideal"):
        value = pareto.get(name)
        if isinstance(value, Mapping) and "utilities" in value:
            value = value["utilities"]
        if value is not None:
            lines.append(f"| {name} | {_point(value)} |")
    regret = pareto.get("regret")
    if regret:
        lines += ["", f"Regret at the contract's weights: {_point(regret)}"]
    lines += [
        "",
        "## Constrained KL policy",
        "",
        f"λ {_fmt(policy.get('lambda'))} · slack {_fmt(policy.get('slack'))} · KL {_fmt(policy.get('kl'))} · "
        f"E[reward] {_fmt(policy.get('expected_reward'))} · E[{policy.get('cost_column', 'cost')}] "
        f"{_fmt(policy.get('expected_cost'))} ≤ {_fmt(policy.get('budget'))} · "
        f"{'binding' if policy.get('active') else 'inactive'}"
        + (" · nothing to choose: no prompt has two allowed candidates"
           if policy.get("status") == "nothing to choose" else ""),
        "",
        "## DPO pairs",
        "",
        "| pairs | prompts | excluded by clauses | no allowed response | no pair | identical text |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {pairs.get('pairs', '–')} | {pairs.get('prompts', '–')} | {pairs.get('excluded_clause', '–')} | "
        f"{pairs.get('no_allowed', '–')} | {pairs.get('no_pair', '–')} | {pairs.get('identical_text', '–')} |",
    ]
    extra = {k: v for k, v in pairs.items() if k in PAIR_POLICY_COUNTS and v}
    if extra:
        lines += ["", " · ".join(f"{PAIR_POLICY_COUNTS[k]} {v}" for k, v in extra.items())]
    gate = pairs.get("length_gate")
    if isinstance(gate, Mapping):
        lines += ["", *length_bias_lines(gate)]
    return lines


PAIR_POLICY_COUNTS = {
    "ties": "tie pairs (margin 0)", "unpaired": "tied pairs as KTO examples",
    "length_balanced_out": "pairs left out to balance lengths", "labelled": "labelled pairs",
    "unscored": "labelled pairs unscored", "unlabelled": "unlabelled for the criterion",
    "clause_excluded": "labelled pairs excluded by clauses", "label_ties": "label ties dropped",
    "vetoed_chosen": "labelled winner vetoed (dropped)",
    "disagreements_dropped": "reward disagrees (dropped)",
    "disagreements_flagged": "reward disagrees (flagged)", "capped": "over the per-prompt cap",
}
"""Counts of the pair policy shown under the pairs table when non-zero, with their labels."""


def _share(value: Any) -> str:
    return "–" if value is None else f"{value:.1%}"


def length_bias_lines(gate: Mapping[str, Any]) -> list[str]:
    """Markdown for the pairs' length bias and the contract's length gate."""
    d = gate.get("cohens_d")
    lines = [f"Length bias of the {gate.get('n_pairs', 0)} pairs: chosen longer "
             f"{_share(gate.get('chosen_longer_share'))}, rejected longer "
             f"{_share(gate.get('rejected_longer_share'))} · mean length chosen "
             f"{_fmt(gate.get('mean_chosen_chars'))} vs rejected {_fmt(gate.get('mean_rejected_chars'))} "
             f"characters · Cohen's d {_fmt(d)}"]
    limit = gate.get("max_chosen_longer")
    if limit is None:
        lines.append("No length gate (the contract sets no `selection.max_chosen_longer`).")
    elif gate.get("passed", True):
        lines.append(f"Length gate passed: chosen longer at most {_share(limit)} (`max_chosen_longer`).")
    else:
        lines.append(f"**Length gate failed**: chosen longer in {_share(gate.get('chosen_longer_share'))} "
                     f"> {_share(limit)} (`max_chosen_longer`): `rlhf-wizard export` refuses these pairs; "
                     "set `selection.length_balance: true` or relax the threshold and re-run optimize.")
    return lines


def _acc(row: Mapping[str, Any] | None) -> str:
    if not row or row.get("accuracy") is None:
        return "–"
    low, high = row.get("ci_low"), row.get("ci_high")
    ci = f" [{low:.1%}, {high:.1%}]" if low is not None and high is not None else ""
    return f"{row['accuracy']:.1%}{ci}"


def agreement_lines(agreement: Mapping[str, Any]) -> list[str]:
    """Markdown lines: the reward's and the best single input's accuracy per criterion, flagged
    clauses, and the calibrated weights with their held-out accuracy."""
    lines = ["## Agreement with the annotators", "",
             f"{agreement.get('pairs', 0)} labelled pairs; accuracy on strict pairs, 95 % CI over prompts.",
             "", "| criterion | reward | best single input | flagged clauses |", "|---|---:|---:|---|"]
    for criterion, facts in (agreement.get("criteria") or {}).items():
        best = facts.get("best_input") or {}
        best_text = f"{best['name']} {best['accuracy']:.1%}" if best.get("accuracy") is not None else "–"
        lines.append(f"| {criterion} | {_acc(facts.get('reward'))} | {best_text} | "
                     f"{', '.join(facts.get('flagged_clauses') or []) or '–'} |")
    calibration = agreement.get("calibration") or {}
    fitted = {c: r for c, r in calibration.items() if "weights" in r}
    if fitted:
        lines += ["", "| calibrated to | weights | held-out accuracy (contract → calibrated) |",
                  "|---|---|---:|"]
        for criterion, r in fitted.items():
            weights = ", ".join(f"{k} {v:.3f}" for k, v in r["weights"].items())
            before, after = r.get("contract_heldout_accuracy"), r.get("heldout_accuracy")
            held = f"{before:.1%} → {after:.1%}" if before is not None and after is not None else "–"
            lines.append(f"| {criterion} | {weights} | {held} |")
    for criterion, r in calibration.items():
        if "skipped" in r:
            lines.append(f"\nNot calibrated to {criterion}: {r['skipped']}")
    return lines
