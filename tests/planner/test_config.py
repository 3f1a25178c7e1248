"""The search configuration: one params class per algorithm (a tagged union), defaults in one place."""

from __future__ import annotations

import typing

import pytest
from pydantic import ValidationError

from rlhf_core.errors import ConfigError, PlannerError
from rlhf_core.planner import (
    ALGORITHMS,
    PARAMS_CLASSES,
    AlgorithmName,
    BPGAParams,
    GAParams,
    QIEAParams,
    SearchConfig,
    make_solver,
    search_config,
)


def test_the_union_is_tagged_by_algorithm_and_round_trips_through_json() -> None:
    assert SearchConfig().params == QIEAParams() and SearchConfig().algorithm == "qiea"
    assert list(PARAMS_CLASSES) == list(ALGORITHMS) == ["qiea", "bpga", "ga"]
    assert typing.get_args(AlgorithmName) == tuple(PARAMS_CLASSES)  # the CLI's --algorithm choices
    for cls in PARAMS_CLASSES.values():
        config = SearchConfig(budget=700, seed=3, params=cls())
        again = SearchConfig.model_validate_json(config.model_dump_json())
        assert again == config and type(again.params) is cls and again.algorithm == cls().algorithm
    parsed = SearchConfig.model_validate({"params": {"algorithm": "bpga", "pop_size": 40}})
    assert parsed.params == BPGAParams(pop_size=40)
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        SearchConfig.model_validate({"params": {"algorithm": "sa"}})
    with pytest.raises(ValidationError, match="islands"):  # a QIEA field is no BPGA field
        SearchConfig.model_validate({"params": {"algorithm": "bpga", "islands": 2}})
    with pytest.raises(ValidationError, match="bpga_population"):
        SearchConfig(budget=10, params=BPGAParams(), bpga_population=3)  # no prefixed fields


def test_defaults_live_in_the_params_classes() -> None:
    assert (QIEAParams().islands, QIEAParams().pop_size, QIEAParams().window_moves) == (4, 4, 2)
    assert (BPGAParams().pop_size, BPGAParams().restart_after, BPGAParams().parallel_share) == (80, 15, 0.25)
    assert GAParams().pop_size == 16  # the old default: 4 islands * 4 individuals
    # BPGA window moves default to a tenth of the population, following pop_size.
    assert BPGAParams().window_moves == 8 and BPGAParams(pop_size=40).window_moves == 4
    assert BPGAParams(pop_size=40, window_moves=1).window_moves == 1
    config = SearchConfig(params=BPGAParams(pop_size=40))
    assert config.with_params(pop_size=80).params.window_moves == 8
    with pytest.raises(ValidationError, match="pop_size"):
        config.with_params(pop_size=2)
    assert (SearchConfig().budget, SearchConfig().seed) == (5000, 0)


def test_search_config_builds_from_flat_options_and_names_what_is_wrong() -> None:
    assert search_config("bpga", budget=400, pop_size=40).params == BPGAParams(pop_size=40)
    assert search_config("qiea", window_moves=0) == SearchConfig(params=QIEAParams(window_moves=0))
    with pytest.raises(ConfigError, match=r"^<cli>: unknown algorithm 'sa'; choose one of qiea, bpga, ga$"):
        search_config("sa", where="<cli>")
    with pytest.raises(ConfigError, match=r"ga has no parameter 'islands' \(it has: pop_size, "):
        search_config("ga", islands=2)
    with pytest.raises(ConfigError, match=r"budget: Input should be greater than or equal to 1"):
        search_config("ga", budget=0)
    with pytest.raises(PlannerError, match=r"window_moves 4 leaves no observed child"):
        search_config("qiea", window_moves=4)


def test_the_old_flat_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        SearchConfig(algorithm="ga", budget=100, islands=1, pop_size=8)
    assert SearchConfig(budget=100, params=GAParams(pop_size=8)).algorithm == "ga"


def test_configs_are_hashable_and_solvers_cached_per_configuration() -> None:
    a = SearchConfig(budget=300, params=GAParams(pop_size=12))
    b = SearchConfig.model_validate_json(a.model_dump_json())
    assert hash(a) == hash(b) and make_solver(a) is make_solver(b)
    assert make_solver(a) is not make_solver(a.with_params(pop_size=10))
    with pytest.raises(PlannerError, match=r"budget 10 is below one generation"):
        make_solver(a.model_copy(update={"budget": 10}))
