"""Campaign planner: RCPSP model, PSPLIB reader, JAX schedule generation and three searches.

Typical use::

    from rlhf_core.planner import BPGAParams, SearchConfig, load_campaign, plan_project
    plan = plan_project(load_campaign("configs/campaigns/rlhf_campaign.yaml"),
                        SearchConfig(budget=5000, params=BPGAParams()))

Configuration (``params.py``, ``config.py``; no JAX)::

    QIEAParams / BPGAParams / GAParams    # one frozen model per algorithm, tagged by `algorithm`;
                                          # every default lives here
    params.generations(budget) -> int     # `step` calls that fit in the budget after `init`
    SearchConfig(budget, seed, params)    # common fields + the algorithm's params (tagged union)
    search_config(algorithm, budget=, seed=, **options) -> SearchConfig   # from flat options

One interface for every algorithm (``algorithm.py``; modules ``qiea``, ``bpga``, ``ga``), in the
ask/tell style of evosax, over a ``NamedTuple`` state of JAX arrays::

    init(inst, key, params, budget) -> state
    step(inst, state, params) -> state            # one generation
    best(state) -> SearchResult(starts, makespan, schedules)

The driver (``search.py``) runs any of them to the budget::

    solve(inst, config) -> SearchResult           # pure: jit it, vmap it over instances
    make_solver(config) -> jitted solve(inst)     # cached per configuration
    ALGORITHMS[name] -> Algorithm(name, init, step, best)

QIEA islands on separate workers (``islands.py``) and their storage in the lake (``state_io.py``)::

    start_island(inst, config, island) / advance_island(inst, config, state, epoch)
    migrate_islands(states) / best_of(states) / epoch_lengths(config) / island_count(config)
    save_state(lake, path, state) / load_island(lake, path) / *_stored_island(...)

Planning and publishing (``plan.py``, ``publish.py``, ``source.py``)::

    plan_project(project, config) -> Plan         # search, verify, describe
    publish_plan(plan, run_id, lake_root) -> summary   # `plans` table, Gantt PNG, Markdown
    plan_and_publish(PlanSource, config, run_id, lake_root) -> summary

Names are imported lazily, so ``import rlhf_core.planner.params`` does not import JAX.
"""

from __future__ import annotations

from rlhf_core.lazy import lazy_exports

_MODULES = {
    "algorithm": ("Algorithm", "SearchResult"),
    "campaign": ("load_campaign",),
    "config": ("AlgorithmParams", "SearchConfig", "search_config"),
    "cpm": ("critical_path", "lower_bound", "resource_bound"),
    "feasibility": ("check_schedule", "schedule_violations"),
    "gantt": ("gantt_png", "plan_markdown"),
    "instance": ("Instance", "padded_shape", "stack", "to_instance"),
    "islands": ("advance_island", "best_of", "epoch_lengths", "island_count", "island_key",
                "migrate_islands", "start_island"),
    "model": ("Activity", "Project", "ProjectArrays", "Resource"),
    "params": ("AlgorithmName", "BPGAParams", "GAParams", "PARAMS_CLASSES", "QIEAParams",
               "evaluation_cost"),
    "plan": ("PLANS_SCHEMA", "Plan", "plan_from_schedule", "plan_project"),
    "psplib": ("ReferenceValue", "instance_key", "read_sm", "read_solutions"),
    "publish": ("plan_and_publish", "publish_best_island", "publish_plan"),
    "search": ("ALGORITHMS", "algorithm_for", "make_solver", "run_steps", "solve"),
    "source": ("PlanSource",),
    "state_io": ("load_island", "save_state", "state_from_numpy", "state_to_numpy"),
}
_EXPORTS = {name: f"rlhf_core.planner.{module}" for module, names in _MODULES.items() for name in names}

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
