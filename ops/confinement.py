"""The roots this process enforces on run parameters, and the one call flows and the CLI make.

A flow takes its roots from where it runs — the environment (``RLHF_WIZARD_DATA_ROOTS``,
``RLHF_WIZARD_OUTPUT_ROOTS``) and the ``confinement`` section of the preset named by
``RLHF_WIZARD_PRESET`` (default: the shipped default preset) — never from its own parameters,
which anyone who can open the Prefect UI's run form chooses. The CLI's ``--config PRESET`` sets
``RLHF_WIZARD_PRESET`` for its own process, so a flow it runs in-process enforces the same roots.
See :mod:`rlhf_core.security.confine` for the checks.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from rlhf_core.security.confine import Roots, Values, confine, resolve_roots

P = TypeVar("P", bound=BaseModel)

PRESET_ENV = "RLHF_WIZARD_PRESET"
"""The pipeline preset whose ``confinement`` section this process enforces (default: ``default``)."""

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PROJECT_DIRS = (PROJECT_ROOT / "configs", PROJECT_ROOT / "rlhf_cli" / "examples")
"""Default data roots besides the lake's ``incoming/``: the project's ``configs/`` (contracts,
mappings, campaigns) and the demo contract shipped with the CLI."""


def enforced_roots() -> Roots:
    """The roots of this process: environment overrides, the preset's section, the defaults.

    Raises:
        ConfigError: The preset named by ``RLHF_WIZARD_PRESET`` is unreadable or invalid.
    """
    from ops.config import load_pipeline_config

    preset = load_pipeline_config(os.environ.get(PRESET_ENV) or None)
    return resolve_roots(preset.confinement, project_dirs=PROJECT_DIRS)


def use_preset(path: str | Path | None) -> None:
    """Make ``path`` (a CLI ``--config``) the preset whose roots this process enforces."""
    if path is not None:
        os.environ[PRESET_ENV] = str(Path(path).resolve())


def confine_run(subject: str, *, data: Values | None = None, outputs: Values | None = None,
                lake_files: Values | None = None, lake_root: str | None = None,
                details: Mapping[str, object] | None = None) -> dict[str, str | list[str] | None]:
    """Check a run's paths against :func:`enforced_roots` (see
    :func:`rlhf_core.security.confine.confine`); ``lake_root`` is checked as an output.

    Returns:
        The checked values by parameter name, local paths resolved (``lake_root`` included).

    Raises:
        ConfinementError: A value outside its roots (the refusal is audited first).
    """
    outputs = {**(outputs or {}), **({"lake_root": lake_root} if lake_root is not None else {})}
    return confine(subject, enforced_roots(), data=data, outputs=outputs, lake_files=lake_files,
                   lake_root=lake_root, details=details)


def confined(params: P, subject: str, *, data: Sequence[str] = (),
             lake_files: Sequence[str] = ()) -> P:
    """A flow's parameters with the named path fields (and ``lake_root``) checked and resolved:
    what a flow calls first, so nothing reads an unchecked path.

    Args:
        params: The flow's parameter model.
        subject: The flow's name, for the error and the audit entry.
        data: Fields holding inputs (a path, a list of paths, or None).
        lake_files: Fields holding files read back from the lake (e.g. ``responses`` parts).

    Raises:
        ConfinementError: A field outside its roots (the refusal is audited first).
    """
    run_id = getattr(params, "run_id", None)
    checked = confine_run(subject, data={f: getattr(params, f) for f in data},
                          lake_files={f: getattr(params, f) for f in lake_files},
                          lake_root=getattr(params, "lake_root", None),
                          details={"run_id": run_id} if run_id else None)
    return params.model_copy(update=checked)
