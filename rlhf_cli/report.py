"""CLI commands: report (filled in by the issue that owns this area)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach this area's commands to the root app."""
