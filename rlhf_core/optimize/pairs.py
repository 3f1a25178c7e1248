"""DPO pair selection on padded arrays (pure, jitted; the caller compresses with the mask).

Inputs per prompt ``p`` and candidate slot ``c``: ``reward [P, C]``, ``valid [P, C]`` (a real
candidate), ``vetoed [P, C]``, ``prompt_ok [P]`` (the prompt passes the contract's FORALL / EXISTS
clauses). Rules:

* a vetoed response is never *chosen*; it may be *rejected* (a useful negative);
* prompts failing a FORALL/EXISTS clause are excluded and counted;
* a pair needs ``reward[chosen] − reward[rejected] > margin`` (strictly; ``margin = 0`` excludes
  equal rewards).

Strategies: ``best_vs_worst`` (best allowed vs the worst other valid candidate),
``all_above_margin`` (every allowed × valid ordered pair over the margin),
``best_vs_random`` (best allowed vs a uniformly drawn other valid candidate over the margin,
seeded by ``key``).
"""

from __future__ import annotations

from functools import partial
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp

Strategy = Literal["best_vs_worst", "all_above_margin", "best_vs_random"]
STRATEGIES: tuple[str, ...] = ("best_vs_worst", "all_above_margin", "best_vs_random")


class PairSelection(NamedTuple):
    """Candidate pairs (flat, padded) and per-reason prompt counts.

    Attributes:
        prompt: int32 ``[K]`` prompt row.
        chosen: int32 ``[K]`` candidate slot of the chosen response.
        rejected: int32 ``[K]`` candidate slot of the rejected response.
        margin: float32 ``[K]`` reward gap.
        keep: bool ``[K]`` the pair is real.
        n_excluded_clause: Prompts excluded by a FORALL/EXISTS clause.
        n_no_allowed: Prompts (passing clauses) with every candidate vetoed or missing.
        n_no_pair: Prompts with an allowed candidate but no pair over the margin.
    """

    prompt: jax.Array
    chosen: jax.Array
    rejected: jax.Array
    margin: jax.Array
    keep: jax.Array
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
) -> PairSelection:
    """Select DPO pairs (see module docstring). ``key`` is required for ``best_vs_random``.

    Raises:
        ValueError: For an unknown strategy or a missing key.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"select_pairs: unknown strategy {strategy!r}; use one of {STRATEGIES}")
    if strategy == "best_vs_random" and key is None:
        raise ValueError("select_pairs: best_vs_random needs a PRNG key (seed from the config)")
    return _select(reward, valid, vetoed, prompt_ok, strategy, jnp.float32(margin),
                   key if key is not None else jax.random.key(0))


@partial(jax.jit, static_argnames="strategy")
def _select(reward, valid, vetoed, prompt_ok, strategy, margin, key) -> PairSelection:  # noqa: ANN001
    n_p, n_c = reward.shape
    valid = valid & prompt_ok[:, None]
    allowed = valid & ~vetoed
    has_allowed = jnp.any(allowed, axis=1)
    rows = jnp.arange(n_p, dtype=jnp.int32)
    if strategy == "all_above_margin":
        gap = reward[:, :, None] - reward[:, None, :]
        ok = allowed[:, :, None] & valid[:, None, :] & (gap > margin)
        ok &= ~jnp.eye(n_c, dtype=bool)[None]
        ci, ri = jnp.meshgrid(jnp.arange(n_c), jnp.arange(n_c), indexing="ij")
        prompt = jnp.broadcast_to(rows[:, None, None], ok.shape).reshape(-1)
        chosen = jnp.broadcast_to(ci[None], ok.shape).reshape(-1).astype(jnp.int32)
        rejected = jnp.broadcast_to(ri[None], ok.shape).reshape(-1).astype(jnp.int32)
        keep, gaps = ok.reshape(-1), gap.reshape(-1)
        has_pair = jnp.any(ok, axis=(1, 2))
    else:
        best = jnp.argmax(jnp.where(allowed, reward, -jnp.inf), axis=1).astype(jnp.int32)
        best_r = jnp.take_along_axis(reward, best[:, None], axis=1)[:, 0]
        other = valid & (jnp.arange(n_c)[None, :] != best[:, None]) & (best_r[:, None] - reward > margin)
        if strategy == "best_vs_worst":
            rej = jnp.argmin(jnp.where(other, reward, jnp.inf), axis=1)
        else:
            g = jax.random.gumbel(key, reward.shape)
            rej = jnp.argmax(jnp.where(other, g, -jnp.inf), axis=1)
        rejected = rej.astype(jnp.int32)
        has_pair = has_allowed & jnp.any(other, axis=1)
        prompt, chosen, keep = rows, best, has_pair
        gaps = best_r - jnp.take_along_axis(reward, rejected[:, None], axis=1)[:, 0]
    return PairSelection(
        prompt=prompt,
        chosen=chosen,
        rejected=rejected,
        margin=gaps.astype(jnp.float32),
        keep=keep,
        n_excluded_clause=jnp.sum(~prompt_ok),
        n_no_allowed=jnp.sum(prompt_ok & ~has_allowed),
        n_no_pair=jnp.sum(has_allowed & ~has_pair),
    )
