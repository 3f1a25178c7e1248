"""CLI: ``rlhf-wizard demo`` (the main job on generated data) and ``rlhf-wizard run`` (any data)."""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markdown import Markdown

from rlhf_cli.access import require

DEMO_CONTRACT = Path(str(resources.files("rlhf_cli") / "examples" / "demo.yaml"))
"""The demo's contract, shipped as package data (a copy of ``configs/contracts/demo.yaml``)."""

app = typer.Typer()
_out = Console(highlight=False)

VerboseFlag = Annotated[bool, typer.Option(
    "--verbose", help="Also show Dask (distributed) and Great Expectations INFO logs on the console.")]
MetricsPortOption = Annotated[int | None, typer.Option(
    min=1, max=65535, help="Serve Prometheus metrics on this port while the run lasts (docs/operations.md).")]


@app.command("demo")
def demo(
    rows: Annotated[int, typer.Option(help="Responses to generate.")] = 100_000,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 0,
    workers: Annotated[int, typer.Option(help="Local Dask worker processes.")] = 2,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    verbose: VerboseFlag = False,
    metrics_port: MetricsPortOption = None,
) -> None:
    """Generate data and run the whole contract pipeline on it, locally.

    Example: rlhf-wizard demo --rows 100000
    """
    from rlhf_core.contract import load_contract
    from rlhf_core.ingest.generator import PREFERENCES_DIR, write_synthetic
    from rlhf_core.ingest.labels import ANNOTATOR_WEIGHTS

    show_library_logs(verbose)
    started = time.perf_counter()
    run_id = _run_id("demo")
    require("run", run_id=run_id)
    # In the lake's incoming folder, a default data root (docs/security.md, "Confined inputs").
    data_dir = Path(".wizard").resolve() / "incoming" / "demo" / f"rows{rows}-seed{seed}"
    if "://" not in lake_root_path():
        data_dir = Path(lake_root_path()) / "incoming" / "demo" / f"rows{rows}-seed{seed}"
    if not any(data_dir.glob("*.parquet")) or not (data_dir / PREFERENCES_DIR).is_dir():
        write_synthetic(data_dir, rows, seed, annotators=load_contract(DEMO_CONTRACT).program)
    hidden = ", ".join(f"{k} {v:g}" for k, v in ANNOTATOR_WEIGHTS.items())
    _out.print(f"Generated {rows} responses in {data_dir}, with preference labels from annotators "
               f"whose hidden weights are {hidden}; running contract-pipeline as {run_id} …")
    result = run_pipeline(DEMO_CONTRACT, data_dir, adapter=None, mapping=None, run_id=run_id,
                          dry_run=False, config=None, dask_address=None, workers=workers,
                          metrics_port=metrics_port)
    _print_result(result, started, as_json)


@app.command("run")
def run(
    contract: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="Contract YAML.")],
    data: Annotated[Path, typer.Option(exists=True, help="Data file or directory.")],
    adapter: Annotated[str | None, typer.Option(help="helpsteer | pku_saferlhf | ultrafeedback | hh_rlhf | generic")] = None,
    mapping: Annotated[Path | None, typer.Option(exists=True, dir_okay=False, help="Mapping file (generic adapter).")] = None,
    split: Annotated[str | None, typer.Option("--split", help="Split of a Hugging Face dataset folder read through --mapping (data/<split>-*.parquet); default: the mapping's, else train.")] = None,
    run_id: Annotated[str | None, typer.Option(help="Run id (default: run-<timestamp>).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Allow an unapproved contract.")] = False,
    config: Annotated[Path | None, typer.Option(exists=True, dir_okay=False, help="Pipeline preset YAML.")] = None,
    dask_address: Annotated[str | None, typer.Option(help="Existing Dask scheduler, tcp://host:port.")] = None,
    workers: Annotated[int | None, typer.Option(help="Local Dask worker processes.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    verbose: VerboseFlag = False,
    metrics_port: MetricsPortOption = None,
) -> None:
    """Run the contract pipeline on any data.

    Example: rlhf-wizard run --contract configs/contracts/helpsteer.yaml
    --data helpsteer_train.jsonl --adapter helpsteer
    """
    show_library_logs(verbose)
    started = time.perf_counter()
    run_id = run_id or _run_id("run")
    require("run.unapproved" if dry_run else "run", run_id=run_id, replaces=True)
    if split is not None and mapping is None:
        from rlhf_core.errors import DataError

        raise DataError("--split applies to a mapping with format: huggingface; add --mapping FILE")
    result = run_pipeline(contract, data, adapter=adapter, mapping=mapping, split=split,
                          run_id=run_id or _run_id("run"), dry_run=dry_run, config=config,
                          dask_address=dask_address, workers=workers, metrics_port=metrics_port)
    _print_result(result, started, as_json)


def _run_id(prefix: str) -> str:
    return f"{prefix}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}"


def lake_root_path() -> str:
    from rlhf_core.lake.store import Lake

    root = Lake.from_env().root
    return root if "://" in root else str(Path(root).resolve())


class _NoTracebackFormatter(logging.Formatter):
    """Console logs keep their one-line messages; tracebacks stay in the Prefect API logs."""

    def __init__(self, base: logging.Formatter | None) -> None:
        super().__init__()
        self._base = base or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text
        record.exc_info, record.exc_text = None, None
        try:
            return self._base.format(record)
        finally:
            record.exc_info, record.exc_text = saved


def console_without_tracebacks() -> None:
    """Errors end a CLI run with one clear line: strip tracebacks from console log output."""
    from prefect.logging.configuration import setup_logging
    from prefect.logging.handlers import PrefectConsoleHandler

    setup_logging()
    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler) and not isinstance(handler.formatter, _NoTracebackFormatter):
            handler.setFormatter(_NoTracebackFormatter(handler.formatter))


