"""Summary statistics of a run's scores, computed by DuckDB straight from the Parquet parts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

from rlhf_core.errors import LakeError
from rlhf_core.lake.scan import parquet_relation

UTILITY_PREFIX = "u_"
VIOLATION_PREFIX = "v_"
_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def score_stats(paths: Sequence[str]) -> dict[str, Any]:
    """Reward distribution, utility stats per stakeholder, violation and veto rates per clause.

    Args:
        paths: Parquet part files of one ``scores`` partition (local paths or lake URIs).

    Returns:
        ``{"rows", "reward": {mean, std, min, max, p05..p95}, "veto_rate", "mean_penalty",
        "outside_bargaining_rate", "utilities": {name: {mean, std, min, max}},
        "violations": {clause: rate}}``.

    Raises:
        LakeError: No paths, or the files cannot be read.
    """
    if not paths:
        raise LakeError("no scores files to summarise; did the scoring stage write any shard?")
    con = duckdb.connect()
    try:
        rel = parquet_relation(con, paths)
        rel.create_view("run_scores")
        columns = rel.columns
        utilities = [c for c in columns if c.startswith(UTILITY_PREFIX)]
        violations = [c for c in columns if c.startswith(VIOLATION_PREFIX)]
        # One sort for all quantiles (the list form), not one per quantile.
        quantiles = f"quantile_cont(reward, [{', '.join(repr(q) for q in _QUANTILES)}])"
        selects = [
            "count(*)", "avg(reward)", "stddev_pop(reward)", "min(reward)", "max(reward)", quantiles,
            "avg(veto::DOUBLE)", "avg(penalty)",
            "avg(outside_bargaining_set::DOUBLE)" if "outside_bargaining_set" in columns else "0.0",
        ]
        for col in utilities:
            q = _quoted(col)
            selects += [f"avg({q})", f"stddev_pop({q})", f"min({q})", f"max({q})"]
        selects += [f"avg({_quoted(col)}::DOUBLE)" for col in violations]
        row = list(con.execute(f"SELECT {', '.join(selects)} FROM run_scores").fetchone())
    except duckdb.Error as exc:
        raise LakeError(f"cannot summarise scores {paths[0]}…: {exc}") from exc
    finally:
        con.close()
    rows, mean, std, lo, hi, quantile_values, *rest = row
    quant = dict(zip((f"p{int(q * 100):02d}" for q in _QUANTILES),
                     quantile_values or [None] * len(_QUANTILES), strict=True))
    veto_rate, mean_penalty, outside = rest[:3]
    rest = rest[3:]
    stats_u = {}
    for i, col in enumerate(utilities):
        m, s, a, b = rest[4 * i: 4 * i + 4]
        stats_u[col[len(UTILITY_PREFIX):]] = {"mean": m, "std": s, "min": a, "max": b}
    rest = rest[4 * len(utilities):]
    return {
        "rows": int(rows),
        "reward": {"mean": mean, "std": std, "min": lo, "max": hi, **quant},
        "veto_rate": veto_rate or 0.0,
        "mean_penalty": mean_penalty or 0.0,
        "outside_bargaining_rate": outside or 0.0,
        "utilities": stats_u,
        "violations": {col[len(VIOLATION_PREFIX):]: rate for col, rate in zip(violations, rest, strict=True)},
    }
