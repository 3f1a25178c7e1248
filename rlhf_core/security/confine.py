"""Confined inputs: every path or URI a run is given must lie under a configured root.

A flow parameter (``data``, ``mapping``, ``contract``, ``lake_root``, ...) comes from whoever can
reach the Prefect UI or the CLI; without a check, any file the worker can read would be pulled
into the lake (``--data /etc/passwd`` stored every line of it in ``quarantine``). So each path is
resolved first — ``~``, symlinks and ``..``, as :meth:`pathlib.Path.resolve` does — and the
result must lie under one of the roots:

* data roots (inputs: data, mapping, contract, campaign): by default ``<lake root>/incoming/``
  and the project folders the caller names (the project's ``configs/``);
* output roots (lake roots, exports, report copies): by default the lake root.

A URI must use an allowed scheme (``file``, ``s3``, ``gs``) and lie under a URI root or in an
allowed bucket. Anything else raises :class:`~rlhf_core.errors.ConfinementError` before a byte of
it is read, and :func:`confine` writes the refusal to the audit log. The checked values are
returned resolved, so what is read later is the file that was checked.

Roots come from the pipeline preset's ``confinement`` section, overridden by
``RLHF_WIZARD_DATA_ROOTS`` / ``RLHF_WIZARD_OUTPUT_ROOTS`` (``os.pathsep``-separated; a URI root's
``scheme://`` survives the split) — never from a run's own parameters.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field

from rlhf_core.errors import ConfinementError, WizardError, first_line
from rlhf_core.lake.names import DEFAULT_HOME, ENV_HOME

DATA_ROOTS_ENV = "RLHF_WIZARD_DATA_ROOTS"
OUTPUT_ROOTS_ENV = "RLHF_WIZARD_OUTPUT_ROOTS"
INCOMING = "incoming"
DEFAULT_SCHEMES = ("file", "s3", "gs")
REFUSAL_KIND = "input_refused"
"""Audit entry kind of a refused path (subject: the flow or command)."""

Kind = Literal["data", "output"]
_ENV = {"data": DATA_ROOTS_ENV, "output": OUTPUT_ROOTS_ENV}
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")
_log = logging.getLogger(__name__)

__all__ = [
    "DATA_ROOTS_ENV", "DEFAULT_SCHEMES", "INCOMING", "OUTPUT_ROOTS_ENV", "REFUSAL_KIND",
    "ConfinementConfig", "Roots", "Values", "check_path", "confine", "resolve_roots", "split_roots",
]


class ConfinementConfig(BaseModel):
    """The ``confinement`` section of a pipeline preset.

    Attributes:
        data_roots: Folders (or URI prefixes) inputs may come from; None: ``<lake root>/incoming``
            and the project's ``configs/``. ``RLHF_WIZARD_DATA_ROOTS`` replaces it.
        output_roots: Folders (or URI prefixes) runs may write; None: the lake root.
            ``RLHF_WIZARD_OUTPUT_ROOTS`` replaces it.
        allowed_schemes: URI schemes accepted at all (``file`` covers plain paths too).
        allowed_buckets: Object-store buckets whose every object is allowed, for reading and
            writing (the roots allow a prefix; this allows the whole bucket).
    """

    model_config = ConfigDict(extra="forbid")

    data_roots: list[str] | None = None
    output_roots: list[str] | None = None
    allowed_schemes: list[str] = Field(default_factory=lambda: list(DEFAULT_SCHEMES))
    allowed_buckets: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class Roots:
    """Resolved roots: local folders as absolute real paths, URI roots as ``scheme://bucket/path``."""

    data: tuple[str, ...]
    output: tuple[str, ...]
    schemes: frozenset[str]
    buckets: frozenset[str]

    def of(self, kind: Kind) -> tuple[str, ...]:
        """The roots of one kind."""
        return self.data if kind == "data" else self.output


def split_roots(text: str) -> list[str]:
    """Split an ``os.pathsep``-separated list, keeping ``s3://bucket/x`` whole (on POSIX the
    separator is ``:``, which also ends a URI scheme)."""
    pieces = text.split(os.pathsep)
    out: list[str] = []
    for piece in pieces:
        if out and piece.startswith("//") and _SCHEME_RE.match(out[-1]):
            out[-1] = f"{out[-1]}:{piece}"
        elif piece.strip():
            out.append(piece.strip())
    return out


