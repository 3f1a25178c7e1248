"""Differential check of a whole run: JAX scores in the lake vs the contract's SQL in DuckDB.

The two compilations of one checked contract must agree on every row. This check re-scores the
run's responses with the contract's own SQL and compares every output column row by row
(joined on ``response_id``): booleans exactly, floats within ``atol + rtol·|sql|``. ENSURES masks
compare the final reward with a constant, so they must agree wherever the two rewards are
bit-identical (a reward one float32 ulp apart may sit on either side of the threshold). The
responses' ``null_veto`` flags (``on_null: veto``) enter both sides.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

from rlhf_core.contract.legal_blocks.compile_sql import compile_sql, quote_ident
from rlhf_core.contract.program import ContractProgram
from rlhf_core.errors import DataError
from rlhf_core.lake.scan import parquet_relation
from rlhf_core.lake.schemas import NULL_VETO_COLUMN
from rlhf_core.lake.store import Lake
from rlhf_core.scoring.schema import text_input_columns


def compare_scores_with_sql(
    program: ContractProgram,
    response_paths: Sequence[str],
    score_paths: Sequence[str],
    *,
    rtol: float = 1e-4,
    atol: float = 1e-5,
    examples: int = 5,
    lake: Lake | None = None,
) -> dict[str, Any]:
    """Compare lake scores with the contract's SQL evaluated by DuckDB over the same responses.

    Returns:
        ``{"rows", "sql_rows", "missing", "mismatches": {column: count}, "examples": [...]}``;
        ``ok`` is True when nothing is missing and no column mismatches.

    Args:
        lake: The lake of the responses; when it is encrypted and the contract reads text
            (``len(response)``), the responses are decrypted with its key for DuckDB.

    Raises:
        DataError: The files cannot be read.
        LakeKeyError: The contract reads encrypted text and the lake's key is not at hand.
    """
    sql_program = compile_sql(program)
    con = duckdb.connect()
    decrypting = lake if lake is not None and text_input_columns(program) else None
    try:
        parquet_relation(con, response_paths, decrypting).create_view("responses")
        parquet_relation(con, score_paths).create_view("jax_scores")
        veto = NULL_VETO_COLUMN if NULL_VETO_COLUMN in con.sql(
            "SELECT * FROM responses LIMIT 0").columns else None
        con.execute("CREATE TEMP TABLE sql_scores AS "
                    + sql_program.select("responses", ["response_id"], veto_column=veto))
        lake_columns = set(con.sql("SELECT * FROM jax_scores LIMIT 0").columns)
        columns = [c for c in sql_program.output_names if c in lake_columns]
        probe = con.sql("SELECT * FROM sql_scores LIMIT 0")
        types = dict(zip(probe.columns, (str(t) for t in probe.types), strict=True))
        reward_masks = {f"v_{c.label}" for c in program.clauses if c.kind == "ENSURES"} | {"ensures_ok"}
        checks = []
        for col in columns:
            a, b = f"j.{quote_ident(col)}", f"s.{quote_ident(col)}"
            if types.get(col) == "BOOLEAN" and col in reward_masks:
                # ENSURES compares the final reward with a constant: where the engines' rewards
                # differ by float rounding, a row exactly at the threshold may fall either way.
                checks.append(f"count(*) FILTER (WHERE {a} IS DISTINCT FROM {b} "
                              "AND j.reward IS NOT DISTINCT FROM s.reward)")
            elif types.get(col) == "BOOLEAN":
                checks.append(f"count(*) FILTER (WHERE {a} IS DISTINCT FROM {b})")
            else:
                checks.append(
                    f"count(*) FILTER (WHERE NOT ((isnan({a}) AND isnan({b})) OR {a} = {b} OR "
                    f"abs({a} - {b}) <= {atol!r} + {rtol!r} * abs({b})))"
                )
        rows, sql_rows = con.execute("SELECT (SELECT count(*) FROM jax_scores), (SELECT count(*) FROM sql_scores)").fetchone()
        missing = con.execute(
            "SELECT count(*) FROM sql_scores s ANTI JOIN jax_scores j USING (response_id)"
        ).fetchone()[0]
        counts = con.execute(
            f"SELECT {', '.join(checks)} FROM jax_scores j JOIN sql_scores s USING (response_id)"
        ).fetchone()
        mismatches = {c: int(n) for c, n in zip(columns, counts, strict=True) if n}
        sample: list[dict[str, Any]] = []
        for col in list(mismatches)[:examples]:
            row = con.execute(
                f"SELECT response_id, j.{quote_ident(col)}, s.{quote_ident(col)} FROM jax_scores j "
                f"JOIN sql_scores s USING (response_id) WHERE j.{quote_ident(col)} IS DISTINCT FROM "
                f"s.{quote_ident(col)} LIMIT 1"
            ).fetchone()
            sample.append({"column": col, "response_id": row[0], "jax": row[1], "sql": row[2]})
    except duckdb.Error as exc:
        explained = lake.encryption.explain(exc, "differential check") if lake is not None else None
        if explained is not None:
            raise explained from exc
        raise DataError(f"differential check could not read the run's files: {exc}") from exc
    finally:
        con.close()
    return {
        "ok": not mismatches and not missing and rows == sql_rows,
        "rows": int(rows),
        "sql_rows": int(sql_rows),
        "missing": int(missing),
        "columns": columns,
        "mismatches": mismatches,
        "examples": sample,
    }
