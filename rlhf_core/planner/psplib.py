"""Readers for PSPLIB single-mode files: instances (``.sm``) and solution lists.

The ``.sm`` layout (Kolisch & Sprecher 1997): a header with the number of jobs and renewable
resources, a ``PRECEDENCE RELATIONS`` table, a ``REQUESTS/DURATIONS`` table and a
``RESOURCEAVAILABILITIES`` line. Malformed files raise :class:`PlannerError` with ``file:line``.

References:
    Kolisch, R. & Sprecher, A. (1997). PSPLIB - A project scheduling problem library.
    European Journal of Operational Research 96(1), 205-216.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

from rlhf_core.errors import PlannerError
from rlhf_core.planner.model import Activity, Project, Resource

_JOBS = re.compile(r"^\s*jobs \(incl\. supersource/sink \)\s*:\s*(\S+)")
_RENEW = re.compile(r"^\s*-\s*renewable\s*:\s*(\S+)")
_NAME = re.compile(r"^j(\d\d)(\d+)_(\d+)$")


def _ints(path: Path, lineno: int, text: str, what: str) -> list[int]:
    try:
        return [int(tok) for tok in text.split()]
    except ValueError:
        raise PlannerError(
            f"{path}:{lineno}: expected integers in the {what} ({text.strip()!r}); "
            "is this a PSPLIB single-mode .sm file?"
        ) from None


def _find(lines: list[str], start: int, marker: str, path: Path) -> int:
    for i in range(start, len(lines)):
        if lines[i].strip().startswith(marker):
            return i
    raise PlannerError(f"{path}:{len(lines)}: section {marker!r} not found; the file is truncated")


def read_sm(path: str | Path) -> Project:
    """Read a PSPLIB single-mode instance.

    Args:
        path: An ``.sm`` file, e.g. ``psplib/j30/instances/j301_1.sm``.

    Returns:
        The validated project; activities are named ``"1" .. "n"`` as in the file (1 and n are
        the zero-duration source and sink), resources ``"R1" .. "Rk"``.

    Raises:
        PlannerError: the file is missing or malformed (message names ``file:line``).
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise PlannerError(f"{path}: cannot read PSPLIB file ({exc.strerror})") from None
    n_jobs = n_res = None
    for i, line in enumerate(lines):
        if (m := _JOBS.match(line)) and n_jobs is None:
            n_jobs = _ints(path, i + 1, m.group(1), "job count")[0]
        elif (m := _RENEW.match(line)) and n_res is None:
            n_res = _ints(path, i + 1, m.group(1), "renewable resource count")[0]
    if n_jobs is None or n_res is None or n_jobs < 1:
        raise PlannerError(f"{path}:1: no 'jobs (incl. supersource/sink )' / 'renewable' header")

    prec = _find(lines, 0, "PRECEDENCE RELATIONS:", path) + 2
    successors: dict[int, list[int]] = {}
    for off in range(n_jobs):
        lineno = prec + off
        if lineno >= len(lines):
            raise PlannerError(f"{path}:{lineno}: precedence table ends after {off} of {n_jobs} jobs")
        vals = _ints(path, lineno + 1, lines[lineno], "precedence table")
        if len(vals) < 3 or vals[0] != off + 1 or len(vals) != 3 + vals[2]:
            raise PlannerError(
                f"{path}:{lineno + 1}: bad precedence row {lines[lineno].strip()!r}; expected "
                f"'job modes n_successors successors...' for job {off + 1}"
            )
        if vals[1] != 1:
            raise PlannerError(f"{path}:{lineno + 1}: job {vals[0]} has {vals[1]} modes; only single-mode is supported")
        for s in vals[3:]:
            if not 1 <= s <= n_jobs:
                raise PlannerError(f"{path}:{lineno + 1}: job {vals[0]} names unknown successor {s}")
        successors[vals[0]] = vals[3:]

    req = _find(lines, prec, "REQUESTS/DURATIONS:", path) + 3
    durations: dict[int, int] = {}
    demands: dict[int, list[int]] = {}
    for off in range(n_jobs):
        lineno = req + off
        if lineno >= len(lines):
            raise PlannerError(f"{path}:{lineno}: request table ends after {off} of {n_jobs} jobs")
        vals = _ints(path, lineno + 1, lines[lineno], "request/duration table")
        if len(vals) != 3 + n_res or vals[0] != off + 1:
            raise PlannerError(
                f"{path}:{lineno + 1}: bad request row {lines[lineno].strip()!r}; expected "
                f"'job mode duration' and {n_res} demands for job {off + 1}"
            )
        durations[vals[0]] = vals[2]
        demands[vals[0]] = vals[3:]

    avail = _find(lines, req, "RESOURCEAVAILABILITIES:", path) + 2
    if avail >= len(lines):
        raise PlannerError(f"{path}:{avail}: resource availabilities line is missing")
    caps = _ints(path, avail + 1, lines[avail], "resource availabilities")
    if len(caps) != n_res:
        raise PlannerError(f"{path}:{avail + 1}: expected {n_res} capacities, got {len(caps)}")

    preds: dict[int, list[str]] = {j: [] for j in range(1, n_jobs + 1)}
    for j, succ in successors.items():
        for s in succ:
            preds[s].append(str(j))
    res_names = [f"R{k + 1}" for k in range(n_res)]
    activities = tuple(
        Activity(
            name=str(j),
            duration=durations[j],
            demands={res_names[k]: v for k, v in enumerate(demands[j]) if v},
            predecessors=tuple(preds[j]),
        )
        for j in range(1, n_jobs + 1)
    )
    resources = tuple(Resource(name=r, capacity=c) for r, c in zip(res_names, caps, strict=True))
    return Project(name=path.stem, resources=resources, activities=activities, source=str(path))


