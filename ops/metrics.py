"""Prometheus metrics of the platform, read from the lake when Prometheus scrapes.

Runs under ``rlhf-wizard serve`` execute in subprocesses and their shards on Dask workers, so
the process that serves the metrics never sees their work happen. Every run leaves its traces in
the lake instead: its record in the ``runs`` table (flow, status, times, row counts), its output
partitions (whose files carry the time they were written) and its audit entries.
:class:`LakeCollector` turns those into metrics at scrape time, so the same exporter serves
``serve`` and a single ``rlhf-wizard run --metrics-port``. What only a running process knows,
the remote scorer's circuit breakers, is read live from this process.

Metrics (``flow`` is the flow that recorded the run, e.g. ``contract-pipeline``; "last run" is
the flow's most recently started completed run):

- ``rlhf_runs{flow,status}``: run records by status (running, completed, failed, cancelled).
- ``rlhf_run_rows_total{flow,count}``: row counts of finished runs summed over the lake's runs
  (``count``: rows_in, accepted, quarantined, scored, pairs, …).
- ``rlhf_last_run_end_timestamp_seconds{flow,status}``: when the flow's latest run with that
  end status ended (alert on ``time() - …{status="completed"}``).
- ``rlhf_last_run_info{flow,run_id}``, ``rlhf_last_run_rows{flow,count}``,
  ``rlhf_last_run_duration_seconds{flow}``, ``rlhf_last_run_quarantine_rate{flow}``
  (quarantined / rows_in).
- ``rlhf_last_run_veto_rate{flow}``, ``rlhf_last_run_violation_rate{flow,clause}``: read from
  the run's ``scores`` partition (once per run, then cached).
- ``rlhf_last_run_stage_seconds{flow,stage}``: time from the previous stage's output to this
  stage's output landing in the lake (see :data:`STAGES`); ``finish`` ends at the run record's
  end time, ``report`` at the report's audit entry.
- ``rlhf_last_run_scoring_rows_per_second{flow}``: scored rows / the ``score`` stage's seconds.
- ``rlhf_remote_breaker_state{endpoint,state}`` (1 for the current state) and
  ``rlhf_remote_breaker_opened_total{endpoint}``: this process's remote-scorer breakers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from rlhf_core.errors import AuditError, ConfigError, LakeError
from rlhf_core.lake.catalog import Table
from rlhf_core.lake.fs import is_local
from rlhf_core.lake.runs import END_STATUSES, STATUSES, RunRecord, list_run_records
from rlhf_core.lake.store import Lake
from rlhf_core.remote import breaker as breaker_registry
from rlhf_core.scoring.stats import score_stats
from rlhf_core.security.audit import AuditLog, audit_log_path

HOST_ENV = "RLHF_WIZARD_METRICS_HOST"
DEFAULT_HOST = "127.0.0.1"
BREAKER_STATES = ("closed", "open", "half_open")

logger = logging.getLogger(__name__)


class Stage(NamedTuple):
    """A pipeline stage and what marks its end in the lake.

    Attributes:
        name: The ``stage`` label.
        tables: Tables whose partition of the run the stage writes (latest file counts).
        audit: Audit kind the stage appends for the run (``contract_used``: details.run_id;
            others: subject == run id).
        run_end: The run record's end time marks it.
        after_end: It runs after the run record is closed (the first such entry counts).
    """

    name: str
    tables: tuple[str, ...] = ()
    audit: str | None = None
    run_end: bool = False
    after_end: bool = False


STAGES: tuple[Stage, ...] = (
    Stage("validate", audit="contract_used"),
    Stage("ingest", tables=(Table.QUARANTINE,)),  # written last by the ingest write path
    Stage("remote", tables=(Table.SCORE_QUARANTINE,)),
    Stage("fit", tables=(Table.REWARD_MODELS,)),
    Stage("score", tables=(Table.SCORES,)),
    Stage("optimize", tables=(Table.PARETO, Table.SELECTIONS, Table.PAIRS)),
    Stage("evaluate", tables=(Table.AGREEMENT, Table.DISAGREEMENTS)),
    Stage("finish", run_end=True),
    Stage("report", audit="report_written", after_end=True),
)
"""Stages in pipeline order; a run only has the marks of the stages it ran."""


def stage_seconds(marks: Mapping[str, float], started_at: float) -> dict[str, float]:
    """Seconds each stage took: its mark minus the previous present mark (the run's start first).

    Args:
        marks: ``{stage: epoch seconds}`` for the stages that ran (marks before the start are
            left-overs of an earlier run of the same id and must be dropped by the caller).
        started_at: The run's start (epoch seconds).

    Returns:
        ``{stage: seconds}`` in :data:`STAGES` order.
    """
    out, previous = {}, started_at
    for stage in STAGES:
        if stage.name in marks:
            out[stage.name] = max(0.0, marks[stage.name] - previous)
            previous = marks[stage.name]
    return out


@dataclass(frozen=True)
class RunFacts:
    """What the exporter derives from a completed run's traces in the lake."""

    stages: Mapping[str, float]
    veto_rate: float | None
    violations: Mapping[str, float]


class LakeCollector:
    """A Prometheus collector over one lake (``collect`` runs at every scrape).

    Args:
        lake: The lake; ``RLHF_WIZARD_HOME`` by default.
    """

    def __init__(self, lake: Lake | None = None) -> None:
        self.lake = lake or Lake.from_env()
        self._rates: dict[tuple[str, float], tuple[float | None, dict[str, float]]] = {}
        self._audit_stamp: tuple[int, int] | None = None
        self._audit_marks: dict[tuple[str, str], list[float]] = {}

    def collect(self) -> Iterator[Metric]:
        """Every metric of the module docstring, from the lake as it is now."""
        records = list_run_records(self.lake)
        yield from self._run_counts(records)
        yield from self._last_runs(records)
        yield from _breaker_metrics()

    def _run_counts(self, records: Sequence[RunRecord]) -> Iterator[Metric]:
        runs = GaugeMetricFamily("rlhf_runs", "Run records in the lake by flow and status.",
                                 labels=["flow", "status"])
        rows = CounterMetricFamily("rlhf_run_rows", "Row counts of finished runs, summed over "
                                   "the runs recorded in the lake.", labels=["flow", "count"])
        by_status: dict[tuple[str, str], int] = {}
        totals: dict[tuple[str, str], int] = {}
        for record in records:
            by_status[(record.flow, record.status)] = by_status.get((record.flow, record.status), 0) + 1
            if record.status in END_STATUSES:
                for name, value in record.row_counts.items():
                    totals[(record.flow, name)] = totals.get((record.flow, name), 0) + int(value)
        for flow in sorted({r.flow for r in records}):
            for status in STATUSES:
                runs.add_metric([flow, status], by_status.get((flow, status), 0))
        for (flow, name), value in sorted(totals.items()):
            rows.add_metric([flow, name], value)
        yield runs
        yield rows

    def _last_runs(self, records: Sequence[RunRecord]) -> Iterator[Metric]:
        end = GaugeMetricFamily("rlhf_last_run_end_timestamp_seconds", "End time of the flow's "
                                "latest run with this end status.", labels=["flow", "status"])
        info = GaugeMetricFamily("rlhf_last_run_info", "The flow's latest completed run.",
                                 labels=["flow", "run_id"])
        rows = GaugeMetricFamily("rlhf_last_run_rows", "Row counts of the flow's latest "
                                 "completed run.", labels=["flow", "count"])
        duration = GaugeMetricFamily("rlhf_last_run_duration_seconds", "Wall time of the flow's "
                                     "latest completed run.", labels=["flow"])
        quarantine = GaugeMetricFamily("rlhf_last_run_quarantine_rate", "Quarantined / input "
                                       "rows of the flow's latest completed run.", labels=["flow"])
        veto = GaugeMetricFamily("rlhf_last_run_veto_rate", "Vetoed fraction of the scored rows "
                                 "of the flow's latest completed run.", labels=["flow"])
        violation = GaugeMetricFamily("rlhf_last_run_violation_rate", "Violating fraction of the "
                                      "scored rows per contract clause.", labels=["flow", "clause"])
        stages = GaugeMetricFamily("rlhf_last_run_stage_seconds", "Seconds from the previous "
                                   "stage's output to this stage's output landing in the lake.",
                                   labels=["flow", "stage"])
        speed = GaugeMetricFamily("rlhf_last_run_scoring_rows_per_second", "Scored rows per "
                                  "second of the score stage.", labels=["flow"])
        latest_end: dict[tuple[str, str], float] = {}
        latest_completed: dict[str, RunRecord] = {}
        for record in records:  # oldest start first: later records win
            if record.status in END_STATUSES and record.ended_at is not None:
                latest_end[(record.flow, record.status)] = record.ended_at.timestamp()
            if record.status == "completed" and record.ended_at is not None:
                latest_completed[record.flow] = record
        for (flow, status), value in sorted(latest_end.items()):
            end.add_metric([flow, status], value)
        for flow, record in sorted(latest_completed.items()):
            info.add_metric([flow, record.run_id], 1)
            for name, value in sorted(record.row_counts.items()):
                rows.add_metric([flow, name], value)
            duration.add_metric([flow], record.ended_at.timestamp() - record.started_at.timestamp())
            rows_in = record.row_counts.get("rows_in")
            if rows_in:
                quarantine.add_metric([flow], record.row_counts.get("quarantined", 0) / rows_in)
            facts = self._run_facts(record)
            if facts.veto_rate is not None:
                veto.add_metric([flow], facts.veto_rate)
            for clause, rate in sorted(facts.violations.items()):
                violation.add_metric([flow, clause], rate)
            for stage, seconds in facts.stages.items():
                stages.add_metric([flow, stage], seconds)
            scored, score_s = record.row_counts.get("scored"), facts.stages.get("score")
            if scored and score_s:
                speed.add_metric([flow], scored / score_s)
        yield from (end, info, rows, duration, quarantine, veto, violation, stages, speed)

    def _run_facts(self, record: RunRecord) -> RunFacts:
        """Stage times (every scrape: the report lands after the run ends) and score rates (once
        per run: they read the whole ``scores`` partition)."""
        started, ended = record.started_at.timestamp(), record.ended_at.timestamp()
        marks: dict[str, float] = {}
        for stage in STAGES:
            if stage.run_end:
                marks[stage.name] = ended
            elif stage.tables:
                landed = [t for table in stage.tables for t in self._landed(table, record.run_id)]
                # A partition older than the run is an earlier run's with the same id.
                landed = [t for t in landed if started <= t <= ended]
                if landed:
                    marks[stage.name] = max(landed)
            elif stage.audit:
                found = self._audit_times(stage.audit, record.run_id)
                if stage.after_end and any(t >= ended for t in found):
                    marks[stage.name] = min(t for t in found if t >= ended)
                elif not stage.after_end and any(started <= t <= ended for t in found):
                    marks[stage.name] = max(t for t in found if started <= t <= ended)
        key = (record.run_id, ended)
        if "score" in marks and key not in self._rates:
            self._rates[key] = self._score_rates(record.run_id)
        veto, violations = self._rates.get(key, (None, {}))
        return RunFacts(stage_seconds(marks, started), veto, violations)

    def _score_rates(self, run_id: str) -> tuple[float | None, dict[str, float]]:
        try:
            stats = score_stats([self.lake.uri(p)
                                 for p in self.lake.part_paths(Table.SCORES, run_id)])
        except LakeError as exc:
            logger.warning("metrics: no veto/violation rates for run %s (%s)", run_id, exc)
            return None, {}
        return float(stats["veto_rate"]), {k: float(v) for k, v in stats["violations"].items()}

    def _landed(self, table: str, run_id: str) -> list[float]:
        paths = self.lake.part_paths(table, run_id)
        infos = self.lake.fs.get_file_info(paths) if paths else []
        return [info.mtime.timestamp() for info in infos if info.mtime is not None]

    def _audit_times(self, kind: str, run_id: str) -> list[float]:
        if not is_local(self.lake.fs):
            return []
        path = Path(audit_log_path(self.lake))
        try:
            stat = path.stat()
        except FileNotFoundError:
            return []
        stamp = (stat.st_size, stat.st_mtime_ns)
        if stamp != self._audit_stamp:
            marks: dict[tuple[str, str], list[float]] = {}
            try:
                entries = AuditLog(self.lake).entries()
            except AuditError as exc:
                logger.warning("metrics: audit log unreadable, no validate/report stages (%s)", exc)
                entries = []
            for entry in entries:
                subject = entry.details.get("run_id") if entry.kind == "contract_used" else entry.subject
                when = datetime.fromisoformat(entry.timestamp.replace("Z", "+00:00")).timestamp()
                marks.setdefault((entry.kind, str(subject)), []).append(when)
            self._audit_marks, self._audit_stamp = marks, stamp
        return self._audit_marks.get((kind, run_id), [])


def _breaker_metrics() -> Iterator[Metric]:
    """This process's circuit breakers (one per remote endpoint and policy)."""
    state = GaugeMetricFamily("rlhf_remote_breaker_state", "Remote scorer circuit breaker "
                              "state (1: current).", labels=["endpoint", "state"])
    opened = CounterMetricFamily("rlhf_remote_breaker_opened", "Times the breaker opened.",
                                 labels=["endpoint"])
    for breaker in breaker_registry.shared_breakers():
        current = breaker.state
        for name in BREAKER_STATES:
            state.add_metric([breaker.name, name], 1 if current == name else 0)
        opened.add_metric([breaker.name], breaker.times_opened)
    yield state
    yield opened


def metrics_registry(lake: Lake | None = None) -> CollectorRegistry:
    """A registry holding one :class:`LakeCollector` (and nothing of the process-global one)."""
    registry = CollectorRegistry()
    registry.register(LakeCollector(lake))
    return registry


@contextmanager
def serve_metrics(port: int | None, host: str | None = None,
                  lake: Lake | None = None) -> Iterator[str | None]:
    """Serve ``/metrics`` on ``host:port`` in a daemon thread for the duration of the block.

    Args:
        port: TCP port; None serves nothing (the block runs unchanged).
        host: Address to bind; ``$RLHF_WIZARD_METRICS_HOST`` or 127.0.0.1 by default (use
            0.0.0.0 for a Prometheus on another host).
        lake: The lake to report on; ``RLHF_WIZARD_HOME`` by default.

    Yields:
        The metrics URL, or None when ``port`` is None.

    Raises:
        ConfigError: The address cannot be bound (in use, or not an address of this host).
    """
    if port is None:
        yield None
        return
    host = host or os.environ.get(HOST_ENV) or DEFAULT_HOST
    try:
        server, thread = start_http_server(port, addr=host, registry=metrics_registry(lake))
    except OSError as exc:
        raise ConfigError(f"cannot serve metrics on {host}:{port} ({exc.strerror or exc}); pick a "
                          f"free port with --metrics-port or set {HOST_ENV}", "<command line>") from exc
    try:
        yield f"http://{host}:{server.server_port}/metrics"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
