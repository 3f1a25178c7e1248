"""Report charts: matplotlib on the Agg canvas, returned as PNG bytes (no pyplot, no global state).

Every function takes already-aggregated numbers (histogram counts, a point sample, front points),
so the cost of a chart does not grow with the run's row count.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

_DPI = 96
_BLUE, _RED, _GREY, _GREEN, _ORANGE = "#1f77b4", "#d62728", "#9e9e9e", "#2ca02c", "#ff7f0e"
_PURPLES = ("#9467bd", "#e377c2", "#8c564b")


def data_uri(png: bytes) -> str:
    """A ``data:image/png;base64,...`` URI embedding ``png`` in the page."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _figure(width: float, height: float, **margins: float) -> Figure:
    # Fixed margins instead of a layout engine: constrained/tight layout re-measures every tick
    # label and costs more than drawing the chart itself.
    fig = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(**margins)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI)
    return buf.getvalue()


def histogram_grid(histograms: Mapping[str, tuple[np.ndarray, np.ndarray]], columns: int = 3) -> bytes:
    """Small-multiple histograms, one panel per named distribution.

    Args:
        histograms: ``name -> (edges [B+1], counts [B])`` as computed by the lake aggregation.
        columns: Panels per row.

    Returns:
        PNG bytes.
    """
    names = list(histograms)
    cols = max(1, min(columns, len(names)))
    rows = max(1, -(-len(names) // cols))
    fig = _figure(3.4 * cols, 2.5 * rows, left=0.22 / cols + 0.02, right=0.98, bottom=0.35 / (2.5 * rows),
                  top=1 - 0.3 / (2.5 * rows), wspace=0.35, hspace=0.45)
    for i, name in enumerate(names):
        edges, counts = histograms[name]
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.stairs(counts, edges, fill=True, color=_BLUE if i == 0 else _GREEN, alpha=0.8)
        ax.set_title(name, fontsize=10)
        ax.set_ylabel("responses", fontsize=8)
        ax.tick_params(labelsize=8)
    return _png(fig)


def rate_bars(rates: Mapping[str, float], title: str) -> bytes:
    """Horizontal bars of rates in [0, 1] (clause violation rates, veto rate).

    Args:
        rates: ``label -> rate``.
        title: Axis title.

    Returns:
        PNG bytes.
    """
    labels = list(rates)
    values = np.asarray([rates[k] for k in labels], dtype=float)
    height = 0.45 * max(len(labels), 2) + 1.0
    longest = max((len(k) for k in labels), default=1)
    fig = _figure(6.4, height, left=min(0.5, 0.03 + 0.0125 * longest), right=0.95,
                  bottom=0.55 / height, top=1 - 0.35 / height)
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(len(labels))
    ax.barh(y, values, color=[_RED if v > 0 else _GREY for v in values])
    ax.set_yticks(y, labels, fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, max(0.05, float(values.max(initial=0.0)) * 1.15))
    for yi, v in zip(y, values, strict=True):
        ax.text(v, yi, f" {v:.2%}", va="center", fontsize=8)
    ax.set_xlabel("share of scored responses", fontsize=9)
    ax.set_title(title, fontsize=10)
    return _png(fig)


def length_bias(
    length: np.ndarray,
    reward: np.ndarray,
    binned: Sequence[tuple[float, float]],
    pearson: float | None,
    spearman: float | None,
) -> bytes:
    """Reward against response length: hexbin of a sample plus the binned mean over all rows.

    Args:
        length: Sampled response lengths (characters), shape ``[n]``.
        reward: Their rewards, shape ``[n]``.
        binned: ``(mean length, mean reward)`` per length decile over every row.
        pearson: Pearson correlation over every row (None when undefined).
        spearman: Spearman rank correlation over every row (None when undefined).

    Returns:
        PNG bytes.
    """
    fig = _figure(6.4, 4.0, left=0.12, right=0.98, bottom=0.12, top=0.92)
    ax = fig.add_subplot(1, 1, 1)
    if len(length):
        hb = ax.hexbin(length, reward, gridsize=40, mincnt=1, cmap="Blues", bins="log")
        fig.colorbar(hb, ax=ax, label="responses (log)")
    if binned:
        bx, by = zip(*binned, strict=True)
        ax.plot(bx, by, "o-", color=_ORANGE, label="mean reward per length decile")
        ax.legend(loc="lower right", fontsize=8)
    fmt = lambda v: "n/a" if v is None else f"{v:+.3f}"  # noqa: E731
    ax.set_title(f"reward vs response length (Pearson {fmt(pearson)}, Spearman {fmt(spearman)})",
                 fontsize=10)
    ax.set_xlabel("response length (characters)", fontsize=9)
    ax.set_ylabel("reward", fontsize=9)
    return _png(fig)


def pareto_front(
    stakeholders: Sequence[str],
    points: np.ndarray,
    on_front: np.ndarray,
    contract: np.ndarray | None,
    nash: np.ndarray | None,
    knee: np.ndarray | None,
    annotators: Mapping[str, np.ndarray] | None = None,
) -> bytes:
    """Pairwise projections of the stakeholder utility trade-off.

    Args:
        stakeholders: Objective names, ``S >= 2``.
        points: Utilities of every evaluated weight vector, ``[N, S]``.
        on_front: Non-dominated mask, ``[N]``.
        contract: The contract's point ``[S]`` (None when not evaluated).
        nash: The Nash bargaining point ``[S]``.
        knee: The knee point ``[S]``.
        annotators: Points of weights calibrated to the annotators' labels, by label ``[S]``.

    Returns:
        PNG bytes with up to three panels (the first three stakeholder pairs).
    """
    s = len(stakeholders)
    pairs = [(i, j) for i in range(s) for j in range(i + 1, s)][:3]
    width = 3.6 * len(pairs) + 0.6
    fig = _figure(width, 3.5, left=0.6 / width, right=0.98, bottom=0.14, top=0.95, wspace=0.3)
    for k, (i, j) in enumerate(pairs):
        ax = fig.add_subplot(1, len(pairs), k + 1)
        ax.scatter(points[~on_front, i], points[~on_front, j], s=6, color=_GREY, label="dominated")
        ax.scatter(points[on_front, i], points[on_front, j], s=10, color=_BLUE, label="Pareto front")
        for point, marker, color, label in ((contract, "*", _RED, "contract"),
                                            (nash, "D", _GREEN, "Nash"),
                                            (knee, "s", _ORANGE, "knee")):
            if point is not None:
                ax.scatter([point[i]], [point[j]], s=110, marker=marker, color=color,
                           edgecolor="black", zorder=5, label=label)
        for n, (label, point) in enumerate((annotators or {}).items()):
            ax.scatter([point[i]], [point[j]], s=110, marker="P", color=_PURPLES[n % len(_PURPLES)],
                       edgecolor="black", zorder=6, label=label)
        ax.set_xlabel(f"utility {stakeholders[i]}", fontsize=9)
        ax.set_ylabel(f"utility {stakeholders[j]}", fontsize=9)
        ax.tick_params(labelsize=8)
        if k == 0:
            ax.legend(fontsize=7, loc="best")
    return _png(fig)


def agreement_bars(rows: Sequence[Mapping[str, object]]) -> bytes:
    """Accuracy of each signal against the labels, with its bootstrap interval, per criterion.

    Args:
        rows: ``signal`` rows of the ``agreement`` table (``criterion``, ``name``, ``kind``,
            ``accuracy``, ``ci_low``, ``ci_high``); rows without an accuracy are skipped.

    Returns:
        PNG bytes: one horizontal bar per (criterion, signal), the contract's reward in orange, a
        dashed line at 0.5 (a coin flip).
    """
    shown = [r for r in rows if r.get("accuracy") is not None and r.get("kind") != "best_input"]
    labels = [f"{r['criterion']}: {r['name']}" for r in shown]
    acc = np.asarray([float(r["accuracy"]) for r in shown], dtype=float)
    low = np.asarray([float(r["ci_low"]) if r.get("ci_low") is not None else a
                      for r, a in zip(shown, acc, strict=True)])
    high = np.asarray([float(r["ci_high"]) if r.get("ci_high") is not None else a
                       for r, a in zip(shown, acc, strict=True)])
    height = 0.32 * max(len(labels), 2) + 1.0
    longest = max((len(k) for k in labels), default=1)
    fig = _figure(6.4, height, left=min(0.55, 0.03 + 0.0125 * longest), right=0.95,
                  bottom=0.55 / height, top=1 - 0.35 / height)
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(len(labels))
    colors = [_ORANGE if r["kind"] == "contract" else _GREY for r in shown]
    ax.barh(y, acc, color=colors, xerr=np.vstack([acc - low, high - acc]), capsize=2,
            error_kw={"elinewidth": 0.8})
    ax.axvline(0.5, color="#555", linestyle="--", linewidth=0.8)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy on strictly labelled pairs (95 % CI, prompts resampled)", fontsize=9)
    ax.set_title("agreement with the annotators", fontsize=10)
    return _png(fig)
