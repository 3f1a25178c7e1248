"""Task ``emit-run-rates``: a scored run's quarantine, veto and violation rates as Prefect events.

Every scored run emits ``rlhf.run.rates`` (payload: every rate and the thresholds). Each rate
above its alert threshold also emits ``rlhf.run.rate-exceeded``, its resource labelled
``rlhf.rate`` = ``quarantine`` or ``veto``: the event the automation ``rlhf-run-rate-exceeded``
(``deployments/automations/``) turns into a notification. Prefect's event triggers match event
names and labels, not numbers, so the comparison with the threshold is made here.

Thresholds are fractions in [0, 1] read from the environment of the process that runs the flow
(``rlhf-wizard serve``, a worker, ``rlhf-wizard run``): ``RLHF_WIZARD_ALERT_QUARANTINE_RATE``
(default 0.02) and ``RLHF_WIZARD_ALERT_VETO_RATE`` (default 0.25).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, NamedTuple

from prefect import task
from prefect.events import emit_event

from rlhf_core.errors import ConfigError

RATES_EVENT = "rlhf.run.rates"
EXCEEDED_EVENT = "rlhf.run.rate-exceeded"
QUARANTINE_ENV = "RLHF_WIZARD_ALERT_QUARANTINE_RATE"
VETO_ENV = "RLHF_WIZARD_ALERT_VETO_RATE"


class AlertThresholds(NamedTuple):
    """Rates above which a run emits :data:`EXCEEDED_EVENT`."""

    quarantine: float = 0.02
    veto: float = 0.25


def alert_thresholds(environ: Mapping[str, str] | None = None) -> AlertThresholds:
    """The thresholds from ``environ`` (``os.environ`` by default), defaults where unset.

    Raises:
        ConfigError: A variable is not a number in [0, 1].
    """
    environ = os.environ if environ is None else environ
    values = AlertThresholds()._asdict()
    for name, variable in (("quarantine", QUARANTINE_ENV), ("veto", VETO_ENV)):
        raw = environ.get(variable)
        if raw is None or raw == "":
            continue
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{variable}={raw!r}: expected a fraction in [0, 1], e.g. 0.05",
                              "<environment>")
        values[name] = value
    return AlertThresholds(**values)


def run_rates(row_counts: Mapping[str, int], stats: Mapping[str, Any]) -> dict[str, float]:
    """``{"quarantine": quarantined / rows_in, "veto": vetoed / scored}`` (each when defined)."""
    rates = {}
    if row_counts.get("rows_in"):
        rates["quarantine"] = row_counts.get("quarantined", 0) / row_counts["rows_in"]
    if stats.get("rows"):
        rates["veto"] = float(stats["veto_rate"])
    return rates


@task(name="emit-run-rates")
def emit_run_rates(run_id: str, flow: str, row_counts: Mapping[str, int],
                   stats: Mapping[str, Any]) -> dict[str, Any]:
    """Emit :data:`RATES_EVENT`, and :data:`EXCEEDED_EVENT` for each rate over its threshold.

    Args:
        run_id: The run.
        flow: The flow that ran it (resource label ``rlhf.flow``).
        row_counts: The run's counts (``rows_in``, ``quarantined``, …).
        stats: :func:`rlhf_core.scoring.stats.score_stats` of the run's scores.

    Returns:
        ``{"rates", "violations", "thresholds", "exceeded": [rate names]}``.

    Raises:
        ConfigError: A threshold variable is invalid.
    """
    thresholds = alert_thresholds()._asdict()
    rates = run_rates(row_counts, stats)
    violations = {k: float(v) for k, v in (stats.get("violations") or {}).items()}
    resource = {"prefect.resource.id": f"rlhf.run.{run_id}", "prefect.resource.name": run_id,
                "rlhf.flow": flow}
    emit_event(RATES_EVENT, resource=resource, payload={
        "run_id": run_id, "rates": rates, "violations": violations, "thresholds": thresholds})
    exceeded = [name for name, rate in rates.items() if rate > thresholds[name]]
    for name in exceeded:
        emit_event(EXCEEDED_EVENT, resource={**resource, "rlhf.rate": name}, payload={
            "run_id": run_id, "rate": rates[name], "threshold": thresholds[name]})
    return {"rates": rates, "violations": violations, "thresholds": thresholds,
            "exceeded": exceeded}
