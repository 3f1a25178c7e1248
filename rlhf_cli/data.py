"""CLI commands: ``rlhf-wizard data {generate,ingest,quarantine}``."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from rlhf_cli.access import require

app = typer.Typer(
    name="data",
    help="Generate synthetic data, ingest datasets through the quality gate, inspect quarantine.",
    no_args_is_help=True,
)
_out = Console(highlight=False, soft_wrap=True)


def _file_run_id(path: Path, label: str) -> str:
    """A run id derived from the content (of every file of a folder, in name order), so
    re-ingesting the same data is idempotent."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else "").encode())
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return f"ingest-{label}-{digest.hexdigest()[:12]}"


@app.command("generate")
def generate(
    rows: Annotated[
        int, typer.Option("--rows", min=1, help="Total responses (up to 1e8).")
    ] = 100_000,
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed (same seed -> identical files).")
    ] = 0,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output directory (default $RLHF_WIZARD_HOME/incoming/synthetic)."),
    ] = None,
    candidates: Annotated[
        int, typer.Option("--candidates", min=1, help="Responses per prompt.")
    ] = 4,
    chunk_rows: Annotated[
        int, typer.Option("--chunk-rows", min=1, help="Rows per Parquet file (whole blocks).")
    ] = 1_048_576,
    labels: Annotated[
        bool, typer.Option("--labels", help="Also draw preference labels from the demo "
                                            "annotators' hidden weights (preferences/).")
    ] = False,
) -> None:
    """Write deterministic synthetic responses (prompts x candidates) as chunked Parquet."""
    from ops.confinement import confine_run
    from rlhf_core.ingest.generator import write_synthetic

    if out is None:  # the lake's incoming folder: runs may read it with no settings
        out = Path(os.environ.get("RLHF_WIZARD_HOME", ".wizard")) / "incoming" / "synthetic"
    out = Path(confine_run("rlhf-wizard data generate", outputs={"--out": str(out)})["--out"])
    started = time.perf_counter()
    try:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                      MofNCompleteColumn(), TimeElapsedColumn(), console=_out, transient=True) as bar:
            task = bar.add_task("generating responses", total=rows)
            paths = write_synthetic(out, rows, seed, candidates=candidates, chunk_rows=chunk_rows,
                                    on_chunk=lambda n: bar.advance(task, n),
                                    annotators=_demo_program() if labels else None)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    seconds = time.perf_counter() - started
    _out.print(f"wrote {rows:,} responses in {len(paths)} file(s) under {out} in {seconds:.2f} s"
               + (" with preference labels in preferences/" if labels else ""))


def _demo_program():
    from rlhf_cli.pipeline import DEMO_CONTRACT
    from rlhf_core.contract import load_contract

    return load_contract(DEMO_CONTRACT).program