def _locate(value: str) -> tuple[str, str, str]:
    """``(scheme, bucket, path)`` of a value: a local path resolved (symlinks, ``..``, ``~``),
    or a URI's lower-cased scheme, its bucket and its normalised key path."""
    if "://" not in value:
        return "file", "", str(Path(value).expanduser().resolve())
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    if scheme == "file":
        return "file", "", str(Path(unquote(parts.path) or "/").resolve())
    return scheme, parts.netloc, posixpath.normpath("/" + unquote(parts.path).lstrip("/"))


def _shown(scheme: str, bucket: str, path: str) -> str:
    return path if scheme == "file" else f"{scheme}://{bucket}{path}"


def _normal_root(root: str) -> str:
    scheme, bucket, path = _locate(root)
    return _shown(scheme, bucket, path)


def resolve_roots(config: ConfinementConfig | None = None, *, project_dirs: Sequence[str | Path] = (),
                  environ: Mapping[str, str] | None = None) -> Roots:
    """The roots to enforce: environment overrides, else the preset's lists, else the defaults.

    Args:
        config: The preset's ``confinement`` section (None: all defaults).
        project_dirs: Project folders added to the default data roots (e.g. ``configs/``).
        environ: Environment to read (default ``os.environ``): ``RLHF_WIZARD_HOME`` (the lake
            root of the defaults) and the two overrides.
    """
    config = config or ConfinementConfig()
    env = os.environ if environ is None else environ
    home = env.get(ENV_HOME) or DEFAULT_HOME
    parts = urlsplit(home)  # a URI home may carry a query (?region=...): join on its path
    incoming = (urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}/{INCOMING}"))
                if "://" in home else f"{home.rstrip('/')}/{INCOMING}")
    defaults = {"data": [incoming, *(str(p) for p in project_dirs)], "output": [home]}
    chosen = {"data": config.data_roots, "output": config.output_roots}
    lists: dict[str, list[str]] = {}
    for kind, name in _ENV.items():
        override = env.get(name, "").strip()
        given = chosen[kind]
        lists[kind] = split_roots(override) if override else given if given is not None else defaults[kind]
    return Roots(
        data=tuple(dict.fromkeys(_normal_root(r) for r in lists["data"])),
        output=tuple(dict.fromkeys(_normal_root(r) for r in lists["output"])),
        schemes=frozenset(s.lower() for s in config.allowed_schemes),
        buckets=frozenset(config.allowed_buckets),
    )


def _under(scheme: str, bucket: str, path: str, root: str) -> bool:
    r_scheme, r_bucket, r_path = _locate(root)
    if (r_scheme, r_bucket) != (scheme, bucket):
        return False
    if scheme == "file":
        return Path(path).is_relative_to(r_path)
    return path == r_path or path.startswith(r_path.rstrip("/") + "/")


def check_path(parameter: str, value: str, roots: Roots, kinds: Sequence[Kind] = ("data",),
               subject: str = "run") -> str:
    """Resolve ``value`` and return it if it lies under a root of one of ``kinds``.

    Returns:
        The resolved local path (what the caller must read or write from now on), or the URI
        as given.

    Raises:
        ConfinementError: Outside every root, a scheme not allowed, or a bucket not allowed; the
            message names the parameter, the resolved path, the allowed roots and the fix.
    """
    scheme, bucket, path = _locate(str(value))
    shown = _shown(scheme, bucket, path)
    allowed = [root for kind in kinds for root in roots.of(kind)]
    kind, label = kinds[0], " or ".join(kinds)
    where = f"{subject}: parameter '{parameter}' = {str(value)!r}"
    if scheme not in roots.schemes:
        raise ConfinementError(
            f"{where} uses the URI scheme '{scheme}', which is not allowed (allowed: "
            f"{', '.join(sorted(roots.schemes)) or 'none'}); add it to confinement.allowed_schemes "
            "in the pipeline preset", parameter, shown)
    if bucket and bucket in roots.buckets:
        return str(value)
    if any(_under(scheme, bucket, path, root) for root in allowed):
        return path if scheme == "file" else str(value)
    listed = ", ".join(allowed) or "none"
    verb = "reading" if kind == "data" else "writing"
    if bucket:
        raise ConfinementError(
            f"{where}: bucket '{bucket}' is not allowed and {shown} lies outside the allowed {label} "
            f"roots ({listed}); refused before {verb} it: add the bucket to "
            f"confinement.allowed_buckets or a prefix to confinement.{kind}_roots in the pipeline "
            f"preset (or {_ENV[kind]})", parameter, shown)
    raise ConfinementError(
        f"{where} resolves to {shown}, outside the allowed {label} roots ({listed}); refused "
        f"before {verb} it: move it under one of them, or add its folder to "
        f"confinement.{kind}_roots in the pipeline preset or to {_ENV[kind]} "
        f"({os.pathsep!r}-separated)", parameter, shown)


