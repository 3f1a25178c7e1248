"""CLI: ``rlhf-wizard deploy``, ``serve`` and ``doctor`` (operating the platform)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from rlhf_cli.pipeline import VerboseFlag, show_library_logs

app = typer.Typer()
_out = Console(highlight=False, soft_wrap=True)
_err = Console(stderr=True, highlight=False)
_PREFECT_FILE_HELP = "Deployments file (default: deployments/prefect.yaml)."


@app.command("deploy")
def deploy(
    prefect_file: Annotated[Path | None, typer.Option(exists=True, dir_okay=False, help=_PREFECT_FILE_HELP)] = None,
    name: Annotated[list[str] | None, typer.Option("--name", help="Only these deployments (flow/deployment); repeatable.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the registered deployments as JSON.")] = False,
    alerts_webhook: Annotated[str | None, typer.Option(envvar="RLHF_WIZARD_ALERTS_WEBHOOK", help="Webhook URL for alerts: saved as the notification block custom-webhook/rlhf-alerts.")] = None,
    escalation_webhook: Annotated[str | None, typer.Option(envvar="RLHF_WIZARD_ESCALATION_WEBHOOK", help="Webhook URL for escalations (block custom-webhook/rlhf-escalation; default: the alerts URL).")] = None,
) -> None:
    """Register the deployments of deployments/prefect.yaml with the Prefect API (PREFECT_API_URL).

    Creates the work pools they target, runs `prefect deploy --all` on the file from the
    project root with RLHF_WIZARD_HOME made absolute, and checks every deployment is registered.
    Then creates or updates the alert automations of deployments/automations/ whose notification
    blocks exist (see docs/operations.md).

    Example: PREFECT_API_URL=http://127.0.0.1:4200/api rlhf-wizard deploy --alerts-webhook https://hooks.example.com/rlhf
    """
    _deploy(prefect_file, name or [], as_json, alerts_webhook, escalation_webhook)


@app.command("serve")
def serve(
    prefect_file: Annotated[Path | None, typer.Option(exists=True, dir_okay=False, help=_PREFECT_FILE_HELP)] = None,
    interval: Annotated[list[str] | None, typer.Option("--interval", help="NAME=SECONDS: replace that deployment's schedules by an interval (NAME: flow/deployment or flow); repeatable.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Most flow runs executing at once.")] = None,
    list_only: Annotated[bool, typer.Option("--list", help="List the deployments and exit.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="With --list: print JSON.")] = False,
    metrics_port: Annotated[int | None, typer.Option(min=1, max=65535, envvar="RLHF_WIZARD_METRICS_PORT", help="Serve Prometheus metrics of the lake on this port (docs/operations.md).")] = None,
    metrics_host: Annotated[str | None, typer.Option(envvar="RLHF_WIZARD_METRICS_HOST", help="Address the metrics exporter binds (default 127.0.0.1; 0.0.0.0 for a remote Prometheus).")] = None,
    verbose: VerboseFlag = False,
) -> None:
    """Serve every deployment from this process so runs start from the UI, the CLI or schedules.

    Reads deployments/prefect.yaml (names, parameters, schedules); runs execute in subprocesses
    with the project root as working directory. No work pool or worker needed.

    Example: PREFECT_API_URL=http://127.0.0.1:4200/api rlhf-wizard serve --metrics-port 9464
    """
    show_library_logs(verbose)
    _serve(prefect_file, interval or [], limit, list_only, as_json, metrics_port, metrics_host)


@app.command("doctor")
def doctor(
    config: Annotated[Path | None, typer.Option(exists=True, dir_okay=False, help="Pipeline preset whose Dask settings to check.")] = None,
    dask_address: Annotated[str | None, typer.Option(help="Check this Dask scheduler (tcp://host:port).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False,
) -> None:
    """Check the installation: versions, Prefect API, Dask scheduler, lake, warehouse, keys.

    Prints a table with a fix for each failure; exits 1 when any check fails.

    Example: rlhf-wizard doctor --config ops/presets/default.yaml
    """
    _doctor(config, dask_address, as_json)


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                    TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                    console=_err, transient=False)


def _schedules_text(schedules: list) -> str:
    parts = []
    for item in schedules:
        if getattr(item, "cron", None):
            parts.append(f"cron {item.cron} {item.timezone or ''}".strip())
        elif getattr(item, "interval", None):
            parts.append(f"every {item.interval:g} s")
    return ", ".join(parts) or "on demand"


def _deploy(prefect_file: Path | None, names: list[str], as_json: bool,
            alerts_webhook: str | None = None, escalation_webhook: str | None = None) -> None:
    """Create the work pools, run ``prefect deploy``, verify every deployment is registered,
    then register the alert automations."""
    from ops.automations import deploy_automations
    from ops.deploy import (
        ensure_incoming,
        ensure_work_pools,
        export_lake_home,
        list_deployments,
        missing_deployments,
        require_api_url,
        run_prefect_deploy,
        select_deployments,
    )
    from ops.deployments import PREFECT_FILE, load_deployments
    from rlhf_core.errors import DeploymentError

    path = prefect_file or PREFECT_FILE
    api = require_api_url()
    home = export_lake_home()
    with _progress() as progress:
        step = progress.add_task(f"Registering {path.name} with {api}", total=5)
        specs = load_deployments(path)
        wanted = select_deployments(specs, names)
        if not wanted:
            raise DeploymentError(f"--name {' '.join(names)} matches no deployment in {path}; "
                                  "see `rlhf-wizard serve --list`")
        progress.advance(step)
        created = ensure_work_pools(wanted)
        incoming = ensure_incoming(wanted, home)
        progress.advance(step)
        run_prefect_deploy(path, names)
        progress.advance(step)
        registered = list_deployments(api)
        progress.advance(step)
        automations = deploy_automations(alerts_webhook=alerts_webhook,
                                         escalation_webhook=escalation_webhook)
        progress.advance(step)
    missing = missing_deployments(wanted, registered)
    if missing:
        raise DeploymentError(f"prefect deploy finished but these are not registered: {'; '.join(missing)}")
    mine = [r for r in registered if (r["entrypoint"], r["name"]) in {(s.entrypoint, s.name) for s in wanted}]
    if as_json:
        typer.echo(json.dumps({"api": api, "lake_root": home, "pools_created": created,
                               "incoming": incoming, "automations": automations, "deployments": [
            {"name": f"{r['flow_name']}/{r['name']}", "id": r["id"], "work_pool": r.get("work_pool_name"),
             "schedules": [s["schedule"] for s in r.get("schedules", [])]} for r in mine]}, indent=2))
        return
    table = Table(title=f"Deployments on {api}")
    for column in ("deployment", "work pool", "schedules"):
        table.add_column(column, overflow="fold")
    for row in mine:
        schedules = [s["schedule"] for s in row.get("schedules", [])]
        text = ", ".join(f"cron {s['cron']}" if "cron" in s else f"every {s.get('interval')} s"
                         for s in schedules) or "on demand"
        table.add_row(f"{row['flow_name']}/{row['name']}", row.get("work_pool_name") or "-", text)
    _out.print(table)
    if created:
        _out.print(f"Created work pools: {', '.join(created)}.")
    if incoming:
        _out.print(f"Input folder: {', '.join(incoming)}; put the deployments' data files there "
                   "(e.g. helpsteer.jsonl) or pass another path when starting a run.")
    for row in automations["applied"]:
        _out.print(f"Automation {row['name']}: {row['action']}.")
    for row in automations["skipped"]:
        _out.print(f"Automation {row['name']}: skipped, no block {', '.join(row['missing'])} "
                   "(pass --alerts-webhook URL, or create the block; docs/operations.md).")
    _out.print("Start a worker to run them: prefect worker start --pool rlhf-local "
               "(or serve them without one: rlhf-wizard serve).")


def _serve(prefect_file: Path | None, intervals: list[str], limit: int | None,
           list_only: bool, as_json: bool, metrics_port: int | None = None,
           metrics_host: str | None = None) -> None:
    """Serve (or list) the deployments of the file."""
    from ops.deploy import export_lake_home, require_api_url
    from ops.deployments import PREFECT_FILE, load_deployments
    from ops.serve import parse_interval_overrides, serve_all
    from tasks.events import alert_thresholds

    path = prefect_file or PREFECT_FILE
    overrides = parse_interval_overrides(intervals)
    if list_only:
        export_lake_home()
        rows = [(f"{spec.load_flow().name}/{spec.name}", spec) for spec in load_deployments(path)]
        if as_json:
            typer.echo(json.dumps([{"name": name, "entrypoint": spec.entrypoint,
                                    "schedules": _schedules_text(spec.schedules),
                                    "parameters": spec.parameters} for name, spec in rows], indent=2))
            return
        table = Table(title=str(path))
        for column in ("deployment", "entrypoint", "schedules"):
            table.add_column(column, overflow="fold")
        for name, spec in rows:
            table.add_row(name, spec.entrypoint, _schedules_text(spec.schedules))
        _out.print(table)
        return
    api = require_api_url()
    home = export_lake_home()
    thresholds = alert_thresholds()  # the served runs read them: refuse a bad value now
    metrics = (f"; metrics on {metrics_host or '127.0.0.1'}:{metrics_port}/metrics"
               if metrics_port is not None else "")
    _out.print(f"Serving {path} on {api} (lake {home}{metrics}; alert thresholds: quarantine "
               f"{thresholds.quarantine:g}, veto {thresholds.veto:g}); Ctrl-C stops.")
    serve_all(path, interval_overrides=overrides, limit=limit, metrics_port=metrics_port,
              metrics_host=metrics_host)


def _doctor(config: Path | None, dask_address: str | None, as_json: bool) -> None:
    """Run every check, print the table (or JSON), exit 1 when any failed."""
    from ops.config import load_pipeline_config
    from ops.doctor import core_checks
    from ops.health import check_dask, check_prefect_api

    settings = load_pipeline_config(config)
    if dask_address:
        settings.dask.address = dask_address
    with _progress() as progress:
        step = progress.add_task("Checking", total=3)
        rows = core_checks()
        progress.advance(step)
        rows.append(check_prefect_api())
        progress.advance(step)
        rows.append(check_dask(settings.dask))
        progress.advance(step)
    failed = [r for r in rows if not r.ok]
    if as_json:
        typer.echo(json.dumps({"ok": not failed, "checks": [r.to_dict() for r in rows]}, indent=2))
    else:
        table = Table(title="rlhf-wizard doctor")
        for column in ("check", "status", "detail", "fix"):
            table.add_column(column, overflow="fold")
        for row in rows:
            status = "[green]ok[/green]" if row.ok else "[red]FAIL[/red]"
            table.add_row(row.name, status, row.detail, row.fix)
        _out.print(table)
        _out.print(f"{len(failed)} of {len(rows)} checks failed." if failed else "All checks passed.")
    if failed:
        raise typer.Exit(code=1)
