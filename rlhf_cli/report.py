"""`rlhf-wizard report RUN_ID`: render a run's self-contained HTML report (no Prefect needed)."""

from __future__ import annotations

import json
import webbrowser
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from rlhf_cli.access import require

app = typer.Typer()
_out = Console(highlight=False, soft_wrap=True)


@app.command("report")
def report(
    run_id: Annotated[str | None, typer.Argument(
        help="Run id, e.g. demo-20261129T214742 (default: the latest completed pipeline run).")] = None,
    out: Annotated[Path | None, typer.Option(dir_okay=False, help="Also write the HTML to this file.")] = None,
    open_browser: Annotated[bool, typer.Option("--open", help="Open the report in a web browser.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print where it was written as JSON.")] = False,
) -> None:
    """Build the self-contained HTML report of a run into the lake (reports/<run_id>/report.html).

    Example: rlhf-wizard report demo-20261129T214742 --out run.html --open
    """
    import pyarrow.fs as pafs

    from rlhf_core.lake.fs import write_bytes_atomic
    from rlhf_core.lake.store import Lake
    from rlhf_core.report import build_report, latest_run_id

    if out is not None:
        from ops.confinement import confine_run

        out = Path(confine_run("rlhf-wizard report", outputs={"--out": str(out)})["--out"])
    lake = Lake.from_env()
    run_id = run_id or latest_run_id(lake)
    require("report", run_id=run_id, lake=lake)
    with _out.status(f"Building the report of run {run_id} …"):
        result = build_report(lake, run_id)
    target = result.path
    if out is not None:
        with lake.fs.open_input_file(result.path) as fh:
            html = fh.read()
        target = write_bytes_atomic(pafs.LocalFileSystem(), str(out.resolve()), html)
    url = Path(target).resolve().as_uri() if out is not None or isinstance(lake.fs, pafs.LocalFileSystem) else target
    if as_json:
        typer.echo(json.dumps({"run_id": run_id, "path": result.path, "out": str(out.resolve()) if out else None,
                               "url": url, "bytes": result.bytes, "seconds": round(result.seconds, 3),
                               "sections": result.sections}, indent=2))
    else:
        _out.print(f"Report of run [bold]{run_id}[/bold] ({result.bytes / 1024:.0f} KiB, "
                   f"{result.seconds:.1f} s): {target}")
        missing = [name for name, present in result.sections.items() if not present]
        if missing:
            _out.print(f"  not computed for this run: {', '.join(missing)}")
    if open_browser:
        webbrowser.open(url)
