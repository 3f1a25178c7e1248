"""The Markdown run summary's trade-off line: a front of one point is reported as such."""

from __future__ import annotations

from rlhf_core.report.summary import optimization_lines


def _head(pareto: dict) -> str:
    return optimization_lines({"pareto": pareto, "policy": {}, "pairs": {}})[2]


def test_a_front_of_several_points_counts_them() -> None:
    head = _head({"n_front": 7, "n_weights": 1035, "hypervolume": 0.25, "single_point": None})
    assert head == "Pareto front: 7 non-dominated points of 1035 weight vectors · hypervolume 0.25"


def test_a_single_stakeholder_front_is_one_point_and_says_why() -> None:
    head = _head({"n_front": 1, "n_weights": 1, "hypervolume": 0.875,
                  "single_point": "one stakeholder: nothing to trade off"})
    assert head == "Pareto front: 1 point (one stakeholder: nothing to trade off) · hypervolume 0.875"
    assert "non-dominated points" not in head


def test_a_summary_written_before_the_reason_existed_still_renders() -> None:
    head = _head({"n_front": 1, "n_weights": 1, "hypervolume": 0.5})  # an older pareto.json
    assert head.startswith("Pareto front: 1 non-dominated points of 1 weight vectors")


def test_the_report_reads_a_one_stakeholder_front(tmp_path) -> None:
    """Edge-shape regression: the report dropped a one-stakeholder front ("Pareto front not
    computed for this run") although the run computed it; it is shown as one point, no chart."""
    import json

    import numpy as np
    import pyarrow as pa

    from rlhf_core.lake.catalog import Table
    from rlhf_core.lake.store import Lake
    from rlhf_core.optimize import compute_pareto
    from rlhf_core.report.optional_tables import read_pareto

    scores = pa.table({"prompt_id": ["p0", "p0", "p1"], "response_id": ["r0", "r1", "r2"],
                       "reward": np.array([0.1, 0.5, 0.3], np.float32),
                       "u_only": np.array([0.1, 0.5, 0.3], np.float32), "veto": [False] * 3})
    table, summary = compute_pareto(scores, ["only"], contract_weights=[1.0])
    lake = Lake(tmp_path)
    lake.write_partition(Table.PARETO, "one", table, table.schema)
    lake.write_file_atomic("artifacts/one/pareto.json", json.dumps(summary).encode())
    view = read_pareto(lake, "one")
    assert view is not None and view.stakeholders == ("only",)
    assert view.summary["single_point"] == "one stakeholder: nothing to trade off"
    assert view.points.shape == (2, 1) and view.on_front.any()
