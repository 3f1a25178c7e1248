"""Scale-out configuration: presets for other cluster managers, environment overrides, doctor."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.config import load_pipeline_config
from ops.health import check_dask
from ops.runtime import DASK_WORKERS_ENV, DaskConfig, make_task_runner
from rlhf_core.errors import ConfigError

PRESETS = Path(__file__).resolve().parents[2] / "ops" / "presets"


@pytest.mark.parametrize(("preset", "cluster", "package"), [
    ("kubernetes.yaml", "dask_kubernetes.operator.KubeCluster", "dask-kubernetes"),
    ("slurm.yaml", "dask_jobqueue.SLURMCluster", "dask-jobqueue"),
])
def test_cluster_presets_load_and_name_their_package(preset: str, cluster: str, package: str) -> None:
    config = load_pipeline_config(PRESETS / preset)
    assert config.dask.cluster_class == cluster
    assert config.dask.adapt_maximum and config.dask.adapt_maximum > (config.dask.adapt_minimum or 0)
    try:
        runner = make_task_runner(config.dask)
    except ConfigError as exc:  # the optional package is not installed here
        assert cluster in str(exc) and "install" in str(exc)
        check = check_dask(config.dask)
        assert not check.ok and check.fix.startswith(f"pip install {package}")
    else:
        assert runner.cluster_kwargs == config.dask.cluster_kwargs
        assert runner.adapt_kwargs == {"minimum": config.dask.adapt_minimum,
                                       "maximum": config.dask.adapt_maximum}


def test_cluster_class_builds_the_named_manager_with_its_kwargs() -> None:
    config = DaskConfig(cluster_class="distributed.LocalCluster",
                        cluster_kwargs={"n_workers": 3, "processes": False}, adapt_maximum=5)
    runner = make_task_runner(config)
    assert runner.cluster_class == "distributed.LocalCluster"
    assert runner.cluster_kwargs == {"n_workers": 3, "processes": False}
    assert runner.adapt_kwargs == {"minimum": 1, "maximum": 5}
    assert check_dask(config).ok


def test_address_wins_over_cluster_class(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RLHF_WIZARD_DASK_ADDRESS", "tcp://10.0.0.5:8786")
    runner = make_task_runner(DaskConfig(cluster_class="dask_jobqueue.SLURMCluster"))
    assert runner.address == "tcp://10.0.0.5:8786"


def test_workers_from_environment_unless_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DASK_WORKERS_ENV, "6")
    assert DaskConfig().n_workers == 6
    assert DaskConfig(n_workers=3).n_workers == 3
    assert make_task_runner(DaskConfig()).cluster_kwargs["n_workers"] == 6
    monkeypatch.setenv(DASK_WORKERS_ENV, "0")
    with pytest.raises(ValueError, match="n_workers"):
        DaskConfig()


def test_bad_cluster_class_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="cluster_class"):
        DaskConfig(cluster_class="not a dotted path")
