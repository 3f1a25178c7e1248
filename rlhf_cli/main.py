"""`rlhf-wizard`: the command-line entry point.

Every area is one module, ``rlhf_cli/<area>.py``, with a module-level ``app = typer.Typer(...)``
and thin ``@app.command("name")`` functions. :data:`AREAS` adds each module's ``app`` to the root:
nouns (``contract``, ``data``, ``audit``) as named sub-commands, verbs (``run``, ``demo``, ...)
nameless, so Typer merges their commands into the root. Errors of the project's own types print as
one clear line and exit non-zero.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from rlhf_cli import (
    access,
    audit,
    contract,
    data,
    evaluate,
    keys,
    ops,
    optimize,
    pipeline,
    plan,
    query,
    report,
    server,
)
from rlhf_cli.pipeline import VerboseFlag, show_library_logs
from rlhf_core.errors import SourceLocatedError, WizardError

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

app = typer.Typer(
    name="rlhf-wizard",
    help="Governed reward contracts for RLHF: validate, score, optimise, plan and report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

_err = Console(stderr=True, highlight=False, soft_wrap=True)


AREAS: tuple[tuple[ModuleType, str | None], ...] = (
    (pipeline, None),  # demo, run
    (query, None),  # query
    (optimize, None),  # fit, optimize, export
    (evaluate, None),  # evaluate
    (plan, None),  # plan
    (report, None),  # report
    (ops, None),  # deploy, serve, doctor
    (contract, "contract"),
    (data, "data"),
    (audit, "audit"),
    (access, "access"),
    (keys, "keys"),
    (server, "server"),
)
"""Each area's module and its sub-command name (None: its commands join the root), in help order."""


TokenOption = Annotated[str | None, typer.Option(
    "--token", envvar="RLHF_WIZARD_TOKEN", show_envvar=False,
    help="Run token (rlhf-wizard access token) identifying you when an access policy is installed; "
         "default $RLHF_WIZARD_TOKEN, else a token minted from $RLHF_WIZARD_PRINCIPAL_KEY.")]


@app.callback()
def _root(context: typer.Context, verbose: VerboseFlag = False, token: TokenOption = None) -> None:
    show_library_logs(verbose)
    access.begin_invocation(context, token)  # checked where each command acts (access.require)


def _area_app(module: ModuleType) -> typer.Typer:
    if hasattr(module, "app"):
        return module.app
    legacy = typer.Typer()  # a module still on ``register(root)``: keep its place in the table
    module.register(legacy)
    return legacy


for _module, _name in AREAS:
    app.add_typer(_area_app(_module), name=_name)


def main() -> None:
    """Console-script entry: run the app, turning project errors into one line + exit code 1."""
    try:
        app()
    except SourceLocatedError as exc:
        _err.print(f"[red]error:[/red] {escape(str(exc))}", markup=True)
        if exc.caret:
            _err.print(exc.caret, markup=False)
        sys.exit(1)
    except WizardError as exc:
        _err.print(f"[red]error:[/red] {escape(str(exc))}", markup=True)
        sys.exit(1)