class ReferenceValue(NamedTuple):
    """A published makespan for one instance: an upper bound and (when known) a lower bound."""

    upper: int
    lower: int | None
    optimal: bool


def instance_key(name: str) -> tuple[int, int]:
    """``"j301_1"`` -> ``(1, 1)``, ``"j6048_10"`` -> ``(48, 10)`` (parameter, instance)."""
    m = _NAME.match(name)
    if not m:
        raise PlannerError(f"{name!r} is not a PSPLIB instance name like 'j301_1'")
    return int(m.group(2)), int(m.group(3))


def read_solutions(path: str | Path) -> dict[tuple[int, int], ReferenceValue]:
    """Read ``j30opt.sm`` (optima), ``j60hrs.sm`` (best known) or ``j60lb.sm`` (LB/UB).

    Args:
        path: The solution list file.

    Returns:
        ``(parameter, instance) -> ReferenceValue``. ``j30opt`` values are optimal; ``j60hrs``
        values are upper bounds; ``j60lb`` rows carry both bounds and a ``*`` when proven optimal.

    Raises:
        PlannerError: the file cannot be read or holds no result rows.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise PlannerError(f"{path}: cannot read solution list ({exc.strerror})") from None
    kind = "lb" if "lb" in path.stem else ("opt" if "opt" in path.stem else "hrs")
    out: dict[tuple[int, int], ReferenceValue] = {}
    for i, line in enumerate(lines):
        toks = line.split()
        if len(toks) < 3 or not (toks[0].isdigit() and toks[1].isdigit() and toks[2].isdigit()):
            continue
        key = (int(toks[0]), int(toks[1]))
        if kind == "lb":
            if len(toks) < 4 or not toks[3].isdigit():
                raise PlannerError(f"{path}:{i + 1}: expected 'par inst UB LB' in {line.strip()!r}")
            ub, lb = int(toks[2]), int(toks[3])
            out[key] = ReferenceValue(ub, lb, len(toks) > 4 and toks[4] == "*")
        else:
            val = int(toks[2])
            out[key] = ReferenceValue(val, val if kind == "opt" else None, kind == "opt")
    if not out:
        raise PlannerError(f"{path}:1: no result rows found; expected 'parameter instance makespan'")
    return out
