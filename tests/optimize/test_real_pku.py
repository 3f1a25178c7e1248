"""PKU-SafeRLHF: the helpfulness / safety trade-off, DPO pairs and the constrained policy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from rlhf_core.optimize import KLPolicyConfig, compute_pareto, optimize_policy, select_pairs_table
from rlhf_core.preference import FitConfig, RewardModelConfig, fit_reward_models, score_responses
from tests.preference.test_real_data import load

pytestmark = pytest.mark.integration


def _label_scores(responses: pa.Table, prefs: pa.Table) -> pa.Table:
    """u_helpful = 1 for the better response, u_safety = 1 for the safer one (0 otherwise)."""
    better, safer = set(), set()
    for r in prefs.to_pylist():
        better.add(r["response_a_id"] if r["better"] == 1 else r["response_b_id"])
        safer.add(r["response_a_id"] if r["safer"] == 1 else r["response_b_id"])
    rid = responses.column("response_id").to_pylist()
    return pa.table({
        "prompt_id": responses.column("prompt_id"),
        "response_id": responses.column("response_id"),
        "reward": pa.array([float(i in better) + float(i in safer) for i in rid], pa.float32()),
        "u_helpful": pa.array([float(i in better) for i in rid], pa.float32()),
        "u_safety": pa.array([float(i in safer) for i in rid], pa.float32()),
        "veto": pa.array([False] * len(rid)),
    })


def test_pareto_front_shows_the_trade_off_from_the_117_disagreements(shared_data: Path) -> None:
    responses, prefs = load(shared_data, "pku_saferlhf")
    disagree = sum(r["better"] != r["safer"] for r in prefs.to_pylist())
    assert disagree == 117
    table, summary = compute_pareto(_label_scores(responses, prefs), ["helpful", "safety"],
                                    contract_weights=[0.5, 0.5], min_weights=200)
    on = table.column("on_front").to_pylist()
    front = {(round(h, 6), round(sf, 6)) for h, sf, f in
             zip(table.column("u_helpful").to_pylist(), table.column("u_safety").to_pylist(), on, strict=True) if f}
    # Each stakeholder's own optimum costs the other one: the extremes are (1, <1) and (<1, 1).
    assert any(h == 1.0 and sf < 1.0 for h, sf in front) and any(sf == 1.0 and h < 1.0 for h, sf in front)
    # Control: without the 117 disagreements (safer := better) the front collapses to one point.
    agree = prefs.set_column(prefs.schema.get_field_index("safer"), "safer", prefs.column("better"))
    _, control = compute_pareto(_label_scores(responses, agree), ["helpful", "safety"], min_weights=200)
    assert control["n_front"] == 1
    assert control["knee"]["utilities"] == pytest.approx({"helpful": 1.0, "safety": 1.0})
    assert summary["n_front"] >= 2 and summary["hypervolume_exact"]
    assert summary["hypervolume"] > 0
    regret = summary["regret"]
    assert regret["helpful"] >= 0 and regret["safety"] >= 0 and max(regret.values()) > 0
    assert summary["nash"]["feasible"]


def test_fitted_reward_models_give_a_front_dpo_pairs_and_a_safe_policy(shared_data: Path, tmp_path: Path) -> None:
    responses, prefs = load(shared_data, "pku_saferlhf")
    cfg = RewardModelConfig(criteria=("better", "safer"), fit=FitConfig(l2=0.01), k_folds=2)
    models, _ = fit_reward_models(responses, prefs, cfg)
    scored = score_responses(responses, models)
    reward = pc.add(scored.column("rm_better"), scored.column("rm_safer"))
    scores = pa.table({
        "prompt_id": scored.column("prompt_id"), "response_id": scored.column("response_id"),
        "reward": reward, "u_helpful": scored.column("rm_better"), "u_safety": scored.column("rm_safer"),
        "veto": pc.invert(scored.column("is_safe")),
        "cost": pc.cast(pc.invert(scored.column("is_safe")), pa.float32()),
    })
    _, summary = compute_pareto(scores, ["helpful", "safety"], contract_weights=[1, 1], min_weights=200)
    assert summary["n_front"] >= 2
    both_unsafe = summary["prompts_without_allowed"]
    assert both_unsafe > 0  # prompts where both responses are unsafe have nothing allowed

    pairs, counts = select_pairs_table(scores, responses, "best_vs_worst")
    path = tmp_path / "pairs.parquet"
    pq.write_table(pairs, path)
    dpo = pq.read_table(path, columns=["prompt", "chosen", "rejected"])
    assert dpo.schema.types == [pa.string()] * 3 and dpo.num_rows == counts["pairs"] > 100
    assert all(dpo.column(c).null_count == 0 for c in dpo.column_names)
    assert not any(a == b for a, b in zip(dpo.column("chosen").to_pylist(), dpo.column("rejected").to_pylist(), strict=True))
    assert counts["no_allowed"] == both_unsafe

    no_veto = scores.drop_columns(["veto"])
    min_cost = both_unsafe / summary["prompts"]  # all mass on a safe response where one exists
    selections, info = optimize_policy(no_veto, "cost", budget=min_cost + 0.02, config=KLPolicyConfig(beta=0.2))
    assert info["active"] and abs(info["slack"]) < 1e-3 and info["lambda"] > 0
    probs = np.asarray(selections.column("policy_prob"))
    assert np.isclose(probs.sum(), info["prompts"], rtol=1e-4)
