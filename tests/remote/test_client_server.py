"""The client against a real fault-injecting HTTP server in a subprocess (tests/remote/server.py)."""

from __future__ import annotations

import logging
import random
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from rlhf_core.errors import (
    CircuitOpenError,
    RemoteRetriesExhaustedError,
    RemoteScoringError,
)
from rlhf_core.remote import (
    BreakerPolicy,
    EndpointConfig,
    RemoteScorer,
    RetryPolicy,
    ScoreCache,
    score_table_remote,
    shared_breaker,
)
from tests.remote.server import ServerHandle, pair_key, true_score

pytestmark = pytest.mark.integration

FAST_RETRY = RetryPolicy(max_attempts=10, backoff_base_s=0.005, backoff_max_s=0.02)
GENERIC = {
    "path": "/generic",
    "request_template": {"model": "{{model}}", "batch": {"items": "{{items}}"}},
    "item_template": {"q": "{{prompt}}", "a": "{{response}}"},
    "response_path": "result.outputs[*].reward",
}


def make_table(n: int, tag: str = "p", poison: dict[int, str] | None = None) -> pa.Table:
    poison = poison or {}
    prompts = [poison.get(i, "") + f"{tag} prompt {i}" for i in range(n)]
    return pa.table({
        "response_id": [f"{tag}-{i}" for i in range(n)],
        "prompt": prompts,
        "response": [f"answer {i} " + "x" * (i % 7) for i in range(n)],
    })


def truth(table: pa.Table) -> list[float]:
    return [true_score(p, r) for p, r in zip(table["prompt"].to_pylist(), table["response"].to_pylist(),
                                             strict=True)]


def config(server: ServerHandle, **overrides: Any) -> EndpointConfig:
    settings: dict[str, Any] = {"url": server.url, "batch_size": 20, "max_concurrency": 4,
                                "retry": FAST_RETRY, "cache": False}
    settings.update(overrides)
    return EndpointConfig(**settings)


@pytest.mark.parametrize("kind", ["tei", "vllm_score", "vllm_pooling", "generic"])
def test_every_adapter_returns_the_servers_true_scores(server: ServerHandle, kind: str) -> None:
    table = make_table(130)
    extra = GENERIC if kind == "generic" else {}
    scores, quarantine, stats = score_table_remote(
        table, config(server, kind=kind, batch_size=32, **extra), run_id="r")
    assert scores["rm_score"].to_pylist() == truth(table)
    assert scores["row_index"].to_pylist() == list(range(130))
    assert quarantine.num_rows == 0
    assert server.stats()["requests"] == stats.batches == stats.http_requests == 5


def test_transient_faults_are_retried_until_every_score_is_exact(server: ServerHandle) -> None:
    server.faults(p_503=0.3, p_429=0.1, retry_after="0", p_reset=0.1, p_slow=0.05, slow_s=0.6, seed=3)
    table = make_table(1200)
    cfg = config(server, batch_size=25, timeout_s=0.25, breaker=BreakerPolicy(failure_threshold=50))
    scores, quarantine, stats = score_table_remote(table, cfg, run_id="r", rng=random.Random(1))
    assert scores["rm_score"].to_pylist() == truth(table)
    assert quarantine.num_rows == 0 and stats.rows_scored == 1200 and stats.rows_failed == 0
    outcomes = server.stats()["outcomes"]
    assert outcomes["ok"] == stats.batches == 48
    assert {"503", "429", "reset", "slow"} <= set(outcomes)
    assert stats.retries == stats.http_requests - stats.batches == sum(outcomes.values()) - 48


def test_retry_after_is_honoured_and_429_is_retried_until_attempts_run_out(server: ServerHandle) -> None:
    server.faults(p_429=1.0, retry_after="2")
    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    cfg = config(server, retry=RetryPolicy(max_attempts=3, backoff_base_s=0.01, backoff_max_s=0.01))
    with pytest.raises(RemoteRetriesExhaustedError, match=r"failed 3 attempts \(last: HTTP 429\)"):
        score_table_remote(make_table(10), cfg, run_id="r", sleep=record)
    assert slept == [2.0, 2.0]
    assert server.stats()["outcomes"] == {"429": 3}


def test_retry_after_as_an_http_date_is_honoured(server: ServerHandle) -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    server.faults(p_429=1.0, retry_after=format_datetime(when, usegmt=True))
    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    cfg = config(server, retry=RetryPolicy(max_attempts=2, backoff_base_s=0.01, backoff_max_s=0.01))
    with pytest.raises(RemoteRetriesExhaustedError, match="HTTP 429"):
        score_table_remote(make_table(4), cfg, run_id="r", sleep=record)
    assert len(slept) == 1 and 25.0 <= slept[0] <= 30.0


def test_connection_refused_is_transient_and_retried() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cfg = EndpointConfig(url=f"http://127.0.0.1:{port}", cache=False,
                         retry=RetryPolicy(max_attempts=3, backoff_base_s=0.001, backoff_max_s=0.002))
    scores, _, stats = score_table_remote(make_table(5), cfg, run_id="r", raise_on_failure=False)
    assert stats.http_requests == 3 and stats.rows_failed == 5 and scores["rm_score"].null_count == 5
    with pytest.raises(RemoteRetriesExhaustedError, match=r"failed 3 attempts \(last: ConnectError"):
        score_table_remote(make_table(5), cfg, run_id="r")


