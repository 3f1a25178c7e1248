"""Aggregations behind the report, computed by DuckDB over Arrow tables (no per-row Python).

Inputs are Arrow tables already read from the lake (only the columns needed); outputs are small:
histogram counts, correlations, decile means, a bounded point sample, grouped counts. So the
report's cost is one columnar pass per table however many rows a run has.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rlhf_core.errors import LakeError

HISTOGRAM_BINS = 40
SCATTER_SAMPLE = 5_000


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def histograms(table: pa.Table, columns: list[str], bins: int = HISTOGRAM_BINS) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Equal-width histograms of numeric columns.

    Args:
        table: Arrow table holding ``columns`` (NULLs and NaNs are ignored).
        columns: Numeric column names.
        bins: Bins per histogram.

    Returns:
        ``column -> (edges float64 [bins+1], counts int64 [bins])``; a constant column gets one
        unit-wide range centred on its value. Columns with no finite value are left out.
    """
    con = duckdb.connect()
    try:
        con.register("t", table)
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for col in columns:
            q = f"CAST({_quoted(col)} AS DOUBLE)"
            lo, hi = con.execute(f"SELECT min({q}), max({q}) FROM t WHERE isfinite({q})").fetchone()
            if lo is None:
                continue
            if hi <= lo:
                lo, hi = lo - 0.5, hi + 0.5
            width = (hi - lo) / bins
            rows = con.execute(
                f"SELECT least(CAST(floor(({q} - ?) / ?) AS BIGINT), ?) AS b, count(*) FROM t "
                f"WHERE isfinite({q}) GROUP BY b", [lo, width, bins - 1]).fetchall()
            counts = np.zeros(bins, np.int64)
            for b, n in rows:
                counts[int(b)] = n
            out[col] = (np.linspace(lo, hi, bins + 1), counts)
        return out
    finally:
        con.close()


@dataclass(frozen=True)
class LengthBias:
    """How reward relates to response length over a whole run.

    Attributes:
        rows: Scored responses joined with their text.
        pearson: Pearson correlation of reward and length (None if undefined, e.g. constant).
        spearman: Spearman rank correlation (average ranks for ties).
        deciles: ``(mean length, mean reward)`` per length decile, shortest first.
        sample_length: Lengths of a seeded reservoir sample (at most ``SCATTER_SAMPLE``), int64.
        sample_reward: Rewards of the same sample, float64.
    """

    rows: int
    pearson: float | None
    spearman: float | None
    deciles: tuple[tuple[float, float], ...]
    sample_length: np.ndarray
    sample_reward: np.ndarray


def _finite(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def response_lengths(responses: pa.Table) -> pa.Table:
    """``response_id`` and the response's length in characters (``length``), text dropped."""
    return pa.table({"response_id": responses.column("response_id"),
                     "length": pc.utf8_length(responses.column("response")).cast(pa.int64())})


def declared_lengths(responses: pa.Table, column: str = "length") -> pa.Table | None:
    """``response_id`` and a numeric length attribute the data declares (e.g. tokens), if any."""
    if column not in responses.column_names:
        return None
    values = responses.column(column)
    if not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)):
        return None
    return pa.table({"response_id": responses.column("response_id"), "length": values.cast(pa.float64())})


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank (as ``rank() + (ties - 1) / 2`` in SQL)."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    last = np.cumsum(counts)
    return (last - (counts - 1) / 2.0)[inverse]


def _pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    """Pearson correlation (None when either side is constant or there are fewer than 2 rows)."""
    if len(x) < 2:
        return None
    dx, dy = x - x.mean(), y - y.mean()
    denominator = float(np.sqrt((dx * dx).sum() * (dy * dy).sum()))
    return float((dx * dy).sum() / denominator) if denominator > 0 else None


def length_bias(scores: pa.Table, lengths: pa.Table, sample: int = SCATTER_SAMPLE, seed: int = 0) -> LengthBias:
    """Correlate reward with response length (the first reward hack reviewers look for).

    Args:
        scores: ``response_id`` and ``reward`` columns.
        lengths: ``response_id`` and ``length`` (:func:`response_lengths`, :func:`declared_lengths`).
        sample: Points kept for the scatter plot (0: none).
        seed: Reservoir-sampling seed (the plot is reproducible).

    Raises:
        LakeError: If no scored response has a matching text.
    """
    con = duckdb.connect()
    try:
        con.register("s", scores.select(["response_id", "reward"]))
        con.register("l", lengths)
        con.execute("CREATE TEMP TABLE j AS SELECT CAST(s.reward AS DOUBLE) AS reward, "
                    "CAST(l.length AS DOUBLE) AS len FROM s JOIN l USING (response_id) WHERE l.length IS NOT NULL")
        rows, pearson = con.execute("SELECT count(*), corr(reward, len) FROM j").fetchone()
        if not rows:
            raise LakeError("no scored response matches a response text; were scores and responses "
                            "written by the same run?")
        joined = con.execute("SELECT reward, len FROM j").fetchnumpy()
        spearman = _pearson(_average_ranks(np.asarray(joined["reward"], np.float64)),
                            _average_ranks(np.asarray(joined["len"], np.float64)))
        deciles = con.execute(
            "SELECT avg(len), avg(reward) FROM (SELECT len, reward, ntile(10) OVER (ORDER BY len) AS d "
            "FROM j) GROUP BY d ORDER BY d").fetchall()
        picked = (con.execute(f"SELECT len, reward FROM j USING SAMPLE reservoir({int(sample)} ROWS) "
                              f"REPEATABLE ({int(seed)})").fetchnumpy()
                  if sample > 0 else {"len": [], "reward": []})
    finally:
        con.close()
    return LengthBias(
        rows=int(rows), pearson=_finite(pearson), spearman=_finite(spearman),
        deciles=tuple((float(a), float(b)) for a, b in deciles),
        sample_length=np.asarray(picked["len"], np.int64),
        sample_reward=np.asarray(picked["reward"], np.float64),
    )


def grouped_counts(table: pa.Table, keys: list[str], example: str | None = None) -> list[dict]:
    """Row counts per key combination, largest first, with one example value of ``example``.

    Args:
        table: Any Arrow table holding ``keys`` (and ``example``).
        keys: Grouping columns.
        example: A column whose first value per group is shown (e.g. a quarantine reason).

    Returns:
        ``[{key: value, ..., "rows": n, "example": str}]``.
    """
    if table.num_rows == 0:
        return []
    con = duckdb.connect()
    try:
        con.register("t", table)
        cols = ", ".join(_quoted(k) for k in keys)
        extra = f", any_value({_quoted(example)})" if example else ""
        rows = con.execute(f"SELECT {cols}, count(*) AS n{extra} FROM t GROUP BY {cols} "
                           f"ORDER BY n DESC, {cols}").fetchall()
    finally:
        con.close()
    out = []
    for row in rows:
        item = dict(zip(keys, row[: len(keys)], strict=True))
        item["rows"] = int(row[len(keys)])
        if example:
            item["example"] = row[len(keys) + 1]
        out.append(item)
    return out