Values = Mapping[str, str | Sequence[str] | None]


def _check_all(values: Values, kinds: Sequence[Kind], roots: Roots, subject: str,
               out: dict[str, str | list[str] | None]) -> None:
    for parameter, value in values.items():
        if value is None:
            out[parameter] = None
        elif isinstance(value, str | os.PathLike):
            out[parameter] = check_path(parameter, os.fspath(value), roots, kinds, subject)
        else:
            out[parameter] = [check_path(f"{parameter}[{i}]", os.fspath(v), roots, kinds, subject)
                              for i, v in enumerate(value)]


def confine(subject: str, roots: Roots, *, data: Values | None = None,
            outputs: Values | None = None, lake_files: Values | None = None,
            lake_root: str | None = None, details: Mapping[str, object] | None = None,
            ) -> dict[str, str | list[str] | None]:
    """Check a run's paths before anything reads them; audit and raise on the first refusal.

    Args:
        subject: The flow or command (``contract-pipeline``, ``rlhf-wizard run``).
        roots: The roots to enforce (:func:`resolve_roots`).
        data: Inputs (data, mapping, contract, campaign): under a data root.
        outputs: Places written (``lake_root``, ``--out``): under an output root. Checked first.
        lake_files: Files a run reads back from the lake: under a data or an output root.
        lake_root: The run's lake root; the refusal is audited there when it is itself allowed,
            else in ``RLHF_WIZARD_HOME``'s lake.
        details: Extra audit details (e.g. the run id).

    Returns:
        Every parameter's checked value (local paths resolved), by name.

    Raises:
        ConfinementError: The first value outside its roots (after it was audited).
    """
    checked: dict[str, str | list[str] | None] = {}
    try:
        _check_all(outputs or {}, ("output",), roots, subject, checked)
        _check_all(data or {}, ("data",), roots, subject, checked)
        _check_all(lake_files or {}, ("data", "output"), roots, subject, checked)
    except ConfinementError as exc:
        audit_root = None
        if lake_root is not None:
            try:
                audit_root = check_path("lake_root", lake_root, roots, ("output",), subject)
            except ConfinementError:
                pass  # a refused lake root gets no entry: the home lake's log records it
        raise _audited(exc, subject, roots, audit_root, details) from None
    return checked


def _audited(exc: ConfinementError, subject: str, roots: Roots, audit_root: str | None,
             details: Mapping[str, object] | None) -> ConfinementError:
    """Write the refusal to the audit log; return the error to raise (noting an audit failure)."""
    from rlhf_core.lake.store import Lake
    from rlhf_core.security.audit import append_audit

    lake = Lake(audit_root) if audit_root is not None else Lake.from_env()
    try:
        append_audit(REFUSAL_KIND, subject, {
            **(details or {}), "parameter": exc.parameter, "resolved": exc.resolved,
            "reason": str(exc), "data_roots": list(roots.data), "output_roots": list(roots.output),
        }, lake=lake)
    except (WizardError, OSError) as audit_exc:  # the refusal stands even when the log is broken
        _log.error("the refusal could not be audited in %s: %s", lake.root, first_line(audit_exc))
        return ConfinementError(f"{exc}; the refusal could not be audited ({first_line(audit_exc)})",
                                exc.parameter, exc.resolved)
    return exc
