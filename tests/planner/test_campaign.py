"""Campaign YAML: the shipped example, contract-derived precedences and located errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlhf_core.errors import PlannerError
from rlhf_core.planner import load_campaign
from tests.conftest import REPO_ROOT

EXAMPLE = REPO_ROOT / "configs" / "campaigns" / "rlhf_campaign.yaml"

HEADER = "campaign: c\nresources: {gpus: 4, reviewers: 1}\njobs:\n"


def _write(tmp_path: Path, jobs: str, extra: str = "") -> Path:
    path = tmp_path / "campaign.yaml"
    path.write_text(HEADER + jobs + extra)
    return path


def test_example_campaign_loads_with_contract_gate() -> None:
    proj = load_campaign(EXAMPLE)
    acts = {a.name: a for a in proj.activities}
    assert {r.name: r.capacity for r in proj.resources} == {"gpus": 16, "annotators": 12, "reviewers": 3}
    kinds = {a.kind for a in proj.activities}
    assert {"annotation", "reward_training", "policy_training", "evaluation", "red_teaming", "safety_review", "export"} <= kinds
    for name, act in acts.items():
        if act.kind == "export":
            assert "safety-review" in act.predecessors, name


def test_cyclic_campaign_names_the_cycle(tmp_path: Path) -> None:
    path = _write(tmp_path, (
        "  - {name: train, duration: 2, needs: {gpus: 2}, after: [review]}\n"
        "  - {name: evaluate, duration: 1, after: [train]}\n"
        "  - {name: review, duration: 1, needs: {reviewers: 1}, after: [evaluate]}\n"
    ))
    with pytest.raises(PlannerError, match=r"campaign\.yaml: project 'c': precedence cycle .*(train -> evaluate -> review -> train|evaluate -> review -> train -> evaluate|review -> train -> evaluate -> review)"):
        load_campaign(path)


def test_contract_rule_can_create_a_cycle(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "  - {name: export, kind: export, duration: 1}\n  - {name: safety, duration: 1, after: [export]}\n",
        "contract:\n  - {gate: safety, before_kinds: [export]}\n",
    )
    with pytest.raises(PlannerError, match=r"precedence cycle"):
        load_campaign(path)


@pytest.mark.parametrize(
    ("jobs", "extra", "message"),
    [
        ("  - {name: a, duration: 1}\n  - {name: b, duration: x}\n", "", r"campaign\.yaml:5: jobs\.1\.duration: Input should be a valid integer"),
        ("  - {name: a, duration: 1, needs: {tpus: 1}}\n", "", r"needs unknown resource 'tpus'"),
        ("  - {name: a, duration: 1, needs: {gpus: 5}}\n", "", r"needs 5 'gpus' but the capacity is 4"),
        ("  - {name: a, duration: -2}\n", "", r"negative duration -2"),
        ("  - {name: a, duration: 1, after: [ghost]}\n", "", r"unknown activity 'ghost'"),
        ("  - {name: a, duration: 1}\n", "contract:\n  - {gate: nobody, before_kinds: [export]}\n", r"unknown gate job 'nobody'"),
        ("  - {name: a, duration: 1, colour: red}\n", "", r"campaign\.yaml:4: jobs\.0\.colour: Extra inputs"),
        ("  - {name: a, duration: [1\n", "", r"campaign\.yaml:\d+: "),
    ],
)
def test_invalid_campaigns(tmp_path: Path, jobs: str, extra: str, message: str) -> None:
    with pytest.raises(PlannerError, match=message):
        load_campaign(_write(tmp_path, jobs, extra))


def test_missing_campaign_file(tmp_path: Path) -> None:
    with pytest.raises(PlannerError, match=r"cannot read campaign file"):
        load_campaign(tmp_path / "none.yaml")