def run_pipeline(
    contract: Path,
    data: Path,
    *,
    adapter: str | None,
    mapping: Path | None,
    run_id: str,
    dry_run: bool,
    config: Path | None,
    dask_address: str | None,
    workers: int | None,
    metrics_port: int | None = None,
    split: str | None = None,
) -> dict:
    """Run ``contract-pipeline`` on one Prefect API and return its result.

    The API is ``PREFECT_API_URL``, else this home's long-lived server (``rlhf-wizard server
    start``), else a temporary server launched first thing, so that it boots while the pipeline's
    modules import.
    """
    from ops.config import load_pipeline_config
    from ops.confinement import confine_run, use_preset
    from ops.prefect_server import running_url
    from ops.runtime import enable_compilation_cache, prefect_api
    from rlhf_core.errors import ConfigError

    settings = load_pipeline_config(config)
    use_preset(config)  # the in-process flow enforces this preset's roots too
    checked = confine_run("rlhf-wizard run", data={
        "--contract": str(contract), "--data": str(data),
        "--mapping": str(mapping) if mapping else None}, lake_root=lake_root_path(),
        details={"run_id": run_id})
    if dask_address:
        settings.dask.address = dask_address
    if workers:
        settings.dask.n_workers = workers
    address = settings.dask.resolved_address()
    if address and not os.environ.get("PREFECT_API_URL") and not running_url():
        raise ConfigError(
            f"a run on the existing Dask scheduler {address} needs a persistent Prefect API: "
            "its workers would keep reporting to this run's temporary server after it stops; "
            "start one with `rlhf-wizard server start` (later runs reuse it) or export "
            "PREFECT_API_URL", "<command line>")
    enable_compilation_cache()
    api = prefect_api()
    try:
        from flows.contract_pipeline import ContractPipelineParams, contract_pipeline
        from ops.cancel import cancel_on_signals, cancellation_reason, received_signal
        from ops.metrics import serve_metrics
        from ops.runtime import quiet_library_logs
        from rlhf_core.quality.gx import warm_up_in_background

        params = ContractPipelineParams(
            contract=checked["--contract"], data=checked["--data"], adapter=adapter,
            mapping=checked["--mapping"], split=split, run_id=run_id,
            lake_root=checked["lake_root"], dry_run=dry_run, config=settings,
        )
        console_without_tracebacks()
        quiet_library_logs()
        warm_up_in_background()  # GX imports while the server boots and the first stages run
        try:
            with cancel_on_signals(), api, serve_metrics(metrics_port):
                return contract_pipeline(params)
        except BaseException as exc:
            reason = cancellation_reason(exc)
            if reason is None:
                raise
            _out.print(f"run {run_id} {reason}: recorded as cancelled; nothing partial was "
                       f"published (re-run it with --run-id {run_id})")
            signum = (getattr(exc, "signum", None) or getattr(exc, "signal", None)
                      or received_signal() or 2)
            raise typer.Exit(code=128 + int(signum)) from None
    finally:
        api.close()


def _print_result(result: dict, started: float, as_json: bool) -> None:
    if as_json:
        slim = {k: v for k, v in result.items() if k != "summary"}
        typer.echo(json.dumps(slim, default=str, indent=2))
        return
    _out.print(Markdown(result["summary"]))
    lake = lake_root_path()
    _out.print(f"\n[bold]Run {result['run_id']}[/bold] finished in {time.perf_counter() - started:.1f} s.")
    _out.print(f"  lake:       {lake}/lake/<table>/run_id={result['run_id']}/")
    if "://" in lake:
        _out.print("  warehouse:  views over the remote lake, opened per query (rlhf-wizard query)")
    else:
        _out.print(f"  warehouse:  {lake}/warehouse.duckdb")
    if result.get("report"):
        _out.print(f"  report:     {result['report']}")
    _out.print(f"  query:      rlhf-wizard query \"SELECT * FROM scores WHERE run_id = '{result['run_id']}' LIMIT 5\"")
    _out.print("  audit:      rlhf-wizard audit log; rlhf-wizard audit verify")


def show_library_logs(verbose: bool) -> None:
    """``--verbose``: let Dask and GX INFO logs reach the console, here and in child processes.

    Sets ``RLHF_WIZARD_VERBOSE``, which :func:`ops.runtime.quiet_library_logs` reads when a run
    starts; without the flag the variable is left as the environment has it.
    """
    if verbose:
        from ops.runtime import VERBOSE_ENV

        os.environ[VERBOSE_ENV] = "1"
