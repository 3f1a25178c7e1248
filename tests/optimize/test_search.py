"""ES (SNES), simulated annealing and the hybrid on problems with known optima."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rlhf_core.optimize import (
    SNES,
    hard_constraint,
    lexicographic,
    make_annealing_search,
    make_es_search,
    make_hybrid_search,
    make_pareto_evaluator,
    max_min,
    simplex_lattice,
    soft_max_min,
)


def _staircase(x: jax.Array) -> jax.Array:
    """Piecewise constant, maximum 0 on the box |x_i − 3| < 0.25: zero gradient everywhere."""
    return -jnp.sum(jnp.floor(jnp.abs(x - 3.0) * 4.0))


def test_snes_ask_tell_contract() -> None:
    es = SNES(popsize=8, dim=3)
    state = es.init(jnp.zeros(3), 1.0)
    x = es.ask(jax.random.key(0), state)
    assert x.shape == (8, 3)
    np.testing.assert_allclose(np.asarray(x[:4] + x[4:]), 0.0, atol=1e-6)  # mirrored
    state = es.tell(x, -jnp.sum(x**2, axis=1), state)
    assert int(state.generation) == 1 and float(state.best_fitness) <= 0


def test_es_solves_shifted_sphere() -> None:
    target = jnp.arange(5, dtype=jnp.float32) / 2
    res = make_es_search(lambda x: -jnp.sum((x - target) ** 2), dim=5, popsize=16, generations=300)(
        jax.random.key(0), jnp.zeros(5))
    np.testing.assert_allclose(np.asarray(res.best_x), np.asarray(target), atol=1e-2)


def test_gradient_stalls_where_es_and_annealing_succeed() -> None:
    x0 = jnp.zeros(3)
    # Gradient ascent: zero gradient, never moves.
    opt = optax.adam(0.1)
    x, state = x0, opt.init(x0)
    grad = jax.jit(jax.grad(lambda v: -_staircase(v)))
    for _ in range(20):
        g = grad(x)
        updates, state = opt.update(g, state)
        x = optax.apply_updates(x, updates)
    assert float(_staircase(x)) == float(_staircase(x0)) == -36.0
    es = make_es_search(_staircase, dim=3, popsize=16, generations=100, sigma=2.0)(jax.random.key(1), x0)
    assert float(es.best_fitness) == 0.0
    sa = make_annealing_search(_staircase, steps=800, chains=4, t_start=5.0, step_size=2.0)(
        jax.random.key(2), x0)
    assert float(sa.best_fitness) == 0.0
    assert np.all(np.diff(np.asarray(sa.history)) >= 0)  # best-so-far never decreases


def test_hybrid_refines_beyond_a_short_es_run() -> None:
    a, b = jnp.array([1.0, 0.0]), jnp.array([-1.0, 0.0])

    def f(x: jax.Array) -> jax.Array:  # kink at the optimum x = 0, f = 0
        return jnp.minimum(1 - jnp.sum((x - a) ** 2), 1 - jnp.sum((x - b) ** 2))

    def smooth(x: jax.Array) -> jax.Array:
        v = jnp.stack([1 - jnp.sum((x - a) ** 2), 1 - jnp.sum((x - b) ** 2)])
        return -0.01 * jax.nn.logsumexp(-v / 0.01)

    x0 = jnp.array([0.7, 1.3])
    es = make_es_search(f, dim=2, popsize=8, generations=12, sigma=0.5)(jax.random.key(0), x0)
    hy = make_hybrid_search(f, smooth, dim=2, popsize=8, generations=12, refine_steps=400,
                            learning_rate=0.01)(jax.random.key(0), x0)
    assert float(hy.best_fitness) >= float(es.best_fitness)
    assert float(hy.best_fitness) > -1e-3 > float(es.best_fitness)


def _small_problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    utils = rng.random((12, 3, 3)).astype(np.float32)
    return jnp.asarray(utils), jnp.ones((12, 3), bool)


def _lattice_best(objective, n: int = 3, div: int = 30) -> float:
    w = simplex_lattice(n, div)
    theta = jnp.log(jnp.maximum(jnp.asarray(w), 1e-9))
    return float(jnp.max(jax.vmap(objective)(theta)))


def test_max_min_over_weights_reaches_lattice_optimum_and_has_zero_gradient() -> None:
    utils, allowed = _small_problem()
    f = max_min(utils, allowed)
    best = _lattice_best(f)
    g = jax.grad(f)(jnp.zeros(3))
    assert np.all(np.asarray(g) == 0.0)  # piecewise constant: gradient methods stall
    hy = make_hybrid_search(f, soft_max_min(utils, allowed), dim=3, popsize=16, generations=60,
                            sigma=1.5, refine_steps=50)(jax.random.key(0), jnp.zeros(3))
    assert float(hy.best_fitness) >= best - 1e-6
    es_part = np.asarray(hy.history)[:60]
    assert float(hy.best_fitness) >= es_part.max()  # refinement never loses the ES optimum


def test_lexicographic_and_hard_constraint_rules() -> None:
    utils, allowed = _small_problem(1)
    ev = make_pareto_evaluator()
    lex = lexicographic(utils, allowed, order=[2, 0, 1])
    res = make_annealing_search(lex, steps=600, chains=4, t_start=0.5, step_size=2.0)(jax.random.key(0), jnp.zeros(3))
    u = np.asarray(ev(jax.nn.softmax(res.best_x)[None], utils, allowed))[0]
    vertex = np.asarray(ev(jnp.eye(3, dtype=jnp.float32)[2:3], utils, allowed))[0]
    assert u[2] == pytest.approx(vertex[2])  # first priority at its maximum
    assert float(res.best_fitness) >= _lattice_best(lex) - 1e-6
    centre = np.asarray(ev(jnp.full((1, 3), 1 / 3, jnp.float32), utils, allowed))[0]
    floors = jnp.array([jnp.nan, centre[1] - 0.01, centre[2] - 0.01])
    hc = hard_constraint(utils, allowed, target=0, floors=floors)
    best = _lattice_best(hc)
    assert best > 0  # feasible on the lattice
    es = make_es_search(hc, dim=3, popsize=16, generations=80, sigma=1.5)(jax.random.key(3), jnp.zeros(3))
    u = np.asarray(ev(jax.nn.softmax(es.best_x)[None], utils, allowed))[0]
    assert u[1] >= float(floors[1]) - 1e-6 and u[2] >= float(floors[2]) - 1e-6
    assert float(es.best_fitness) >= best - 1e-6