@app.command("ingest")
def ingest_command(
    path: Annotated[
        Path,
        typer.Argument(help="Source file (JSONL, CSV or Parquet), or a Hugging Face dataset "
                       "folder (mapping format: huggingface).", exists=True),
    ],
    adapter: Annotated[
        str | None,
        typer.Option("--adapter", help="helpsteer | pku_saferlhf | ultrafeedback | hh_rlhf"),
    ] = None,
    mapping: Annotated[
        Path | None,
        typer.Option("--mapping", help="Mapping YAML for the generic adapter.", exists=True),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Lake root (default $RLHF_WIZARD_HOME or ./.wizard)."),
    ] = None,
    run_id: Annotated[
        str | None, typer.Option("--run-id", help="Run id (default: from the file hash).")
    ] = None,
    max_failure_rate: Annotated[
        float, typer.Option("--max-failure-rate", min=0.0, max=1.0, help="Quality gate threshold.")
    ] = 0.05,
    split: Annotated[
        str | None, typer.Option("--split", help="Split of a Hugging Face dataset folder "
                                 "(data/<split>-*.parquet); default: the mapping's, else train."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Read a dataset, run the quality gate and write responses, preferences and quarantine.

    Tables go to the lake under ``<out>/lake/<table>/run_id=<id>/`` (atomic; re-running the same
    run id replaces its partition); the GX suite summary goes to
    ``<out>/artifacts/<id>/quality-ingest.json`` (the same write path as a pipeline's ingest). When the gate fails, the quarantine is still written so it
    can be inspected with ``rlhf-wizard data quarantine``, and the command exits non-zero.
    """
    from ops.confinement import confine_run
    from rlhf_core.errors import DataError
    from rlhf_core.ingest.write import read_source, write_ingest
    from rlhf_core.lake.store import Lake

    if (adapter is None) == (mapping is None):
        raise DataError("give exactly one of --adapter NAME or --mapping FILE")
    if split is not None and mapping is None:
        raise DataError("--split applies to a mapping with format: huggingface; add --mapping FILE")
    root = str(out) if out is not None else Lake.from_env().root
    checked = confine_run("rlhf-wizard data ingest", data={
        "PATH": str(path), "--mapping": str(mapping) if mapping else None}, lake_root=root)
    path = Path(checked["PATH"])
    mapping = Path(checked["--mapping"]) if mapping else None
    label = adapter or "generic"
    run_id = run_id or _file_run_id(path, label + (f"-{split}" if split else ""))
    lake = Lake(checked["lake_root"])
    require("run", run_id=run_id, lake=lake, replaces=True)
    source_mapping: Any = mapping
    if split is not None:
        from rlhf_core.ingest.adapters.mapping import load_mapping

        source_mapping = load_mapping(mapping).model_copy(update={"split": split})
    result = read_source(path, adapter=adapter, mapping=source_mapping, run_id=run_id)
    written = write_ingest(lake, run_id, result, max_failure_rate=max_failure_rate)
    gated = written.gated
    summary: dict[str, Any] = {
        "run_id": run_id,
        "source": str(path),
        "rows_read": gated.rows_read,
        "responses": gated.responses.num_rows,
        "preferences": gated.preferences.num_rows,
        "quarantined": gated.quarantine.num_rows,
        "duplicates": result.duplicates,
        "paths": written.paths,
        "quality": gated.summary,
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    _out.print(
        f"run {run_id}: read {summary['rows_read']:,} rows -> {summary['responses']:,} responses, "
        f"{summary['preferences']:,} preferences, {summary['quarantined']:,} quarantined"
    )
    for table, where in written.paths.items():
        _out.print(f"  {table}: {escape(where)}")


@app.command("quarantine")
def quarantine_command(
    run_id: Annotated[str | None, typer.Option("--run-id", help="Only this run.")] = None,
    lake_dir: Annotated[
        Path | None, typer.Option("--dir", help="Lake root (default $RLHF_WIZARD_HOME).")
    ] = None,
    rule: Annotated[
        str | None, typer.Option("--rule", help="Only rows quarantined by this rule.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many rows.")] = 50,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the rows as a JSON array.")
    ] = False,
) -> None:
    """Show quarantined rows: where they came from, the rule and the reason."""
    import pyarrow.dataset as ds

    from rlhf_core.lake import catalog
    from rlhf_core.lake.store import Lake

    lake = Lake(lake_dir) if lake_dir is not None else Lake.from_env()
    require("report", run_id=run_id, lake=lake)
    where = None if rule is None else ds.field("rule") == rule
    table = lake.read_table(catalog.Table.QUARANTINE, run_id=run_id, filter=where)
    total = table.num_rows
    rows = table.slice(0, limit).to_pylist()
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    view = Table("run", "source", "line", "table", "rule", "reason", header_style="bold")
    for row in rows:
        cells = (
            row["run_id"],
            row["source"],
            row["source_line"],
            row["table"],
            row["rule"],
            row["reason"],
        )
        view.add_row(*(escape(str(v)) for v in cells))
    _out.print(view)
    shown = f" (first {limit}; use --limit or --json)" if total > limit else ""
    _out.print(f"[dim]{total} quarantined row{'s' if total != 1 else ''}{shown}[/dim]")


def register(root: typer.Typer) -> None:
    """Attach ``data`` to ``root`` (for tests that build their own root; main.py adds ``app``)."""
    root.add_typer(app, name="data")
