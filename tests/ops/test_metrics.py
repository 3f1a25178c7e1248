"""The Prometheus exporter (``ops.metrics``), scraped by a real Prometheus server.

The lake is written through the real code paths: generated data with a few blank responses goes
through the ingest write path (quality gate, ``quarantine``), the contract's own SQL scores it
into ``scores``, and the ``runs`` table records a failed, a completed and a running run. The
completed run's output files get known modification times, so its stage durations are exact.
Prometheus (Debian's ``prometheus``, started here on 127.0.0.1) scrapes the exporter every second;
its query API must return the values the test computes from the lake itself.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from ops.metrics import LakeCollector, serve_metrics, stage_seconds
from rlhf_core.contract import load_contract
from rlhf_core.errors import ConfigError
from rlhf_core.ingest.generator import generate_table
from rlhf_core.ingest.write import read_source, write_ingest
from rlhf_core.lake.catalog import Table
from rlhf_core.lake.runs import record_run_end, record_run_start
from rlhf_core.lake.store import Lake
from rlhf_core.remote import BreakerPolicy, reset_shared_breakers, shared_breaker
from rlhf_core.scoring import score_sql
from rlhf_core.scoring.schema import scores_schema
from tests.conftest import REPO_ROOT
from tests.deployments.processes import Service, free_port, wait_http_ok

INSTALL_HINT = "apt-get install -y --no-install-recommends prometheus"
FLOW = "contract-pipeline"
ENDPOINT = "http://reward-model.invalid:8080/score"
T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
INGEST_S, SCORE_S, FINISH_S = 20.0, 30.0, 10.0
BLANK = 8


def test_stage_seconds_follow_the_stages_that_ran() -> None:
    marks = {"finish": 160.0, "ingest": 120.0, "score": 150.0, "report": 161.5}
    assert stage_seconds(marks, 100.0) == {"ingest": 20.0, "score": 30.0, "finish": 10.0,
                                           "report": 1.5}
    assert list(stage_seconds(marks, 100.0)) == ["ingest", "score", "finish", "report"]
    assert stage_seconds({}, 100.0) == {}


def test_a_port_in_use_is_one_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
            with serve_metrics(port, lake=Lake(tmp_path)):
                pass
    with serve_metrics(None) as url:
        assert url is None


def _set_mtime(paths: list[str], when: datetime) -> None:
    for path in paths:
        os.utime(path, (when.timestamp(), when.timestamp()))


@pytest.fixture()
def lake(tmp_path: Path) -> tuple[Lake, dict]:
    """A lake with one completed scored run (r1), an older failed one and a running one."""
    lake = Lake(tmp_path / "lake")
    program = load_contract(REPO_ROOT / "configs" / "contracts" / "demo.yaml").program
    table = generate_table(400, 7)
    response = table["response"].to_pylist()
    response[:BLANK] = [" "] * BLANK
    table = table.set_column(table.schema.get_field_index("response"), "response", pa.array(response))
    source = tmp_path / "data" / "part-00000.parquet"
    source.parent.mkdir()
    pq.write_table(table, source)

    record_run_start(lake, "r0", FLOW, started_at=T0 - timedelta(days=1))
    record_run_end(lake, "r0", "failed", error="DataError: x", ended_at=T0 - timedelta(days=1, seconds=-50))
    record_run_start(lake, "r1", FLOW, started_at=T0)
    written = write_ingest(lake, "r1", read_source(source, run_id="r1"))
    con = duckdb.connect()
    con.register("responses", written.gated.responses)
    scores = score_sql(program, con, "responses").cast(scores_schema(program))
    lake.write_partition(Table.SCORES, "r1", scores, scores_schema(program))
    counts = {"rows_in": written.gated.rows_read, "accepted": written.gated.responses.num_rows,
              "quarantined": written.gated.quarantine.num_rows, "scored": scores.num_rows}
    record_run_end(lake, "r1", "completed", row_counts=counts,
                   ended_at=T0 + timedelta(seconds=INGEST_S + SCORE_S + FINISH_S))
    _set_mtime(lake.part_paths(Table.QUARANTINE, "r1"), T0 + timedelta(seconds=INGEST_S))
    _set_mtime(lake.part_paths(Table.SCORES, "r1"), T0 + timedelta(seconds=INGEST_S + SCORE_S))
    record_run_start(lake, "r2", FLOW)
    violations = {c.label: pc.mean(scores[f"v_{c.label}"].cast(pa.float64())).as_py()
                  for c in program.clauses}
    return lake, {"counts": counts, "violations": violations,
                  "veto": pc.mean(scores["veto"].cast(pa.float64())).as_py()}


@pytest.fixture()
def prometheus() -> str:
    exe = shutil.which("prometheus")
    if exe is None:
        pytest.skip(f"prometheus is not installed (CI installs it: `{INSTALL_HINT}`)")
    return exe


def _query(base: str, promql: str) -> list[dict]:
    reply = httpx.get(f"{base}/api/v1/query", params={"query": promql}, timeout=5).json()
    assert reply["status"] == "success", reply
    return reply["data"]["result"]


def _series(results: list[dict]) -> dict[tuple, float]:
    """``{(name, (label, value), …): value}`` without Prometheus' own job/instance labels."""
    out = {}
    for row in results:
        labels = {k: v for k, v in row["metric"].items() if k not in {"job", "instance"}}
        name = labels.pop("__name__", "")
        out[(name, *sorted(labels.items()))] = float(row["value"][1])
    return out


