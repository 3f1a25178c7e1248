"""DPO pair selection on padded arrays (pure, jitted; the caller compresses with the mask).

Inputs per prompt ``p`` and candidate slot ``c``: ``reward [P, C]``, ``valid [P, C]`` (a real
candidate), ``vetoed [P, C]``, ``prompt_ok [P]`` (the prompt passes the contract's FORALL / EXISTS
clauses). Rules:

* a vetoed response is never *chosen*; it may be *rejected* (a useful negative);
* prompts failing a FORALL/EXISTS clause are excluded and counted;
* a pair needs ``reward[chosen] − reward[rejected] > margin`` (strictly; ``margin = 0`` excludes
  equal rewards).

Strategies: ``best_vs_worst`` (best allowed vs the worst other valid candidate),
``all_above_margin`` / ``all_pairs`` (every allowed × valid ordered pair over the margin; the two
names differ only in the contract, where ``all_pairs`` is the one usually capped),
``best_vs_random`` (best allowed vs a uniformly drawn other valid candidate over the margin,
seeded by ``key``), ``adjacent`` (neighbours in reward order: each prompt's valid candidates
sorted by reward, highest first, ties in slot order, and the pair ``(k, k + 1)`` when ``k`` is
allowed), ``threshold`` (every allowed candidate with ``reward >= threshold`` against every valid
one below it).

Options: ``keep_ties`` adds *tie pairs*: two allowed candidates of equal reward (the lower slot
is "chosen"; margin 0, ``tie`` True). For ``best_vs_*`` a prompt gets a tie pair only when it has
no pair over the margin; ``threshold`` pairs never tie. ``max_per_prompt`` keeps at most that
many pairs per prompt, the largest margins first (equal margins in flat ``(chosen, rejected)``
slot order, so the cap is deterministic).
"""

from __future__ import annotations

import math
from functools import partial
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp

Strategy = Literal["best_vs_worst", "all_above_margin", "best_vs_random", "all_pairs", "adjacent",
                   "threshold"]
STRATEGIES: tuple[str, ...] = ("best_vs_worst", "all_above_margin", "best_vs_random", "all_pairs",
                               "adjacent", "threshold")
_MATRIX = ("all_above_margin", "all_pairs", "threshold")


class PairSelection(NamedTuple):
    """Candidate pairs (flat, padded) and per-reason prompt counts.

    Attributes:
        prompt: int32 ``[K]`` prompt row.
        chosen: int32 ``[K]`` candidate slot of the chosen response.
        rejected: int32 ``[K]`` candidate slot of the rejected response.
        margin: float32 ``[K]`` reward gap.
        keep: bool ``[K]`` the pair is real.
        tie: bool ``[K]`` the pair is a tie pair (equal rewards, kept by ``keep_ties``).
        n_excluded_clause: Prompts excluded by a FORALL/EXISTS clause.
        n_no_allowed: Prompts (passing clauses) with every candidate vetoed or missing.
        n_no_pair: Prompts with an allowed candidate but no pair over the margin.
    """

    prompt: jax.Array
    chosen: jax.Array
    rejected: jax.Array
    margin: jax.Array
    keep: jax.Array
    tie: jax.Array
    n_excluded_clause: jax.Array
    n_no_allowed: jax.Array
    n_no_pair: jax.Array


