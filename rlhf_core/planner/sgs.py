"""Serial and parallel schedule-generation schemes (SGS) and forward-backward improvement, in JAX.

Each function builds ONE schedule from one priority vector (higher priority = scheduled earlier
among the eligible activities); ``jax.vmap`` them over a population. Every call of a scheme counts
as one generated schedule, as in the literature; :func:`forward_backward` costs two.

References:
    Kolisch, R. (1996). Serial and parallel resource-constrained project scheduling methods
    revisited: Theory and computation. EJOR 90(2), 320-333.
    Valls, V., Ballestin, F. & Quintanilla, S. (2005). Justification and RCPSP: A technique that
    pays. EJOR 165(2), 375-386.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rlhf_core.planner.instance import Instance, reverse


def _place(usage: jnp.ndarray, tgrid: jnp.ndarray, t: jnp.ndarray, d: jnp.ndarray, r: jnp.ndarray) -> jnp.ndarray:
    active = (tgrid >= t) & (tgrid < t + d)
    return usage + active[:, None].astype(usage.dtype) * r[None, :]


def serial_sgs(inst: Instance, prio: jnp.ndarray) -> jnp.ndarray:
    """Serial SGS: take the eligible activity of highest priority, start it as early as feasible.

    Args:
        inst: A single (unbatched) padded instance.
        prio: ``float32[N]`` priorities.

    Returns:
        ``int32[N]`` start times (always precedence- and resource-feasible when ``T`` is at least
        the sum of durations).
    """
    n = inst.dur.shape[0]
    t_len = inst.tgrid.shape[0]
    k = inst.cap.shape[0]
    tg = inst.tgrid
    pred_i = inst.pred.astype(jnp.int32)

    def step(_: int, carry: tuple) -> tuple:
        usage, starts, done, left, est = carry
        elig = (~done) & (left == 0)
        j = jnp.argmax(jnp.where(elig, prio, -jnp.inf))
        d, r = inst.dur[j], inst.req[j]
        # Earliest t >= est whose window [t, t + d) holds no overloaded period: the first
        # overloaded period at or after t (or T) must be >= t + d. No gather needed.
        over = jnp.any(usage > (inst.cap - r)[None, :], axis=1)
        next_bad = jax.lax.cummin(jnp.where(over, tg, t_len), reverse=True)
        ok = (next_bad >= tg + d) & (tg >= est[j])
        t = jnp.argmax(ok).astype(jnp.int32)
        usage = _place(usage, tg, t, d, r)
        left = left - pred_i[:, j]
        est = jnp.maximum(est, jnp.where(inst.pred[:, j], t + d, 0))
        return usage, starts.at[j].set(t), done.at[j].set(True), left, est

    init = (
        jnp.zeros((t_len, k), jnp.int32),
        jnp.zeros(n, jnp.int32),
        jnp.zeros(n, bool),
        pred_i.sum(axis=1),
        jnp.zeros(n, jnp.int32),
    )
    return jax.lax.fori_loop(0, n, step, init)[1]


def parallel_sgs(inst: Instance, prio: jnp.ndarray) -> jnp.ndarray:
    """Parallel SGS: at each decision time start the eligible activities that fit, by priority.

    Args:
        inst: A single (unbatched) padded instance.
        prio: ``float32[N]`` priorities.

    Returns:
        ``int32[N]`` start times.
    """
    n = inst.dur.shape[0]
    t_len = inst.tgrid.shape[0]
    k = inst.cap.shape[0]
    tg = inst.tgrid
    pred_i = inst.pred.astype(jnp.int32)
    big = jnp.int32(2**30)

    def step(_: int, carry: tuple) -> tuple:
        usage, starts, done, left, est, now = carry
        row = usage[jnp.minimum(now, t_len - 1)]
        fits = jnp.all(row[None, :] + inst.req <= inst.cap[None, :], axis=1) | (inst.dur == 0)
        cand = (~done) & (left == 0) & (est <= now) & fits
        any_cand = jnp.any(cand)
        j = jnp.argmax(jnp.where(cand, prio, -jnp.inf))
        d, r = inst.dur[j], inst.req[j]
        sched = any_cand
        usage = jnp.where(sched, _place(usage, tg, now, d, r), usage)
        left = jnp.where(sched, left - pred_i[:, j], left)
        est = jnp.where(sched, jnp.maximum(est, jnp.where(inst.pred[:, j], now + d, 0)), est)
        starts = jnp.where(sched, starts.at[j].set(now), starts)
        finish = jnp.where(done, starts + inst.dur, big)
        nxt = jnp.min(jnp.where(finish > now, finish, big))
        now_next = jnp.where(sched, now, jnp.where(nxt < big, nxt, now))
        done = jnp.where(sched, done.at[j].set(True), done)
        return usage, starts, done, left, est, now_next

    init = (
        jnp.zeros((t_len, k), jnp.int32),
        jnp.zeros(n, jnp.int32),
        jnp.zeros(n, bool),
        pred_i.sum(axis=1),
        jnp.zeros(n, jnp.int32),
        jnp.int32(0),
    )
    return jax.lax.fori_loop(0, 2 * n, step, init)[1]


def makespan(inst: Instance, starts: jnp.ndarray) -> jnp.ndarray:
    """``max_j (start_j + dur_j)`` as ``int32``."""
    return jnp.max(starts + inst.dur)


def backward_sgs(inst: Instance, prio: jnp.ndarray, scheme=serial_sgs) -> jnp.ndarray:
    """A right-justified schedule: ``scheme`` on the reversed network, mirrored back in time.

    Args:
        inst: A single padded instance.
        prio: ``float32[N]`` priorities; higher = placed first from the right (finishes later).
        scheme: :func:`serial_sgs` or :func:`parallel_sgs`.

    Returns:
        ``int32[N]`` start times, right-justified: the earliest activity starts at 0 and each
        activity starts as late as the order allows.
    """
    rev = scheme(reverse(inst), prio)
    return jnp.max(rev + inst.dur) - rev - inst.dur


def mixed_passes(
    inst: Instance, prio: jnp.ndarray, backward: bool, n_parallel: int = 0, scheme=serial_sgs,
) -> jnp.ndarray:
    """One pass per priority row (``float32[P, N]``): ``scheme``, but the parallel SGS for the last
    ``n_parallel`` rows (static). Backward passes build right-justified schedules.

    Each scheme runs ``vmap``ped over its own rows, so nothing is built twice: still one schedule
    per row.

    Returns:
        ``int32[P, N]`` start times.
    """
    def run(sch, rows: jnp.ndarray) -> jnp.ndarray:
        if backward:
            return jax.vmap(lambda q: backward_sgs(inst, q, sch))(rows)
        return jax.vmap(lambda q: sch(inst, q))(rows)

    if not n_parallel:
        return run(scheme, prio)
    split = prio.shape[0] - n_parallel
    return jnp.concatenate([run(scheme, prio[:split]), run(parallel_sgs, prio[split:])])


def forward_backward(inst: Instance, starts: jnp.ndarray) -> jnp.ndarray:
    """Forward-backward improvement (double justification); never increases the makespan.

    A backward serial pass on the reversed network schedules activities by latest finish time,
    then a forward serial pass by earliest start of the right-justified schedule. Costs two
    schedules.

    Args:
        inst: A single padded instance.
        starts: ``int32[N]`` a feasible schedule.

    Returns:
        ``int32[N]`` the improved schedule.
    """
    right = backward_sgs(inst, (starts + inst.dur).astype(jnp.float32))
    return serial_sgs(inst, -right.astype(jnp.float32))


def keys_from_starts(starts: jnp.ndarray) -> jnp.ndarray:
    """Random keys in ``[0, 1)`` that reproduce a schedule's start order (earlier = larger key).

    Args:
        starts: ``int32[N]``.

    Returns:
        ``float32[N]``; ties are broken by activity index, as the SGS does.
    """
    n = starts.shape[0]
    order = jnp.lexsort((jnp.arange(n), starts))
    rank = jnp.zeros(n, jnp.int32).at[order].set(jnp.arange(n, dtype=jnp.int32))
    return (n - rank).astype(jnp.float32) / (n + 1)
