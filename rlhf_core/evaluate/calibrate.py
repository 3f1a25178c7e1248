"""Calibrate a contract's stakeholder weights to the annotators' labels of one criterion.

Model: the probability that the annotators prefer ``a`` over ``b`` is Bradley–Terry in the
contract's reward, ``P(a ≻ b) = σ(β · (R_w(a) − R_w(b)))``, where ``R_w`` is the contract's own
reward with weights ``w`` — the aggregation rule applied to the stored utilities, minus the
INVARIANT penalties, vetoed rows (and Nash rows outside the bargaining set) at the floor, exactly
as scoring computes it. Weights live on the simplex through a softmax (``w = softmax(θ)``); the
scale ``β = exp(ρ) > 0`` is fitted with them, since a reward's units are arbitrary.

Where ``R_w`` is differentiable in ``w`` (weighted sum; Nash bargaining, whose log form is linear
in ``w`` inside the bargaining set and constant outside it) the negative log-likelihood is
minimised with L-BFGS (optax, zoom line search). For max-min (a maximum over stakeholders: piecewise linear, with
flat regions where the gradient says nothing) the same objective is maximised with the project's
separable natural evolution strategy. Lexicographic and utilitarian contracts have no weights.

Held-out accuracy comes from prompt-grouped k-fold cross-validation (pairs of one prompt never
straddle train and test); the reported weights are refitted on every pair.

References:
    Bradley & Terry, "Rank analysis of incomplete block designs", Biometrika 39, 1952.
    Schaul et al., "High dimensions and heavy tails for natural evolution strategies", GECCO 2011.
    Liu & Nocedal, "On the limited memory BFGS method for large scale optimization", 1989.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rlhf_core.contract.bounds import aggregation_params
from rlhf_core.contract.program import ContractProgram
from rlhf_core.errors import ContractError, DataError
from rlhf_core.evaluate.run_data import RunPairs
from rlhf_core.optimize.es import make_es_search
from rlhf_core.preference.splits import grouped_kfold

GRADIENT_RULES = ("weighted_sum", "nash_bargaining")
SEARCH_RULES = ("max_min",)

__all__ = [
    "CalibrationConfig", "CalibrationData", "CalibrationResult", "calibrate_weights",
    "calibration_data",
]


@dataclass(frozen=True)
class CalibrationConfig:
    """Fitting settings.

    Attributes:
        steps: L-BFGS iterations (gradient rules) per fit, at most.
        tolerance: Stop once the gradient norm falls below this.
        generations: SNES generations (max-min) per fit.
        folds: Prompt-grouped folds for held-out accuracy (0: no cross-validation).
        seed: Fold and search seed.
    """

    steps: int = 200
    tolerance: float = 1e-5
    generations: int = 150
    folds: int = 5
    seed: int = 0


@dataclass(frozen=True)
class CalibrationData:
    """Strictly labelled pairs with everything the reward needs, per response side.

    Attributes:
        u_a: Utilities of response ``a``, float32 ``[N, S]``; ``u_b`` likewise.
        fixed_a: ``True`` where ``a``'s reward is the floor regardless of weights (vetoed), ``[N]``.
        penalty_a: INVARIANT penalty of ``a``, float32 ``[N]``; ``*_b`` likewise.
        label: ``1`` where ``a`` was preferred, ``0`` where ``b`` was, float32 ``[N]``.
        prompt_ids: Prompt of each pair (folds group by it), ``[N]``.
    """

    u_a: np.ndarray
    u_b: np.ndarray
    fixed_a: np.ndarray
    fixed_b: np.ndarray
    penalty_a: np.ndarray
    penalty_b: np.ndarray
    label: np.ndarray
    prompt_ids: np.ndarray


@dataclass(frozen=True)
class CalibrationResult:
    """Fitted weights and how well each set of weights explains held-out labels.

    Attributes:
        weights: Calibrated weights per stakeholder (sum 1), fitted on every pair.
        contract_weights: The contract's own (normalised) weights.
        scale: Fitted ``β``.
        method: ``lbfgs`` or ``snes``.
        heldout_accuracy: Mean accuracy on held-out folds with weights fitted on the other folds
            (None without cross-validation); ties of the reward count one half.
        contract_heldout_accuracy: The contract's weights on the same folds.
        log_likelihood: Mean log-likelihood of every pair at the calibrated weights.
        pairs: Strict pairs used.
    """

    weights: dict[str, float]
    contract_weights: dict[str, float]
    scale: float
    method: str
    heldout_accuracy: float | None
    contract_heldout_accuracy: float | None
    log_likelihood: float
    pairs: int


def _reward_fn(program: ContractProgram):
    """``reward(w, u, fixed, penalty)`` with traced weights ``w`` (the rules of
    :mod:`rlhf_core.contract.aggregation` take static weights; these are the same formulas)."""
    params = aggregation_params(program)
    floor = jnp.float32(params.floor)
    d = jnp.asarray(params.disagreement, jnp.float32)
    z = jnp.asarray(params.ideal, jnp.float32)

    def reward(w: jax.Array, u: jax.Array, fixed: jax.Array, penalty: jax.Array) -> jax.Array:
        outside = jnp.zeros(u.shape[:1], bool)
        if params.rule == "weighted_sum":
            base = u @ w
        elif params.rule == "nash_bargaining":
            gap = u - d
            outside = ~jnp.all(gap > 0, axis=1)
            base = jnp.log(jnp.where(outside[:, None], 1.0, gap)) @ w
        else:  # max_min
            base = -jnp.max((z - u) * w, axis=1)
        return jnp.where(fixed | outside, floor, base - penalty)

    return reward


def _nll(program: ContractProgram):
    reward = _reward_fn(program)

    def loss(x: jax.Array, d: dict[str, jax.Array], mask: jax.Array) -> jax.Array:
        w = jax.nn.softmax(x[:-1])
        margin = jnp.exp(x[-1]) * (reward(w, d["u_a"], d["fixed_a"], d["penalty_a"])
                                   - reward(w, d["u_b"], d["fixed_b"], d["penalty_b"]))
        per_pair = optax.sigmoid_binary_cross_entropy(margin, d["label"])
        return jnp.sum(per_pair * mask) / jnp.maximum(jnp.sum(mask), 1.0)

    return loss, reward


def _accuracy(reward, w: np.ndarray, d: dict[str, jax.Array], mask: np.ndarray) -> float:
    w = jnp.asarray(w, jnp.float32)
    diff = np.asarray(reward(w, d["u_a"], d["fixed_a"], d["penalty_a"])
                      - reward(w, d["u_b"], d["fixed_b"], d["penalty_b"]))[mask]
    label = np.asarray(d["label"])[mask] > 0.5
    return float(np.mean(np.where(diff == 0, 0.5, (diff > 0) == label)))


@functools.lru_cache(maxsize=16)
def _fitter(program: ContractProgram, cfg: CalibrationConfig):
    """``fit(x0, data, mask) -> x``, compiled once per program and settings; every fold reuses
    it (folds are masks over the same arrays, so the shapes never change)."""
    loss, _ = _nll(program)
    if program.rule not in GRADIENT_RULES:
        def search(x0: jax.Array, d: dict[str, jax.Array], mask: jax.Array) -> jax.Array:
            run = make_es_search(lambda x: -loss(x, d, mask), dim=int(x0.shape[0]), popsize=24,
                                 generations=cfg.generations, sigma=0.5)
            return run(jax.random.key(cfg.seed), x0).best_x

        return jax.jit(search)
    opt = optax.lbfgs()

    def fit(x0: jax.Array, d: dict[str, jax.Array], mask: jax.Array) -> jax.Array:
        objective = functools.partial(loss, d=d, mask=mask)
        value_and_grad = optax.value_and_grad_from_state(objective)

        def cond(carry: tuple) -> jax.Array:
            _, _, step, gnorm = carry
            return (step < cfg.steps) & (gnorm > cfg.tolerance)

        def body(carry: tuple) -> tuple:
            x, state, step, _ = carry
            value, grad = value_and_grad(x, state=state)
            updates, state = opt.update(grad, state, x, value=value, grad=grad,
                                        value_fn=objective)
            return optax.apply_updates(x, updates), state, step + 1, jnp.linalg.norm(grad)

        x, *_ = jax.lax.while_loop(cond, body, (x0, opt.init(x0), 0, jnp.float32(jnp.inf)))
        return x

    return jax.jit(fit)


def calibrate_weights(program: ContractProgram, data: CalibrationData,
                      config: CalibrationConfig | None = None) -> CalibrationResult:
    """Fit the stakeholder weights that best explain the labels (see the module docstring).

    Args:
        program: The contract (its rule, floor, Nash points and current weights).
        data: The strictly labelled pairs.
        config: Fitting settings.

    Returns:
        The calibrated weights, the held-out accuracy before and after, the fit's likelihood.

    Raises:
        ContractError: The rule has no weights to calibrate (lexicographic, utilitarian).
        DataError: Fewer than two labelled pairs, or fewer prompts than folds.
    """
    cfg = config or CalibrationConfig()
    if program.rule not in GRADIENT_RULES + SEARCH_RULES:
        raise ContractError(f"contract {program.name!r}: the {program.rule} rule has no weights to "
                            "calibrate; change the rule to weighted_sum, nash_bargaining or max_min")
    n = len(data.label)
    if n < 2:
        raise DataError(f"calibration needs at least 2 strictly labelled pairs, got {n}")
    names = [s.name for s in program.stakeholders]
    w0 = np.asarray([s.weight for s in program.stakeholders], np.float64)
    w0 = w0 / w0.sum()
    arrays = {"u_a": data.u_a.astype(np.float32), "u_b": data.u_b.astype(np.float32),
              "fixed_a": data.fixed_a.astype(bool), "fixed_b": data.fixed_b.astype(bool),
              "penalty_a": data.penalty_a.astype(np.float32),
              "penalty_b": data.penalty_b.astype(np.float32),
              "label": data.label.astype(np.float32), "prompt_ids": data.prompt_ids}
    loss, reward = _nll(program)
    data_j = {k: jnp.asarray(v) for k, v in arrays.items() if k != "prompt_ids"}
    fit = _fitter(program, cfg)
    spread = np.std(np.asarray(reward(jnp.asarray(w0, jnp.float32), data_j["u_a"],
                                      data_j["fixed_a"], data_j["penalty_a"])))
    x0 = jnp.asarray(np.append(np.log(np.maximum(w0, 1e-6)), -np.log(max(spread, 1e-3))),
                     jnp.float32)
    held, held_contract = None, None
    if cfg.folds:
        n_prompts = len(np.unique(data.prompt_ids))
        if n_prompts < cfg.folds:
            raise DataError(f"calibration with {cfg.folds} folds needs at least {cfg.folds} "
                            f"prompts with labelled pairs, got {n_prompts}; lower --folds")
        folds = grouped_kfold(data.prompt_ids, cfg.folds, cfg.seed)
        accs, base = [], []
        for k in range(cfg.folds):
            train = jnp.asarray(folds != k, jnp.float32)
            fitted = np.asarray(jax.nn.softmax(fit(x0, data_j, train)[:-1]))
            accs.append(_accuracy(reward, fitted, data_j, folds == k))
            base.append(_accuracy(reward, w0, data_j, folds == k))
        held, held_contract = float(np.mean(accs)), float(np.mean(base))
    everything = jnp.ones(n, jnp.float32)
    x = fit(x0, data_j, everything)
    weights = np.asarray(jax.nn.softmax(x[:-1]), np.float64)
    return CalibrationResult(
        weights=dict(zip(names, (float(v) for v in weights), strict=True)),
        contract_weights=dict(zip(names, (float(v) for v in w0), strict=True)),
        scale=float(jnp.exp(x[-1])),
        method="lbfgs" if program.rule in GRADIENT_RULES else "snes",
        heldout_accuracy=held, contract_heldout_accuracy=held_contract,
        log_likelihood=-float(loss(x, data_j, everything)), pairs=n,
    )


def calibration_data(pairs: RunPairs, program: ContractProgram, criterion: str) -> CalibrationData:
    """The strictly labelled pairs of ``criterion`` in a run, with both sides' utilities.

    Raises:
        DataError: The run has no such criterion, or its scores lack a stakeholder's utility.
    """
    if criterion not in pairs.criteria:
        raise DataError(f"run {pairs.run_id} has no preference criterion {criterion}; its "
                        f"criteria: {', '.join(pairs.criteria)}")
    missing = [s.name for s in program.stakeholders
               if f"u_{s.name}" not in pairs.scores.schema.names]
    if missing:
        raise DataError(f"run {pairs.run_id} was scored without stakeholders {', '.join(missing)}; "
                        "calibrate with the contract the run was scored with")
    label = pairs.label(criterion)
    strict = (label == 1) | (label == -1)
    a, b = pairs.row_a[strict], pairs.row_b[strict]
    u = np.stack([pairs.column(f"u_{s.name}") for s in program.stakeholders], axis=1)
    veto = pairs.column("veto") > 0
    penalty = pairs.column("penalty")
    return CalibrationData(u_a=u[a], u_b=u[b], fixed_a=veto[a], fixed_b=veto[b],
                           penalty_a=penalty[a], penalty_b=penalty[b],
                           label=(label[strict] > 0).astype(np.float32),
                           prompt_ids=pairs.prompt_group[strict])