def test_retry_after_beyond_the_limit_fails_the_batch_without_waiting(server: ServerHandle) -> None:
    server.faults(p_429=1.0, retry_after="600")
    with pytest.raises(RemoteRetriesExhaustedError, match="retry after 600s, more than retry_after_max_s=60s"):
        score_table_remote(make_table(5), config(server), run_id="r")
    assert server.stats()["requests"] == 1


def test_read_timeouts_leave_rows_unscored_not_quarantined(server: ServerHandle) -> None:
    server.faults(p_slow=1.0, slow_s=0.5)
    cfg = config(server, timeout_s=0.1, retry=RetryPolicy(max_attempts=2, backoff_base_s=0.0))
    scores, quarantine, stats = score_table_remote(make_table(30), cfg, run_id="r",
                                                   raise_on_failure=False)
    assert scores["rm_score"].null_count == 30 and quarantine.num_rows == 0
    assert (stats.rows_failed, stats.batches_failed, stats.http_requests) == (30, 2, 4)
    with pytest.raises(RemoteRetriesExhaustedError, match="ReadTimeout"):
        score_table_remote(make_table(5), cfg, run_id="r")


def test_unusable_answers_quarantine_their_batch_with_reasons(server: ServerHandle, wizard_home: Path) -> None:
    poison = {5: "@malformed ", 23: "@wrong_count ", 47: "@nan ", 61: "@string ", 88: "@bad_request "}
    table = make_table(100, poison=poison)
    cfg = config(server, batch_size=10, cache=True)
    scores, quarantine, stats = score_table_remote(table, cfg, run_id="q1")
    reasons = {row // 10: reason for row, reason in
               zip(quarantine["row_index"].to_pylist(), quarantine["reason"].to_pylist(), strict=True)}
    assert sorted(reasons) == [0, 2, 4, 6, 8] and quarantine.num_rows == 50
    assert "malformed JSON" in reasons[0]
    assert "wrong result count: 9 scores for 10 rows" in reasons[2]
    assert "non-finite score at position 0: nan" in reasons[4]
    assert "non-numeric score at position 0: str" in reasons[6]
    assert "HTTP 422" in reasons[8] and "input too long" in reasons[8]
    assert quarantine["row_id"].to_pylist()[:2] == ["p-0", "p-1"]
    assert set(quarantine["endpoint"].to_pylist()) == {server.url + "/predict"}
    expected = truth(table)
    for row, value in enumerate(scores["rm_score"].to_pylist()):
        assert value is None if (row // 10) in reasons else value == expected[row]
    assert (stats.rows_scored, stats.rows_quarantined, stats.rows_failed) == (50, 50, 0)
    assert stats.batches_quarantined == 5 and server.stats()["requests"] == 10  # never retried
    # Quarantined rows were never cached: a re-run asks for exactly those rows again.
    server.reset()
    _, again, rerun = score_table_remote(table, cfg, run_id="q2")
    hits = server.stats(rows=True)["row_hits"]
    quarantined_rows = sorted(quarantine["row_index"].to_pylist())
    assert sorted(hits) == sorted(pair_key(table["prompt"][i].as_py(), table["response"][i].as_py())
                                  for i in quarantined_rows)
    assert rerun.cache_hits == 50 and again.num_rows == 50


def test_outage_opens_the_breaker_and_a_rerun_requests_only_unscored_rows(
    server: ServerHandle, wizard_home: Path
) -> None:
    table = make_table(1200)
    cfg = config(server, cache=True, breaker=BreakerPolicy(failure_threshold=5, reset_timeout_s=3.0))
    server.faults(outage_after=20)  # 20 batches land, then every request gets 503
    with pytest.raises(CircuitOpenError) as failure:
        score_table_remote(table, cfg, run_id="outage")
    message = str(failure.value)
    assert "run outage: 800 of 1200 rows unscored (400 scored and cached" in message
    assert "circuit open for" in message and "HTTP 503" in message and "re-run" in message
    assert "\n" not in message
    first = server.stats()
    assert first["outcomes"] == {"ok": 20, "outage": first["requests"] - 20}
    assert first["requests"] <= 20 + 5 + 4  # failed fast: not 40 batches x 10 attempts

    server.reset()  # the endpoint recovers, but the breaker is still open: fail fast, send nothing
    with pytest.raises(CircuitOpenError, match=r"800 of 1200 rows unscored.*retry in \d\.\ds"):
        score_table_remote(table, cfg, run_id="outage")
    assert server.stats()["requests"] == 0
    breaker = shared_breaker(cfg.endpoint_url, cfg.breaker)
    while breaker.state == "open":  # after the reset timeout one probe goes out, the rest wait
        time.sleep(0.05)
    scores, _, stats = score_table_remote(table, cfg, run_id="outage")
    assert stats.breaker_state == "closed"
    assert scores["rm_score"].to_pylist() == truth(table)
    hits = server.stats(rows=True)["row_hits"]
    assert stats.cache_hits == 400 and len(hits) == 800 and set(hits.values()) == {1}
    assert len(ScoreCache("x").lookup(scores["cache_key"].to_pylist())) == 1200
    unscored_first = {pair_key(p, r) for p, r, k in zip(
        table["prompt"].to_pylist(), table["response"].to_pylist(), scores["cache_key"].to_pylist(),
        strict=True) if k not in _keys_of_run(wizard_home, "outage", first_run=True)}
    assert set(hits) == unscored_first
    assert server.stats()["requests"] == stats.batches == 40


def _keys_of_run(home: Path, run_id: str, first_run: bool) -> set[str]:
    import pyarrow.parquet as pq

    parts = sorted((home / "lake" / "score_cache" / f"run_id={run_id}").glob("part-*.parquet"))
    chosen = parts[:1] if first_run else parts
    return {key for part in chosen for key in pq.read_table(part)["cache_key"].to_pylist()}


def test_bearer_token_from_env_is_sent_and_never_leaks(
    server: ServerHandle, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "tok-" + "7f3a9c" * 4
    server.faults(require_token=secret)
    cfg = config(server, token_env="RM_TEST_TOKEN")
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("RM_TEST_TOKEN", "wrong-" + secret)
    with pytest.raises(RemoteScoringError, match="HTTP 401.*check the URL, path and bearer token") as err:
        score_table_remote(make_table(200), cfg, run_id="r")
    assert server.stats()["requests"] <= 4  # stopped at once, no retries of a 401
    monkeypatch.setenv("RM_TEST_TOKEN", secret)
    scores, _, _ = score_table_remote(make_table(40), cfg, run_id="r")
    assert scores["rm_score"].null_count == 0
    scorer = RemoteScorer(cfg)
    for text in (str(err.value), repr(err.value), caplog.text, repr(scorer), repr(cfg)):
        assert secret not in text


def test_concurrency_limit_bounds_requests_in_flight(server: ServerHandle) -> None:
    server.faults(latency_s=0.03)
    _, _, stats = score_table_remote(make_table(300), config(server, batch_size=10, max_concurrency=3),
                                     run_id="r")
    assert stats.batches == 30 and server.stats()["max_in_flight"] == 3


def test_duplicate_rows_are_requested_once(server: ServerHandle) -> None:
    base = make_table(10)
    table = pa.concat_tables([base] * 5)
    scores, _, stats = score_table_remote(table, config(server), run_id="r")
    assert server.stats()["rows"] == 10 and stats.unique_payloads == 10
    assert scores["rm_score"].to_pylist() == truth(base) * 5


def test_missing_text_column_is_a_schema_error(server: ServerHandle) -> None:
    from rlhf_core.errors import SchemaMismatchError

    with pytest.raises(SchemaMismatchError, match="prompt column 'question'"):
        score_table_remote(make_table(3), config(server, prompt_column="question"), run_id="r")
    assert server.stats()["requests"] == 0


def test_a_cancelled_probe_is_released_and_a_lost_probe_ends_the_wait(server: ServerHandle) -> None:
    """Bounded-loop regression: a half-open probe cancelled mid-request stayed "in flight" for
    ever, and every later batch of the process polled the breaker in ``_admit`` without end."""
    import asyncio

    cfg = config(server, timeout_s=0.05, connect_timeout_s=0.05,
                 breaker=BreakerPolicy(failure_threshold=1, reset_timeout_s=0.0))
    server.faults(p_slow=1.0, slow_s=1.0)
    breaker = shared_breaker(cfg.endpoint_url, cfg.breaker)
    breaker.record_failure("HTTP 503")  # open; with a zero reset timeout the next call probes

    async def cancel_the_probe() -> None:
        async with RemoteScorer(cfg, breaker=breaker) as scorer:
            probe = asyncio.create_task(scorer.score_batch(["q"], ["a"]))
            for _ in range(1000):  # the probe is out once the request is on its way
                if breaker.probe_in_flight:
                    break
                await asyncio.sleep(0.001)
            probe.cancel()
            with pytest.raises(asyncio.CancelledError):
                await probe

    asyncio.run(cancel_the_probe())
    assert not breaker.probe_in_flight and breaker.state == "half_open"

    breaker.before_call()  # a probe taken and never answered (its holder is gone)

    async def wait_for_the_lost_probe() -> float:
        async with RemoteScorer(cfg, breaker=breaker) as scorer:
            started = time.monotonic()
            with pytest.raises(CircuitOpenError, match="probe request gave no verdict within") as err:
                await scorer.score_batch(["q"], ["a"])
            assert "\n" not in str(err.value)
            assert scorer.counters.requests == 0  # nothing was sent while waiting
            return time.monotonic() - started

    assert 0.25 <= asyncio.run(wait_for_the_lost_probe()) < 5.0  # 0.05 + 4 x 0.05 s, not for ever