def select_pairs(
    reward: jax.Array,
    valid: jax.Array,
    vetoed: jax.Array,
    prompt_ok: jax.Array,
    strategy: Strategy,
    margin: float = 0.0,
    key: jax.Array | None = None,
    *,
    keep_ties: bool = False,
    max_per_prompt: int | None = None,
    threshold: float | None = None,
) -> PairSelection:
    """Select DPO pairs (see module docstring).

    Args:
        reward: float32 ``[P, C]``.
        valid: bool ``[P, C]``.
        vetoed: bool ``[P, C]``.
        prompt_ok: bool ``[P]``.
        strategy: One of :data:`STRATEGIES`.
        margin: Minimum reward gap (strict).
        key: PRNG key, required for ``best_vs_random``.
        keep_ties: Add tie pairs of equal-reward allowed candidates.
        max_per_prompt: Cap of pairs per prompt (largest margins kept); None: no cap.
        threshold: The reward threshold, required for ``threshold``.

    Raises:
        ValueError: For an unknown strategy, a missing key or threshold, or a cap below 1.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"select_pairs: unknown strategy {strategy!r}; use one of {STRATEGIES}")
    if strategy == "best_vs_random" and key is None:
        raise ValueError("select_pairs: best_vs_random needs a PRNG key (seed from the config)")
    if strategy == "threshold" and threshold is None:
        raise ValueError("select_pairs: threshold needs a reward threshold")
    if max_per_prompt is not None and max_per_prompt < 1:
        raise ValueError(f"select_pairs: max_per_prompt must be >= 1, got {max_per_prompt}")
    n_c = reward.shape[1]
    cap = n_c * n_c if max_per_prompt is None else min(int(max_per_prompt), n_c * n_c)
    return _select(reward, valid, vetoed, prompt_ok, strategy, bool(keep_ties), jnp.float32(margin),
                   key if key is not None else jax.random.key(0), jnp.int32(cap),
                   jnp.float32(0.0 if threshold is None else threshold))


def _cap(keep: jax.Array, gap: jax.Array, cap: jax.Array) -> jax.Array:
    """``keep [P, M]`` limited to the ``cap`` largest gaps per row (stable: first slots win)."""
    order = jnp.argsort(jnp.where(keep, -gap, jnp.inf), axis=1, stable=True)
    rank = jnp.argsort(order, axis=1, stable=True)
    return keep & (rank < cap)


def _matrix(reward, valid, allowed, strategy, keep_ties, margin, threshold):  # noqa: ANN001, ANN202
    """``(chosen slot, rejected slot, gap, ok, tie)``, each ``[P, C, C]``."""
    n_p, n_c = reward.shape
    gap = reward[:, :, None] - reward[:, None, :]
    distinct = ~jnp.eye(n_c, dtype=bool)[None]
    ok = allowed[:, :, None] & valid[:, None, :] & distinct & (gap > margin)
    ci, ri = jnp.meshgrid(jnp.arange(n_c), jnp.arange(n_c), indexing="ij")
    if strategy == "threshold":
        ok &= (reward[:, :, None] >= threshold) & (reward[:, None, :] < threshold)
        tie = jnp.zeros_like(ok)
    else:
        tie = allowed[:, :, None] & allowed[:, None, :] & (gap == 0) & (ci < ri)[None] & keep_ties
    shape = ok.shape
    return (jnp.broadcast_to(ci[None], shape), jnp.broadcast_to(ri[None], shape), gap, ok | tie, tie)


def _adjacent(reward, valid, allowed, keep_ties, margin):  # noqa: ANN001, ANN202
    """``(chosen slot, rejected slot, gap, ok, tie)``, each ``[P, C - 1]``: reward-order neighbours."""
    order = jnp.argsort(jnp.where(valid, -reward, jnp.inf), axis=1, stable=True)
    hi, lo = order[:, :-1], order[:, 1:]

    def at(values: jax.Array, slots: jax.Array) -> jax.Array:
        return jnp.take_along_axis(values, slots, axis=1)

    gap = at(reward, hi) - at(reward, lo)
    both = at(valid, hi) & at(valid, lo)
    ok = both & at(allowed, hi) & (gap > margin)
    tie = both & at(allowed, hi) & at(allowed, lo) & (gap == 0) & keep_ties
    return hi, lo, gap, ok | tie, tie


@partial(jax.jit, static_argnames=("strategy", "keep_ties"))
def _select(reward, valid, vetoed, prompt_ok, strategy, keep_ties, margin, key, cap,  # noqa: ANN001
            threshold) -> PairSelection:
    n_p, n_c = reward.shape
    valid = valid & prompt_ok[:, None]
    allowed = valid & ~vetoed
    has_allowed = jnp.any(allowed, axis=1)
    rows = jnp.arange(n_p, dtype=jnp.int32)
    if strategy in _MATRIX or strategy == "adjacent":
        if strategy == "adjacent":
            chosen, rejected, gap, ok, tie = _adjacent(reward, valid, allowed, keep_ties, margin)
        else:
            chosen, rejected, gap, ok, tie = _matrix(reward, valid, allowed, strategy, keep_ties,
                                                     margin, threshold)
        flat = (n_p, math.prod(ok.shape[1:]))  # explicit: -1 is undefined with no prompts
        ok = _cap(ok.reshape(flat), gap.reshape(flat), cap)
        has_pair = jnp.any(ok, axis=1)
        prompt = jnp.broadcast_to(rows[:, None], ok.shape).reshape(-1)
        chosen, rejected = chosen.reshape(-1).astype(jnp.int32), rejected.reshape(-1).astype(jnp.int32)
        keep, gaps, tie = ok.reshape(-1), gap.reshape(-1), tie.reshape(-1) & ok.reshape(-1)
    else:
        slots = jnp.arange(n_c)[None, :]
        best = jnp.argmax(jnp.where(allowed, reward, -jnp.inf), axis=1).astype(jnp.int32)
        best_r = jnp.take_along_axis(reward, best[:, None], axis=1)[:, 0]
        other = valid & (slots != best[:, None]) & (best_r[:, None] - reward > margin)
        if strategy == "best_vs_worst":
            rej = jnp.argmin(jnp.where(other, reward, jnp.inf), axis=1)
        else:
            g = jax.random.gumbel(key, reward.shape)
            rej = jnp.argmax(jnp.where(other, g, -jnp.inf), axis=1)
        has_real = has_allowed & jnp.any(other, axis=1)
        partner = allowed & (slots != best[:, None]) & (reward == best_r[:, None])
        tie = has_allowed & ~has_real & jnp.any(partner, axis=1) & keep_ties
        rejected = jnp.where(has_real, rej, jnp.argmax(partner, axis=1)).astype(jnp.int32)
        has_pair = has_real | tie
        prompt, chosen, keep = rows, best, has_pair
        gaps = best_r - jnp.take_along_axis(reward, rejected[:, None], axis=1)[:, 0]
    return PairSelection(
        prompt=prompt,
        chosen=chosen,
        rejected=rejected,
        margin=gaps.astype(jnp.float32),
        keep=keep,
        tie=tie,
        n_excluded_clause=jnp.sum(~prompt_ok),
        n_no_allowed=jnp.sum(prompt_ok & ~has_allowed),
        n_no_pair=jnp.sum(has_allowed & ~has_pair),
    )
