"""Health checks of an installation that need neither Prefect nor Dask.

Python and package versions against the ranges the installed distribution declares (read with
:mod:`importlib.metadata`, so an installed wheel checks itself without a pyproject.toml), the lake (writable, every
table's part files readable with the columns their schema requires), the DuckDB warehouse (opens,
views refresh), key files (private keys readable by their owner only) and encryption at rest
(off, or the master key version and whether the passphrase opens it). Each check returns
:class:`Check` rows; a failed row carries the fix. ``rlhf-wizard doctor`` adds the Prefect API and
Dask scheduler checks from :mod:`ops.health`.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import stat
import sys
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet

from rlhf_core.errors import WizardError, first_line
from rlhf_core.lake.catalog import QUARANTINE_SCHEMA
from rlhf_core.lake.fs import is_local, write_bytes_atomic
from rlhf_core.lake.keyfile import LAKE_PASSPHRASE_ENV, lake_passphrase
from rlhf_core.lake.rotation import encryption_status
from rlhf_core.lake.runs import RUNS_SCHEMA, RUNS_TABLE
from rlhf_core.lake.schemas import PREFERENCE_BASE_FIELDS, RESPONSE_BASE_FIELDS
from rlhf_core.lake.store import Lake
from rlhf_core.lake.warehouse import Warehouse

DISTRIBUTION = "rlhf-contract-wizard"

REQUIRED_FIELDS: dict[str, tuple[pa.Field, ...]] = {
    "responses": tuple(RESPONSE_BASE_FIELDS),
    "preferences": tuple(PREFERENCE_BASE_FIELDS),
    "quarantine": tuple(QUARANTINE_SCHEMA),
    RUNS_TABLE: tuple(RUNS_SCHEMA),
    # The contract-independent head of ``score_schema.scores_schema`` (that module pulls in the
    # contract package, which the doctor does not need).
    "scores": (pa.field("prompt_id", pa.string()), pa.field("response_id", pa.string()),
               pa.field("reward", pa.float32())),
}
"""Columns (name and type) every part file of these lake tables must carry."""

_IO_ERRORS = (OSError, pa.ArrowException, WizardError)


@dataclass(frozen=True)
class Check:
    """One line of the doctor's table.

    Attributes:
        name: What was checked (``python``, ``package numpy``, ``lake writable`` ...).
        ok: Whether it passed.
        detail: What was found.
        fix: What to do when it failed (empty when it passed).
    """

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return asdict(self)


DEMO_KEY_DIRECTORY = Path("configs", "contracts", "keys")
"""The demo keys of a project checkout, relative to the directory the doctor runs in."""


def declared_requirements(distribution: str = DISTRIBUTION) -> tuple[str, list[str]]:
    """``Requires-Python`` and the runtime requirements (no extras) of the installed distribution.

    Read from the distribution's metadata (:mod:`importlib.metadata`), which an editable install
    and a wheel both have; requirements whose marker does not hold here (extras, other platforms)
    are left out.

    Raises:
        importlib.metadata.PackageNotFoundError: ``distribution`` is not installed.
    """
    meta = metadata.metadata(distribution)
    requires = []
    for text in metadata.requires(distribution) or []:
        try:
            marker = Requirement(text).marker
        except InvalidRequirement:
            requires.append(text)  # check_packages reports it
            continue
        if marker is None or marker.evaluate({"extra": ""}):
            requires.append(text)
    return meta.get("Requires-Python") or "", requires


def check_distribution(distribution: str = DISTRIBUTION) -> Check:
    """The installed distribution: its version and where its code is imported from."""
    try:
        version = metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return Check(distribution, False, "not installed (its metadata is missing)",
                     "pip install -e '.[dev]' in a checkout, or pip install the wheel")
    return Check(distribution, True, f"{version} at {Path(__file__).resolve().parents[1]}")


def check_python(requires_python: str, version: str | None = None) -> Check:
    """The running interpreter against ``requires-python``."""
    version = version or ".".join(str(p) for p in sys.version_info[:3])
    ok = SpecifierSet(requires_python).contains(version)
    return Check("python", ok, f"{version} (requires {requires_python or 'any'})",
                 "" if ok else f"use a Python that satisfies {requires_python}")


def check_packages(requirements: Iterable[str]) -> list[Check]:
    """Each declared dependency installed within its range (one row per problem, one summary)."""
    rows: list[Check] = []
    good = 0
    for text in requirements:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            rows.append(Check(f"package {text}", False, "unparseable requirement",
                              "fix the dependency line in pyproject.toml"))
            continue
        try:
            installed = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            rows.append(Check(f"package {req.name}", False, f"not installed (needs {req.specifier})",
                              f"pip install '{text}'"))
            continue
        if req.specifier and not req.specifier.contains(installed, prereleases=True):
            rows.append(Check(f"package {req.name}", False, f"{installed} outside {req.specifier}",
                              f"pip install '{text}'"))
            continue
        good += 1
    rows.insert(0, Check("packages", not rows, f"{good} of {good + len(rows)} within declared ranges",
                         "" if not rows else "reinstall: pip install -e '.[dev]'"))
    return rows


def check_lake_writable(lake: Lake) -> Check:
    """Create the root if needed, write and remove a probe file atomically."""
    name = "lake writable"
    try:
        lake.fs.create_dir(lake.base, recursive=True)
        probe = lake.path(f".doctor-probe-{uuid.uuid4().hex}")
        write_bytes_atomic(lake.fs, probe, b"ok")
        lake.fs.delete_file(probe)
    except _IO_ERRORS as exc:
        return Check(name, False, f"{lake.root}: {first_line(exc)}",
                     "set RLHF_WIZARD_HOME to a writable directory or URI (or fix its permissions)")
    return Check(name, True, str(lake.root))


def _schema_problem(table: str, schema: pa.Schema) -> str | None:
    for field in REQUIRED_FIELDS.get(table, ()):
        index = schema.get_field_index(field.name)
        if index < 0:
            return f"missing column {field.name}"
        if not schema.field(index).type.equals(field.type):
            return f"column {field.name} is {schema.field(index).type}, expected {field.type}"
    return None


def check_lake_tables(lake: Lake) -> list[Check]:
    """Every part file of every table opens, and carries its table's required columns."""
    try:
        tables = lake.list_tables()
    except _IO_ERRORS as exc:
        return [Check("lake tables", False, f"cannot list {lake.root}: {exc}",
                      "check RLHF_WIZARD_HOME and its permissions")]
    rows = []
    for table in tables:
        files = 0
        problem = None
        for run_id in lake.list_runs(table):
            for path in lake.part_paths(table, run_id):
                files += 1
                try:
                    schema = pq.read_schema(path, filesystem=lake.fs)
                except _IO_ERRORS as exc:
                    problem = f"{path}: unreadable ({first_line(exc)})"
                else:
                    issue = _schema_problem(table, schema)
                    problem = f"{path}: {issue}" if issue else None
                if problem:
                    break
            if problem:
                break
        rows.append(Check(f"lake table {table}", problem is None,
                          problem or (f"{files} part files, schema current" if table in REQUIRED_FIELDS
                                      else f"{files} part files readable"),
                          "" if problem is None else
                          f"re-run the flow that writes {table} for that run id, or delete the partition"))
    return rows or [Check("lake tables", True, "no tables yet (run `rlhf-wizard demo`)")]