@pytest.mark.integration
def test_prometheus_scrapes_the_runs_metrics(lake, prometheus: str, tmp_path: Path) -> None:
    lake, expected = lake
    started = time.monotonic()
    reset_shared_breakers()
    breaker = shared_breaker(ENDPOINT, BreakerPolicy(failure_threshold=2, reset_timeout_s=600))
    breaker.record_failure("503")
    breaker.record_failure("503")  # opens
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    try:
        with serve_metrics(0, lake=lake) as url:
            target = url.removeprefix("http://").removesuffix("/metrics")
            config = tmp_path / "prometheus.yml"
            config.write_text("global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
                              f"scrape_configs:\n  - job_name: rlhf\n    static_configs:\n"
                              f"      - targets: ['{target}']\n")
            service = Service("prometheus", [prometheus, f"--config.file={config}",
                                             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                             f"--web.listen-address=127.0.0.1:{port}"],
                              {}, tmp_path / "prometheus.log")
            try:
                wait_http_ok(f"{base}/-/ready", 60, service)
                deadline = time.monotonic() + 30
                while not _query(base, "rlhf_last_run_veto_rate") and time.monotonic() < deadline:
                    time.sleep(0.5)
                got = _series(_query(base, '{__name__=~"rlhf_.*"}'))
                age = _query(base, 'time() - rlhf_last_run_end_timestamp_seconds{status="completed"}')
            finally:
                survivors = service.stop()
        assert not survivors, f"prometheus left processes behind: {survivors}"
    finally:
        reset_shared_breakers()

    def value(name: str, **labels: str) -> float:
        key = (name, *sorted({"flow": FLOW, **labels}.items()))
        assert key in got, f"{key} not scraped; got {sorted(got)}"
        return got[key]

    counts = expected["counts"]
    assert counts["quarantined"] == BLANK and counts["rows_in"] == 400
    assert value("rlhf_runs", status="completed") == 1
    assert value("rlhf_runs", status="failed") == 1
    assert value("rlhf_runs", status="running") == 1
    assert value("rlhf_runs", status="cancelled") == 0
    assert value("rlhf_last_run_info", run_id="r1") == 1
    for name in ("rows_in", "accepted", "quarantined", "scored"):
        assert value("rlhf_last_run_rows", count=name) == counts[name]
        assert value("rlhf_run_rows_total", count=name) == counts[name]  # the failed run had none
    assert value("rlhf_last_run_quarantine_rate") == pytest.approx(BLANK / 400)
    assert value("rlhf_last_run_veto_rate") == pytest.approx(expected["veto"])
    assert 0 < expected["veto"] < 1
    for clause, rate in expected["violations"].items():
        assert value("rlhf_last_run_violation_rate", clause=clause) == pytest.approx(rate)
    assert value("rlhf_last_run_stage_seconds", stage="ingest") == pytest.approx(INGEST_S)
    assert value("rlhf_last_run_stage_seconds", stage="score") == pytest.approx(SCORE_S)
    assert value("rlhf_last_run_stage_seconds", stage="finish") == pytest.approx(FINISH_S)
    assert value("rlhf_last_run_scoring_rows_per_second") == pytest.approx(counts["scored"] / SCORE_S)
    assert value("rlhf_last_run_duration_seconds") == pytest.approx(INGEST_S + SCORE_S + FINISH_S)
    end = T0 - timedelta(days=1, seconds=-50)
    assert value("rlhf_last_run_end_timestamp_seconds", status="failed") == end.timestamp()
    assert len(age) == 1 and float(age[0]["value"][1]) > 0
    states = {s: got[("rlhf_remote_breaker_state", ("endpoint", ENDPOINT), ("state", s))]
              for s in ("closed", "open", "half_open")}
    assert states == {"closed": 0, "open": 1, "half_open": 0}
    assert got[("rlhf_remote_breaker_opened_total", ("endpoint", ENDPOINT))] == 1

    # A scores partition older than the run is an earlier run's: no score stage, no rates.
    _set_mtime(lake.part_paths(Table.SCORES, "r1"), T0 - timedelta(seconds=1))
    names = {m.name: m for m in LakeCollector(lake).collect()}
    stages = {s.labels["stage"]: s.value for s in names["rlhf_last_run_stage_seconds"].samples}
    assert stages == {"ingest": INGEST_S, "finish": SCORE_S + FINISH_S}
    assert names["rlhf_last_run_veto_rate"].samples == []
    print(f"\nprometheus scrape test: {time.monotonic() - started:.1f} s")
