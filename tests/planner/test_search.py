"""QIEA, bi-population GA and GA search: budgets, determinism by seed, islands path == compiled path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from rlhf_core.errors import PlannerError
from rlhf_core.planner import (
    BPGAParams,
    GAParams,
    Project,
    QIEAParams,
    SearchConfig,
    advance_island,
    best_of,
    epoch_lengths,
    migrate_islands,
    plan_project,
    read_sm,
    start_island,
    to_instance,
)

SMALL = SearchConfig(budget=300, seed=11, params=QIEAParams(islands=2, pop_size=6, migration_interval=2))


def test_generation_count_respects_the_budget() -> None:
    # Backward decoding with justification: two schedules per individual.
    assert SMALL.generations() == 300 // (2 * 6 * 2)
    assert epoch_lengths(SMALL) == [2] * 6
    assert sum(epoch_lengths(SMALL)) == SMALL.generations()
    odd = SearchConfig(budget=1000, params=QIEAParams(islands=4, pop_size=8, migration_interval=5))
    assert odd.generations() == 15 and epoch_lengths(odd) == [5, 5, 5]
    assert epoch_lengths(odd.with_params(migration_interval=4)) == [4, 4, 4, 3]
    assert SMALL.with_params(decode="forward").generations() == 300 // (2 * 6 * 3)
    with pytest.raises(PlannerError, match=r"budget 10 is below one generation \(24 schedules\)"):
        SearchConfig(budget=10, params=QIEAParams(islands=2, pop_size=6)).generations()
    # The bi-population GA: one schedule per child, a half-generation is one population. 300
    # schedules buy 7 halves of 40: init's, then 3 generations of a backward and a forward half.
    bpga = SearchConfig(budget=300, params=BPGAParams(pop_size=40))
    assert 300 // 40 == 7 and bpga.generations() == 3
    with pytest.raises(PlannerError, match=r"bpga decodes every child with one pass .* sgs='parallel'"):
        BPGAParams(sgs="parallel")
    assert SearchConfig(params=BPGAParams(parallel_share=0.5)).params.parallel_share == 0.5
    assert BPGAParams().restart_after == 15
    assert BPGAParams(restart_after=0).restart_after == 0
    with pytest.raises(ValidationError, match="restart_after"):
        BPGAParams(restart_after=-1)
    assert QIEAParams(parallel_share=0.5).parallel_share == 0.5
    with pytest.raises(ValidationError, match="parallel_share"):
        BPGAParams(parallel_share=1.5)
    with pytest.raises(PlannerError, match=r"window_moves 2 leaves no observed child in an island of 2"):
        QIEAParams(pop_size=2)
    # The GA: its initial population is one generation of the budget.
    ga = SearchConfig(budget=300, params=GAParams(pop_size=12))
    assert ga.generations() == 300 // (2 * 12) - 1
    with pytest.raises(PlannerError, match=r"budget 20 is below one generation \(24 schedules\)"):
        SearchConfig(budget=20, params=GAParams(pop_size=12)).generations()


TINY_CONFIGS = {
    "qiea": SMALL,
    "ga": SearchConfig(budget=300, seed=11, params=GAParams(pop_size=12)),
    "bpga": SearchConfig(budget=300, seed=11, params=BPGAParams(pop_size=8)),
}


@pytest.mark.parametrize("algorithm", ["qiea", "ga", "bpga"])
def test_tiny_project_reaches_the_optimum(tiny: Project, algorithm: str) -> None:
    config = TINY_CONFIGS[algorithm]
    plan = plan_project(tiny, config)
    assert plan.makespan == 5 and plan.starts.tolist() == [0, 3, 3]
    per = 8 if algorithm == "bpga" else 24
    assert plan.schedules <= config.budget and plan.schedules == config.budget // per * per


def test_same_seed_same_schedule_and_islands_path_agrees(shared_data: Path) -> None:
    proj = read_sm(shared_data / "psplib/j30/instances/j3013_1.sm")
    first = plan_project(proj, SMALL)
    second = plan_project(proj, SMALL)
    assert np.array_equal(first.starts, second.starts) and first.makespan == second.makespan
    inst = to_instance(proj.arrays())
    states = [start_island(inst, SMALL, i) for i in range(SMALL.params.islands)]
    for epoch in range(1, len(epoch_lengths(SMALL)) + 1):
        states = migrate_islands([advance_island(inst, SMALL, s, epoch) for s in states])
    best = best_of(states)
    assert np.asarray(best.starts)[: proj.n_activities].tolist() == first.starts.tolist()
    assert int(best.schedules) == first.schedules


def test_parallel_sgs_search_is_feasible(shared_data: Path) -> None:
    proj = read_sm(shared_data / "psplib/j30/instances/j3037_4.sm")
    config = SMALL.with_params(sgs="parallel", fbi=False)
    plan = plan_project(proj, config)
    assert config.generations() == 25
    assert plan.makespan >= plan.lower_bound and plan.schedules == 25 * 12


def test_islands_api_rejects_the_ga(tiny: Project) -> None:
    with pytest.raises(PlannerError, match=r"islands are a QIEA feature"):
        start_island(to_instance(tiny.arrays()), TINY_CONFIGS["ga"], 0)
    with pytest.raises(PlannerError, match=r"epoch 99 is outside"):
        advance_island(to_instance(tiny.arrays()), SMALL, None, 99)  # type: ignore[arg-type]
