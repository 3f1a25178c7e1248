"""Search configuration and compiled solvers (QIEA with islands, bi-population GA, GA baseline).

``make_solver(config)`` returns a pure ``solve(inst, key) -> SearchResult`` that runs every island
inside one compiled program (islands are a ``vmap`` axis; migration between epochs); ``jax.vmap``
it again over a stack of padded instances to solve a whole benchmark family with one compilation.
The flow uses :func:`epoch_lengths`, ``init_island``, ``run_island`` and ``migrate`` directly to
fan islands out to workers with identical results.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
from pydantic import BaseModel, ConfigDict, Field

from rlhf_core.errors import PlannerError
from rlhf_core.planner.bpga import BPGAParams, init_bpga, run_bpga
from rlhf_core.planner.evaluate import DecodeName, evaluation_cost
from rlhf_core.planner.ga import GAParams, init_ga, run_ga
from rlhf_core.planner.instance import Instance
from rlhf_core.planner.qiea import IslandState, QIEAParams, init_island, migrate, run_island


class SearchConfig(BaseModel):
    """How to search: algorithm, schedule budget, population and island sizes, seed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    algorithm: Literal["qiea", "bpga", "ga"] = "qiea"
    budget: int = Field(5000, ge=1, description="schedules per instance (each SGS pass counts)")
    islands: int = Field(4, ge=1)
    pop_size: int = Field(4, ge=2, description="individuals per island (GA: islands * pop_size)")
    migration_interval: int = Field(5, ge=1, description="generations between migrations")
    bits: int = Field(8, ge=2, le=16)
    sgs: Literal["serial", "parallel"] = "serial"
    fbi: bool = True
    decode: DecodeName = Field("backward", description="read priorities right-to-left (2 schedules "
                               "per justified individual) or left-to-right (3)")
    window_moves: int = Field(2, ge=0, description="QIEA children per island that shuffle one window "
                              "of their attractor's order instead of observing the Q-bits")
    bpga_population: int = Field(80, ge=4, description="BPGA: schedules in each of its two populations "
                                 "(one half-generation generates this many)")
    bpga_restart_after: int = Field(15, ge=0, description="BPGA: generations without a better "
                                    "makespan in its populations before both are re-seeded from "
                                    "random priorities (the best so far is kept); 0 never restarts")
    parallel_share: float = Field(0.25, ge=0.0, le=1.0, description="QIEA and BPGA with the serial "
                                  "SGS: share of each generation's children whose pass (QIEA: "
                                  "backward pass) is the parallel SGS; the GA baseline stays serial")
    seed: int = 0

    def qiea_params(self) -> QIEAParams:
        """The static QIEA hyper-parameters."""
        if self.window_moves >= self.pop_size:
            raise PlannerError(
                f"window_moves {self.window_moves} leaves no observed child in an island of "
                f"{self.pop_size}; use fewer window moves than pop_size"
            )
        return QIEAParams(pop_size=self.pop_size, bits=self.bits, sgs=self.sgs, fbi=self.fbi,
                          decode=self.decode, window_moves=self.window_moves,
                          parallel_share=self.parallel_share)

    def ga_params(self) -> GAParams:
        """The static GA hyper-parameters (one population of the same total size)."""
        return GAParams(pop_size=self.pop_size * self.islands, sgs=self.sgs, fbi=self.fbi, decode=self.decode)

    def bpga_params(self) -> BPGAParams:
        """The static bi-population GA hyper-parameters (a tenth of the children are window moves)."""
        if self.sgs != "serial" or not self.fbi:
            raise PlannerError(
                f"bpga decodes every child with one pass that also justifies it, serial or (a share "
                f"parallel_share) parallel; sgs={self.sgs!r}, fbi={self.fbi} do not apply to it: keep "
                "the defaults sgs='serial', fbi=True, or use algorithm qiea/ga"
            )
        return BPGAParams(pop_size=self.bpga_population, window_moves=self.bpga_population // 10,
                          parallel_share=self.parallel_share, restart_after=self.bpga_restart_after)

    def generations(self) -> int:
        """Generations (including the initial one) that fit in the budget.

        For the bi-population GA a generation is a half-generation: one population of children
        decoded in one direction (``bpga_population`` schedules).

        Raises:
            PlannerError: the budget does not cover even the initial population.
        """
        if self.algorithm == "ga":
            per = evaluation_cost(self.islands * self.pop_size, self.fbi, self.decode)
        elif self.algorithm == "bpga":
            per = self.bpga_population
        else:
            per = self.islands * evaluation_cost(self.pop_size, self.fbi, self.decode)
        gens = self.budget // per
        if gens < 1:
            raise PlannerError(
                f"schedule budget {self.budget} is below one generation ({per} schedules); "
                "raise the budget or lower islands/pop_size (bpga: bpga_population)"
            )
        return gens


def epoch_lengths(config: SearchConfig) -> list[int]:
    """Generations per epoch; islands migrate after each epoch."""
    full, rem = divmod(config.generations(), config.migration_interval)
    return [config.migration_interval] * full + ([rem] if rem else [])


class SearchResult(NamedTuple):
    """Best schedule ``int32[N]``, its makespan and the schedules generated (``int32``)."""

    starts: jnp.ndarray
    makespan: jnp.ndarray
    schedules: jnp.ndarray


def island_key(seed: int, island: int) -> jnp.ndarray:
    """The PRNG key of one island (generations fold their index into it)."""
    return jax.random.fold_in(jax.random.PRNGKey(seed), island)


@functools.cache
def make_solver(config: SearchConfig) -> Callable[[Instance], SearchResult]:
    """Build the compiled solver for one configuration (cached per configuration).

    Args:
        config: The search configuration (its seed is used).

    Returns:
        A jitted ``solve(inst) -> SearchResult`` for a single padded instance; it is pure, so
        ``jax.jit(jax.vmap(solve))`` solves a stack of same-shape instances.
    """
    total = config.generations()
    n_isl = config.islands

    single = {"ga": (init_ga, run_ga, config.ga_params), "bpga": (init_bpga, run_bpga, config.bpga_params)}
    if config.algorithm in single:
        init, run, make_params = single[config.algorithm]
        params = make_params()

        def solve_one_population(inst: Instance) -> SearchResult:
            state = init(inst, island_key(config.seed, 0), params)
            state = run(inst, state, island_key(config.seed, 1), params, total - 1)
            return SearchResult(state.best_starts, state.best_ms, state.schedules)

        return jax.jit(solve_one_population)

    qp = config.qiea_params()
    interval = config.migration_interval

    def solve_qiea(inst: Instance) -> SearchResult:
        keys = jax.vmap(lambda i: island_key(config.seed, i))(jnp.arange(n_isl))
        states = jax.vmap(lambda _: init_island(inst, qp))(jnp.arange(n_isl))

        def generation(s: IslandState, _: None) -> tuple[IslandState, None]:
            s = jax.vmap(lambda st, k: run_island(inst, st, k, qp, 1, total))(s, keys)
            g = s.generation[0]
            due = (g % interval == 0) | (g == total)
            moved = migrate(s)
            return jax.tree.map(lambda a, b: jnp.where(due, a, b), moved, s), None

        states = jax.lax.scan(generation, states, None, length=total)[0]
        best = jnp.argmin(states.best_ms)
        return SearchResult(states.best_starts[best], states.best_ms[best], states.schedules.sum())

    return jax.jit(solve_qiea)
