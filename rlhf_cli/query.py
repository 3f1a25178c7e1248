"""`rlhf-wizard query "SQL"`: run SQL over the lake's DuckDB views (table, JSON or CSV output)."""

from __future__ import annotations

import io
import json
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rlhf_cli.access import require

app = typer.Typer()
_out = Console(highlight=False, soft_wrap=True)
DEFAULT_TABLE_ROWS = 50


@app.command("query")
def query(
    sql: Annotated[str, typer.Argument(help="One SQL statement over the views, e.g. "
                                            "\"SELECT run_id, count(*) FROM scores GROUP BY 1\".")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as a JSON array.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print the rows as CSV with a header.")] = False,
    limit: Annotated[int | None, typer.Option("--limit", min=1,
                                              help="At most this many rows (table output "
                                                   f"shows {DEFAULT_TABLE_ROWS} by default).")] = None,
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", help="Value bound to the next '?' (repeatable, in order; JSON scalars "
                              "like 5 or true bind typed, anything else as text).")] = None,
) -> None:
    """Run SQL over the lake (views: one per table, plus `audit`); values bind to `?`.

    Example: rlhf-wizard query "SELECT * FROM scores WHERE run_id = ?" -p demo-1 --json
    """
    from rlhf_core.errors import LakeError
    from rlhf_core.lake.warehouse import Warehouse

    require("report")
    if as_json and as_csv:
        raise LakeError("choose one of --json and --csv")
    params = [_parse_param(p) for p in param or []]
    shown = limit if (limit or as_json or as_csv) else DEFAULT_TABLE_ROWS
    table = Warehouse().query(sql, params, limit=None if shown is None else shown + 1)
    more = shown is not None and table.num_rows > shown
    if more:
        table = table.slice(0, shown)
    if as_json:
        typer.echo(to_json(table.to_pylist()))
        return
    if as_csv:
        typer.echo(to_csv(table), nl=False)
        return
    view = Table(*table.column_names, show_lines=False, header_style="bold")
    for row in table.to_pylist():
        view.add_row(*(_cell(v) for v in row.values()))
    _out.print(view)
    suffix = f" (first {shown}; use --limit or --json/--csv for more)" if more else ""
    _out.print(f"[dim]{table.num_rows} row{'s' if table.num_rows != 1 else ''}{suffix}[/dim]")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _parse_param(text: str) -> Any:
    """JSON scalars (``5``, ``1.5``, ``true``, ``null``, ``"5"``) bind as such; anything else as text."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, str | int | float | bool) or value is None else text


def to_json(rows: list[dict[str, Any]]) -> str:
    """Rows as a JSON array (timestamps in ISO 8601)."""
    return json.dumps(rows, default=_json_default, ensure_ascii=False, indent=2)


def to_csv(table: Any) -> str:
    """A pyarrow table as CSV with a header (nested values become JSON text)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    columns = []
    for column in table.columns:
        if pa.types.is_nested(column.type):
            column = pa.array([None if v is None else json.dumps(v, default=_json_default)
                               for v in column.to_pylist()], pa.string())
        columns.append(column)
    buffer = io.BytesIO()
    pacsv.write_csv(pa.Table.from_arrays(columns, names=table.column_names), buffer)
    return buffer.getvalue().decode("utf-8")


def _cell(value: Any) -> str:
    if value is None:
        return "[dim]NULL[/dim]"
    text = _json_default(value) if not isinstance(value, str) else value
    return escape(text)
