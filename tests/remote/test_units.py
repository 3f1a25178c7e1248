"""Unit tests of the pure parts: JSON paths, backoff, Retry-After, breaker, adapters, validation."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rlhf_core.errors import CircuitOpenError, RemoteResponseError, RemoteScoringError
from rlhf_core.remote import BreakerPolicy, CircuitBreaker, EndpointConfig, JsonPath, RetryPolicy
from rlhf_core.remote.retry import (
    backoff_delay,
    is_transient_status,
    parse_retry_after,
    retry_delay,
)
from rlhf_core.remote.validation import validate_scores
from rlhf_core.remote.wire import make_wire

URL = "http://127.0.0.1:9"


def test_json_path_selects_nested_values_with_wildcards_and_indices() -> None:
    doc = {"result": {"outputs": [{"reward": 1.5}, {"reward": -2}], "meta": [[7, 8]]}}
    assert JsonPath("result.outputs[*].reward").select(doc) == [1.5, -2]
    assert JsonPath("result.meta[0][1]").select(doc) == 8
    assert JsonPath("result.meta[-1][*]").select(doc) == [7, 8]
    assert JsonPath("[*][0].score").select([[{"score": 3}], [{"score": 4}]]) == [3, 4]
    assert JsonPath("").select(doc) is doc


@pytest.mark.parametrize("bad", ["a..b", "a[x]", "a b", "a[1", "__class__.x()"])
def test_json_path_rejects_bad_syntax(bad: str) -> None:
    with pytest.raises(RemoteScoringError, match="bad step"):
        JsonPath(bad)


def test_json_path_errors_name_the_failing_step() -> None:
    with pytest.raises(RemoteScoringError, match=r"at \$\.result: missing key 'outputs'"):
        JsonPath("result.outputs[*]").select({"result": {}})
    with pytest.raises(RemoteScoringError, match="index 5 out of range"):
        JsonPath("a[5]").select({"a": [1]})
    with pytest.raises(RemoteScoringError, match="expected a list for"):
        JsonPath("a[*]").select({"a": {"b": 1}})


@given(st.lists(st.floats(allow_nan=False), max_size=20))
def test_json_path_wildcard_round_trips_any_list(values: list[float]) -> None:
    doc = {"data": [{"index": i, "score": v} for i, v in enumerate(values)]}
    assert JsonPath("data[*].score").select(doc) == values


def test_transient_statuses() -> None:
    assert [s for s in (200, 400, 401, 404, 422, 429, 500, 502, 503, 504) if is_transient_status(s)] \
        == [429, 500, 502, 503, 504]


def test_full_jitter_stays_in_the_exponential_window_and_is_seeded() -> None:
    policy = RetryPolicy(backoff_base_s=0.5, backoff_max_s=4.0)
    rng = random.Random(7)
    for retry in range(8):
        window = min(4.0, 0.5 * 2**retry)
        draws = [backoff_delay(retry, policy, rng) for _ in range(200)]
        assert all(0.0 <= d <= window for d in draws)
        assert max(draws) > 0.8 * window  # full jitter uses the whole window, not a fixed delay
    first = [backoff_delay(i, policy, random.Random(3)) for i in range(5)]
    assert first == [backoff_delay(i, policy, random.Random(3)) for i in range(5)]


def test_retry_after_seconds_and_http_date() -> None:
    now = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 120 ") == 120.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=42), usegmt=True), now) == 42.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=5), usegmt=True), now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_retry_after_wins_over_a_shorter_jitter() -> None:
    policy = RetryPolicy(backoff_base_s=0.01, backoff_max_s=0.01)
    assert retry_delay(0, policy, random.Random(0), 2.0) == 2.0
    assert retry_delay(0, policy, random.Random(0), None) <= 0.01


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_threshold_then_half_opens_one_probe() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("rm", BreakerPolicy(failure_threshold=3, reset_timeout_s=10), clock)
    for _ in range(2):
        breaker.before_call()
        breaker.record_failure("HTTP 503")
    assert breaker.state == "closed"
    breaker.before_call()
    breaker.record_failure("HTTP 503")
    assert breaker.state == "open"
    with pytest.raises(CircuitOpenError, match=r"circuit open for rm: 3 consecutive .*HTTP 503.*retry in 10\.0s"):
        breaker.before_call()
    clock.now += 10
    assert breaker.state == "half_open"
    breaker.before_call()  # the probe
    with pytest.raises(CircuitOpenError, match="probe request is in flight"):
        breaker.before_call()
    breaker.record_failure("ConnectError")
    assert breaker.state == "open" and breaker.times_opened == 2
    clock.now += 10
    breaker.before_call()
    breaker.record_success()
    assert breaker.state == "closed"
    breaker.before_call()


def test_breaker_success_resets_the_consecutive_count_and_429_is_neutral() -> None:
    breaker = CircuitBreaker("rm", BreakerPolicy(failure_threshold=2), FakeClock())
    breaker.record_failure("HTTP 500")
    breaker.record_success()
    breaker.record_failure("HTTP 500")
    assert breaker.state == "closed"
    breaker.record_neutral()
    assert breaker.state == "closed"
    breaker.record_failure("HTTP 500")
    assert breaker.state == "open"


def test_tei_adapter_body_and_answer_shapes() -> None:
    tei = make_wire(EndpointConfig(url=URL, kind="tei"))
    assert tei.build_body(["p1", "p2"], ["r1", "r2"]) == {
        "inputs": [["p1", "r1"], ["p2", "r2"]], "raw_scores": True, "truncate": True}
    assert tei.extract([[{"score": 0.5, "label": "LABEL_0"}], {"score": 2, "label": "x"}, 3.0]) == [0.5, 2, 3.0]
    with pytest.raises(RemoteResponseError, match="2 labels; set tei_label"):
        tei.extract([[{"score": 0.1, "label": "a"}, {"score": 0.9, "label": "b"}]])
    labelled = make_wire(EndpointConfig(url=URL, kind="tei", tei_label="b"))
    assert labelled.extract([[{"score": 0.1, "label": "a"}, {"score": 0.9, "label": "b"}]]) == [0.9]
    with pytest.raises(RemoteResponseError, match="expected a list"):
        tei.extract({"error": "x"})


def test_vllm_adapters_order_by_index() -> None:
    score = make_wire(EndpointConfig(url=URL, kind="vllm_score", model_id="m"))
    assert score.build_body(["p"], ["r"]) == {"model": "m", "text_1": ["p"], "text_2": ["r"]}
    data = {"data": [{"index": 1, "object": "score", "score": 0.2}, {"index": 0, "score": 0.7}]}
    assert score.extract(data) == [0.7, 0.2]
    with pytest.raises(RemoteResponseError, match="indices are not"):
        score.extract({"data": [{"index": 0, "score": 1}, {"index": 2, "score": 1}]})
    pooling = make_wire(EndpointConfig(url=URL, kind="vllm_pooling", pooling_text_template="Q:{prompt} A:{response}"))
    assert pooling.build_body(["p"], ["{prompt}"])["input"] == ["Q:p A:{prompt}"]
    assert pooling.extract({"data": [{"index": 0, "data": [[1.5]]}, {"index": 1, "data": -2.0}]}) == [1.5, -2.0]
    with pytest.raises(RemoteResponseError, match="2 values"):
        pooling.extract({"data": [{"index": 0, "data": [1.0, 2.0]}]})


def test_generic_adapter_renders_templates_and_rejects_unknown_placeholders() -> None:
    config = EndpointConfig(
        url=URL, kind="generic", model_id="m",
        request_template={"model": "{{model}}", "batch": {"items": "{{items}}", "n": 2}},
        item_template={"q": "{{prompt}}", "a": "{{response}}"},
        response_path="result.outputs[*].reward")
    adapter = make_wire(config)
    assert adapter.build_body(["p1", "p2"], ["r1", "r2"]) == {
        "model": "m", "batch": {"items": [{"q": "p1", "a": "r1"}, {"q": "p2", "a": "r2"}], "n": 2}}
    assert adapter.extract({"result": {"outputs": [{"reward": 1}]}}) == [1]
    with pytest.raises(RemoteResponseError, match="missing key 'result'"):
        adapter.extract({"error": "boom"})
    bad = config.model_copy(update={"request_template": {"x": "{{prompt_ids}}"}})
    with pytest.raises(RemoteScoringError, match="placeholder {{prompt_ids}} is unknown"):
        make_wire(bad)
    with pytest.raises(ValueError, match="needs request_template and response_path"):
        EndpointConfig(url=URL, kind="generic")


def test_validation_rejects_count_type_and_non_finite() -> None:
    assert validate_scores([1, 2.5], 2) == [1.0, 2.5]
    with pytest.raises(RemoteResponseError, match="wrong result count: 1 scores for 2 rows"):
        validate_scores([1.0], 2)
    with pytest.raises(RemoteResponseError, match="non-numeric score at position 1: str"):
        validate_scores([1.0, "0.5"], 2)
    with pytest.raises(RemoteResponseError, match="non-numeric score at position 0: bool"):
        validate_scores([True], 1)
    with pytest.raises(RemoteResponseError, match="non-finite score at position 0: nan"):
        validate_scores([math.nan], 1)
    with pytest.raises(RemoteResponseError, match="non-finite score at position 1: inf"):
        validate_scores([0.0, math.inf], 2)


def test_token_env_is_required_when_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from rlhf_core.remote import resolve_token

    config = EndpointConfig(url=URL, token_env="RM_TOKEN_FOR_TEST")
    monkeypatch.delenv("RM_TOKEN_FOR_TEST", raising=False)
    with pytest.raises(RemoteScoringError, match="RM_TOKEN_FOR_TEST holding the bearer token is not set"):
        resolve_token(config)
    monkeypatch.setenv("RM_TOKEN_FOR_TEST", "s3cret-value")
    token = resolve_token(config)
    assert token is not None and token.get_secret_value() == "s3cret-value"
    assert "s3cret" not in repr(token) + str(token) + repr(config)


def test_shared_breakers_are_one_per_endpoint_and_policy() -> None:
    from rlhf_core.remote import reset_shared_breakers, shared_breaker

    reset_shared_breakers()
    policy = BreakerPolicy(failure_threshold=1)
    first = shared_breaker("http://a/predict", policy)
    assert shared_breaker("http://a/predict", BreakerPolicy(failure_threshold=1)) is first
    assert shared_breaker("http://b/predict", policy) is not first
    assert shared_breaker("http://a/predict", BreakerPolicy(failure_threshold=2)) is not first
    first.record_failure("HTTP 503")
    assert shared_breaker("http://a/predict", policy).state == "open"
    reset_shared_breakers()
    assert shared_breaker("http://a/predict", policy).state == "closed"
