"""`rlhf-wizard`: the command-line entry point.

Each area registers its commands from its own module (``rlhf_cli/<area>.py`` exposes
``register(app)``). Errors of the project's own types print as one clear line and exit non-zero.
"""

from __future__ import annotations

import os
import sys

import typer
from rich.console import Console

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


def _register_all() -> None:
    from rlhf_cli import (
        audit,
        contract,
        data,
        ops,
        optimize,
        pipeline,
        plan,
        query,
        report,
    )

    for module in (contract, data, pipeline, query, audit, optimize, plan, report, ops):
        module.register(app)


_register_all()


def main() -> None:
    """Console-script entry: run the app, turning project errors into one line + exit code 1."""
    try:
        app()
    except SourceLocatedError as exc:
        _err.print(f"[red]error:[/red] {exc}", markup=True)
        if exc.caret:
            _err.print(exc.caret, markup=False)
        sys.exit(1)
    except WizardError as exc:
        _err.print(f"[red]error:[/red] {exc}", markup=True)
        sys.exit(1)
