"""CLI: ``rlhf-wizard server start|stop|status``: a long-lived local Prefect server that runs reuse."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(help="A long-lived local Prefect server (UI included) that runs reuse.",
                  no_args_is_help=True)
_out = Console(highlight=False)


@app.command("start")
def start(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port on 127.0.0.1.")] = 4200,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for it to answer.")] = 120.0,
) -> None:
    """Start the server in the background (a no-op when it already runs).

    Later `rlhf-wizard run`, `demo`, `fit` and `plan` in this home use it instead of starting a
    temporary one, and their flow runs stay browsable in its UI.

    Example: rlhf-wizard server start --port 4200
    """
    from ops import prefect_server

    state = prefect_server.start(port=port, timeout_s=timeout)
    _out.print(f"Prefect server running on {state.url.removesuffix('/api')} (pid {state.pid}); "
               f"runs in this home reuse it. Log: {state.log}")
    _out.print(f"Other tools: export PREFECT_API_URL={state.url}")


@app.command("status")
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Say whether this home's server runs and answers; exit 1 when it does not.

    Example: rlhf-wizard server status
    """
    from ops import prefect_server

    state = prefect_server.read_state()
    url = prefect_server.running_url()
    if as_json:
        typer.echo(json.dumps({"running": url is not None, "url": url,
                               "pid": state.pid if state else None,
                               "log": state.log if state else None}))
    elif url:
        _out.print(f"running: {url} (pid {state.pid}; log {state.log})")
    elif state:
        _out.print(f"not running: the server recorded in {prefect_server.state_dir()} (pid "
                   f"{state.pid}) does not answer; `rlhf-wizard server start` starts a new one")
    else:
        _out.print("not running: start one with `rlhf-wizard server start`")
    if url is None:
        raise typer.Exit(code=1)


@app.command("stop")
def stop() -> None:
    """Stop this home's server and its processes.

    Example: rlhf-wizard server stop
    """
    from ops import prefect_server

    state = prefect_server.stop()
    if state is None:
        _out.print("no server was started in this home")
    else:
        _out.print(f"stopped the Prefect server on {state.url} (pid {state.pid})")
