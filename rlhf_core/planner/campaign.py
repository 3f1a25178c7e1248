"""Load an RLHF campaign YAML (jobs, durations, needs, dependencies, capacities) as a Project.

Format (see ``configs/campaigns/rlhf_campaign.yaml``)::

    campaign: <name>
    time_unit: day
    resources: {gpus: 16, annotators: 12, reviewers: 3}
    jobs:
      - {name: ..., kind: ..., duration: 3, needs: {gpus: 8}, after: [other-job]}
    contract:
      - {gate: safety-review, before_kinds: [export], reason: "..."}

``contract`` rules add a precedence from the gate job to every job of the listed kinds (a
contract can require a safety review before any export). Errors name ``file:line``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from rlhf_core.errors import PlannerError
from rlhf_core.planner.model import Activity, Project, Resource


class JobSpec(BaseModel):
    """One campaign job as written in YAML."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    kind: str = "task"
    duration: int
    needs: dict[str, int] = Field(default_factory=dict)
    after: list[str] = Field(default_factory=list)


class ContractRule(BaseModel):
    """A contract-derived precedence: ``gate`` finishes before every job of ``before_kinds``."""

    model_config = ConfigDict(extra="forbid")

    gate: str
    before_kinds: list[str] = Field(min_length=1)
    reason: str = ""


class CampaignSpec(BaseModel):
    """The whole campaign file."""

    model_config = ConfigDict(extra="forbid")

    campaign: str = Field(min_length=1)
    time_unit: str = "day"
    resources: dict[str, int]
    jobs: list[JobSpec] = Field(min_length=1)
    contract: list[ContractRule] = Field(default_factory=list)


def _line_of(doc: Any, loc: tuple[Any, ...]) -> int:
    node, line = doc, 1
    for part in loc:
        lc = getattr(node, "lc", None)
        try:
            if lc is not None:
                line = (lc.key(part) if isinstance(part, str) else lc.item(part))[0] + 1
            node = node[part]
        except (KeyError, IndexError, TypeError, AttributeError):
            break
    return line


def campaign_to_project(spec: CampaignSpec, source: str = "<campaign>") -> Project:
    """Turn a parsed campaign into a validated :class:`Project` (contract rules applied).

    Raises:
        PlannerError: unknown gate jobs, cycles, unknown resources, over-capacity demands, ...
    """
    names = {j.name for j in spec.jobs}
    extra: dict[str, list[str]] = {j.name: [] for j in spec.jobs}
    for rule in spec.contract:
        if rule.gate not in names:
            raise PlannerError(f"{source}: contract rule names unknown gate job {rule.gate!r}")
        for job in spec.jobs:
            if job.kind in rule.before_kinds and job.name != rule.gate and rule.gate not in job.after:
                extra[job.name].append(rule.gate)
    activities = tuple(
        Activity(
            name=j.name, kind=j.kind, duration=j.duration, demands=dict(j.needs),
            predecessors=tuple(j.after) + tuple(extra[j.name]),
        )
        for j in spec.jobs
    )
    resources = tuple(Resource(name=k, capacity=v) for k, v in spec.resources.items())
    return Project(name=spec.campaign, resources=resources, activities=activities, source=source)


def load_campaign(path: str | Path) -> Project:
    """Read and validate a campaign YAML file.

    Args:
        path: The campaign file.

    Returns:
        The validated project (jobs become activities in file order).

    Raises:
        PlannerError: unreadable file, YAML syntax, schema violations (``file:line: field``) or
            an invalid project (cycles named, unknown references, over-capacity demands).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlannerError(f"{path}: cannot read campaign file ({exc.strerror})") from None
    try:
        doc = YAML(typ="rt").load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise PlannerError(f"{path}:{line}: {problem}") from None
    if not isinstance(doc, dict):
        raise PlannerError(f"{path}:1: a campaign must be a mapping with 'campaign', 'resources', 'jobs'")
    try:
        spec = CampaignSpec.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        where = ".".join(str(p) for p in loc) or "<root>"
        raise PlannerError(f"{path}:{_line_of(doc, loc)}: {where}: {err['msg']}") from None
    return campaign_to_project(spec, source=str(path))