def check_warehouse(lake: Lake) -> Check:
    """``warehouse.duckdb`` opens and its views refresh over the lake."""
    try:
        views = Warehouse(lake).refresh_views()
    except _IO_ERRORS as exc:
        return Check("warehouse", False, first_line(exc),
                     "close processes holding warehouse.duckdb; delete it to rebuild the views")
    return Check("warehouse", True, f"views refreshed: {', '.join(views) or 'none yet'}")


def _owner_only(path: Path, name: str, fix: str) -> Check:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        return Check(name, False, f"{path}: {exc.strerror}", fix)
    if mode & 0o077:
        return Check(name, False, f"{path} has mode {mode:04o}", f"chmod 600 {path}")
    return Check(name, True, f"{path} (mode {mode:04o})")


def check_operator_key(lake: Lake) -> Check:
    """The operator signing key: the configured file, else ``<lake>/keys/operator.pem``."""
    configured = os.environ.get("RLHF_WIZARD_OPERATOR_KEY")
    if configured:
        return _owner_only(Path(configured), "operator key",
                           "point RLHF_WIZARD_OPERATOR_KEY at an existing encrypted PKCS#8 key")
    if not is_local(lake.fs):
        return Check("operator key", True, "remote lake: set RLHF_WIZARD_OPERATOR_KEY to sign locally")
    path = Path(lake.path("keys", "operator.pem"))
    if not path.exists():
        return Check("operator key", True, f"{path} is created on the first audited run")
    return _owner_only(path, "operator key", f"restore {path} from backup or remove it to make a new one")


