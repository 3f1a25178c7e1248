"""Render :class:`RunReportData` into one self-contained HTML page (jinja2, PNGs as data URIs)."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from rlhf_core.report import charts
from rlhf_core.report.collect import RunReportData

TEMPLATE_PACKAGE = ("rlhf_core.report", "templates")
"""Where the templates live: package data of this package (loaded by jinja2's PackageLoader)."""
TEMPLATE = "report.html.j2"
PAIR_LABELS = {"prompts": "prompts considered", "pairs": "pairs written",
               "excluded_clause": "prompts excluded by a FORALL/EXISTS clause",
               "no_allowed": "prompts with no allowed (unvetoed) response",
               "no_pair": "prompts with no pair above the margin",
               "ties": "tie pairs kept (margin 0)", "unpaired": "tied pairs exported as KTO examples only",
               "length_balanced_out": "pairs left out to balance lengths 50/50",
               "labelled": "labelled pairs in the data", "unscored": "labelled pairs with an unscored response",
               "unlabelled": "pairs without a label for the criterion",
               "clause_excluded": "labelled pairs on prompts excluded by a clause",
               "label_ties": "label ties dropped", "vetoed_chosen": "labelled winner vetoed (dropped)",
               "disagreements_dropped": "reward ranks the labelled loser higher (dropped)",
               "disagreements_flagged": "reward ranks the labelled loser higher (flagged)",
               "capped": "pairs over the per-prompt cap"}
LENGTH_BIAS_WARN = 0.3
"""|Spearman ρ| at or above which the report flags a length bias for review."""


def _num(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.2%}"


def length_verdict(spearman: float | None) -> str:
    """One sentence telling a reviewer whether the reward looks length-biased."""
    if spearman is None:
        return "The correlation is undefined (constant reward or length)."
    if abs(spearman) >= LENGTH_BIAS_WARN:
        way = "longer" if spearman > 0 else "shorter"
        return (f"Reward strongly favours {way} responses (|ρ| ≥ {LENGTH_BIAS_WARN}): review the "
                "contract for a length reward hack before training on these scores.")
    return f"No strong length bias (|ρ| < {LENGTH_BIAS_WARN})."


def _kpis(d: RunReportData) -> list[tuple[str, str]]:
    counts = dict(d.run.row_counts) if d.run else {}
    out = [(label, _num(counts.get(key))) for label, key in
           (("rows in", "rows_in"), ("accepted", "accepted"), ("quarantined", "quarantined"),
            ("scored", "scored")) if key in counts]
    if d.stats:
        out += [("mean reward", _num(d.stats["reward"]["mean"])), ("veto rate", _pct(d.stats["veto_rate"]))]
    if d.length:
        out.append(("length ρ", _num(d.length.spearman)))
    return out


def chart_images(d: RunReportData) -> dict[str, str]:
    """Every chart of the page as a PNG data URI, keyed by section (absent sections omitted)."""
    images: dict[str, str] = {}
    if d.histograms:
        named = {("reward" if k == "reward" else f"utility {k[2:]}"): v for k, v in d.histograms.items()}
        images["histograms"] = charts.data_uri(charts.histogram_grid(named))
    if d.stats:
        rates = {f"clause {k}": float(v or 0.0) for k, v in d.stats["violations"].items()}
        rates["veto (any REQUIRES)"] = float(d.stats["veto_rate"])
        images["violations"] = charts.data_uri(charts.rate_bars(rates, "violation and veto rates"))
    if d.length:
        images["length"] = charts.data_uri(charts.length_bias(
            d.length.sample_length, d.length.sample_reward, d.length.deciles, d.length.pearson,
            d.length.spearman))
    if d.pareto and len(d.pareto.stakeholders) >= 2:  # one stakeholder: nothing to plot against
        p = d.pareto
        images["pareto"] = charts.data_uri(charts.pareto_front(p.stakeholders, p.points, p.on_front,
                                                               p.contract, p.nash, p.knee,
                                                               p.annotators))
    if d.agreement and d.agreement.signals:
        images["agreement"] = charts.data_uri(charts.agreement_bars(d.agreement.signals))
    if d.plan and d.plan.gantt_png:
        images["gantt"] = charts.data_uri(d.plan.gantt_png)
    return images


def render_html(d: RunReportData) -> str:
    """The report page for ``d``: all styles inline, all images embedded, no external resource."""
    env = Environment(loader=PackageLoader(*TEMPLATE_PACKAGE), autoescape=select_autoescape(["j2", "html"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    template = env.get_template(TEMPLATE)
    return template.render(
        d=d, images=chart_images(d), kpis=_kpis(d), num=_num, pct=_pct, pair_labels=PAIR_LABELS, verdict=length_verdict,
        length_verdict=length_verdict(d.length.spearman) if d.length else "",
    )
