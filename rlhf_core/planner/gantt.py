"""Render a plan: a Gantt chart with resource profiles (PNG bytes) and a Markdown summary.

Rendering returns bytes/text; writing them is the caller's (I/O layer's) job.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rlhf_core.planner.plan import Plan  # noqa: E402

MAX_LABELLED = 80


def gantt_png(plan: Plan, dpi: int = 110) -> bytes:
    """A Gantt chart (critical activities in red) above one resource-profile panel per resource.

    Args:
        plan: A verified plan.
        dpi: Resolution.

    Returns:
        PNG file content.
    """
    proj = plan.project
    arrays = proj.arrays()
    n, k = len(proj.activities), len(proj.resources)
    usage = plan.usage()
    fig, axes = plt.subplots(
        1 + k, 1, sharex=True, figsize=(11, 3 + 0.22 * n + 1.3 * k),
        gridspec_kw={"height_ratios": [max(3.0, 0.22 * n)] + [1.3] * k},
    )
    axes = np.atleast_1d(axes)
    ax = axes[0]
    crit = plan.critical
    for row, (s, d) in enumerate(zip(plan.starts, arrays.durations, strict=True)):
        color = "#d62728" if crit[row] else "#1f77b4"
        if d == 0:
            ax.plot([s], [row], marker="D", color=color, markersize=5)
        else:
            ax.barh(row, d, left=s, height=0.7, color=color, edgecolor="black", linewidth=0.4)
    ax.set_yticks(range(n))
    if n <= MAX_LABELLED:
        ax.set_yticklabels([a.name for a in proj.activities], fontsize=7)
    ax.invert_yaxis()
    ax.set_title(
        f"{proj.name}: makespan {plan.makespan} (lower bound {plan.lower_bound}); "
        f"red = critical ({plan.config.algorithm}, {plan.schedules} schedules, seed {plan.config.seed})",
        fontsize=9,
    )
    ax.grid(axis="x", alpha=0.3)
    t = np.arange(usage.shape[0] + 1)
    for r, res in enumerate(proj.resources):
        rax = axes[1 + r]
        prof = np.append(usage[:, r], usage[-1, r] if usage.shape[0] else 0)
        rax.step(t, prof, where="post", color="#2ca02c")
        rax.fill_between(t, prof, step="post", alpha=0.3, color="#2ca02c")
        rax.axhline(res.capacity, color="black", linestyle="--", linewidth=0.8)
        rax.set_ylabel(res.name, fontsize=8)
        rax.set_ylim(0, max(res.capacity, 1) * 1.15)
    axes[-1].set_xlabel("time")
    axes[-1].set_xlim(0, max(plan.makespan, 1))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


def plan_markdown(plan: Plan, max_rows: int = 100) -> str:
    """A Markdown summary: bounds, search settings and the activity table.

    Args:
        plan: A verified plan.
        max_rows: Activity rows shown before truncation.

    Returns:
        Markdown text.
    """
    proj = plan.project
    gap = 100.0 * (plan.makespan - plan.lower_bound) / max(plan.lower_bound, 1)
    lines = [
        f"# Plan: {proj.name}",
        "",
        "| makespan | critical-path bound | resource bound | gap to bound | algorithm | schedules | seed | seconds |",
        "|---:|---:|---:|---:|---|---:|---:|---:|",
        f"| {plan.makespan} | {plan.cp_bound} | {plan.resource_bound} | {gap:.1f} % | "
        f"{plan.config.algorithm} | {plan.schedules} | {plan.config.seed} | {plan.seconds:.2f} |",
        "",
        "| activity | kind | start | finish | slack | critical |",
        "|---|---|---:|---:|---:|:-:|",
    ]
    order = np.argsort(plan.starts, kind="stable")
    for j in order[:max_rows]:
        act = proj.activities[j]
        lines.append(
            f"| {act.name} | {act.kind} | {plan.starts[j]} | {plan.finishes[j]} | "
            f"{plan.slack[j]} | {'yes' if plan.critical[j] else ''} |"
        )
    if len(order) > max_rows:
        lines.append(f"| ... {len(order) - max_rows} more | | | | | |")
    return "\n".join(lines) + "\n"