def check_lake_encryption(lake: Lake) -> Check:
    """Encryption at rest: off, or on with the master key version and whether the passphrase in
    ``RLHF_WIZARD_LAKE_PASSPHRASE`` opens the key file."""
    name = "lake encryption"
    try:
        state = encryption_status(lake, lake_passphrase())
    except _IO_ERRORS as exc:
        return Check(name, False, first_line(exc), f"check {LAKE_PASSPHRASE_ENV} and the key file")
    if not state.enabled:
        return Check(name, True, "off: text stored in plain Parquet (`rlhf-wizard keys init` to encrypt)")
    version = f"master key version {state.header.current}" if state.header else "unreadable key file"
    opens = {True: "the passphrase opens it", False: "the passphrase does NOT open it",
             None: f"key not checked ({LAKE_PASSPHRASE_ENV} not set)"}[state.unlocks]
    detail = (f"on, {version}, {opens}; {state.encrypted_parts} encrypted parts, "
              f"{state.plain_text_parts} text parts from before `keys init`")
    if state.problem:
        return Check(name, False, f"{detail}: {state.problem}",
                     f"set {LAKE_PASSPHRASE_ENV} to the lake passphrase; finish a rotation with "
                     "`rlhf-wizard keys rotate`; restore keys/master.key from backup")
    return Check(name, True, detail)


def check_access(lake: Lake) -> list[Check]:
    """The access policy (installed and verified, or open mode), a pending change, and issued run
    tokens that expire within a day (:mod:`rlhf_core.security.access.status`)."""
    from rlhf_core.security.access.status import access_checks

    try:
        return [Check(*row) for row in access_checks(lake)]
    except _IO_ERRORS as exc:
        return [Check("access policy", False, f"{lake.root}: {first_line(exc)}",
                      "check RLHF_WIZARD_HOME and the permissions of its access/ folder")]


def check_key_directory(directory: Path) -> list[Check]:
    """Demo private keys (``*.key.pem``) encrypted, each with its ``.pub`` beside it.

    The demo keys are published with their (demo-only) passphrase, and git does not keep file
    modes, so their mode is not checked; keys that guard anything real (the operator key, a
    stakeholder's own key) are checked for owner-only access elsewhere.
    """
    if not directory.is_dir():
        return [Check("demo keys", True, f"{directory} absent (not run in a project checkout)")]
    rows = []
    for key in sorted(directory.glob("*.key.pem")):
        pub = key.with_name(key.name.removesuffix(".key.pem") + ".pub")
        if not key.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----"):
            rows.append(Check(f"key {key.name}", False, f"{key} is not an encrypted PKCS#8 key",
                              f"re-create it with rlhf-wizard contract keygen {key}"))
        elif not pub.is_file():
            rows.append(Check(f"key {key.name}", False, f"{pub} missing",
                              f"rlhf-wizard contract keygen, or restore {pub.name}"))
    count = len(list(directory.glob("*.key.pem")))
    rows.insert(0, Check("demo keys", not rows, f"{count} encrypted demo keys in {directory}",
                         "" if not rows else "see the rows below"))
    return rows


def core_checks(lake: Lake | None = None, key_directory: Path | None = None) -> list[Check]:
    """Every check of this module, in display order.

    Args:
        lake: The lake to check (default: ``RLHF_WIZARD_HOME``).
        key_directory: Demo keys to check (default: ``configs/contracts/keys`` under the current
            directory; absent outside a project checkout, which passes).
    """
    lake = lake or Lake.from_env()
    installed = check_distribution()
    rows = [installed]
    if installed.ok:
        requires_python, requirements = declared_requirements()
        rows += [check_python(requires_python), *check_packages(requirements)]
    else:
        rows.append(check_python(""))
    writable = check_lake_writable(lake)
    rows.append(writable)
    rows.extend(check_lake_tables(lake))
    rows.append(check_warehouse(lake) if writable.ok else
                Check("warehouse", False, "skipped: the lake is not writable", writable.fix))
    rows.append(check_operator_key(lake))
    rows.extend(check_access(lake))
    rows.append(check_lake_encryption(lake))
    rows.extend(check_key_directory((key_directory or DEMO_KEY_DIRECTORY).absolute()))
    return rows
