"""The lake score cache: content addressing, atomic parts, re-runs that add instead of replace."""

from __future__ import annotations

from pathlib import Path

from rlhf_core.lake.store import Lake
from rlhf_core.remote import ScoreCache, cache_key

EP = "http://rm:8080/predict"


def test_cache_key_is_canonical_and_covers_endpoint_model_and_payload() -> None:
    base = cache_key(EP, "m", {"inputs": ["p", "r"], "raw_scores": True})
    assert base == cache_key(EP, "m", {"raw_scores": True, "inputs": ["p", "r"]})  # key order
    assert len(base) == 64 and int(base, 16) >= 0
    others = {
        cache_key("http://rm:8081/predict", "m", {"inputs": ["p", "r"], "raw_scores": True}),
        cache_key(EP, "m2", {"inputs": ["p", "r"], "raw_scores": True}),
        cache_key(EP, "m", {"inputs": ["p", "r "], "raw_scores": True}),
        cache_key(EP, "m", {"inputs": ["p", "r"], "raw_scores": False}),
    }
    assert base not in others and len(others) == 4


def test_flush_publishes_parts_and_lookup_finds_them(wizard_home: Path) -> None:
    cache = ScoreCache("run-1", flush_rows=3)
    assert cache.lookup(["a"]) == {}
    cache.add(["a", "b"], [1.0, 2.0], EP, "m")
    assert cache.pending == 2 and cache.files_written == []
    cache.add(["c"], [3.0], EP, "m")  # reaches flush_rows
    assert cache.pending == 0 and len(cache.files_written) == 1
    cache.add(["d"], [-4.0], EP, "m")
    cache.flush()
    assert cache.flush() is None
    parts = sorted(p.name for p in (wizard_home / "lake" / "score_cache" / "run_id=run-1").iterdir())
    assert parts == ["part-00000.parquet", "part-00001.parquet"]  # no temp file left visible
    assert ScoreCache("run-2").lookup(["a", "d", "zzz"]) == {"a": 1.0, "d": -4.0}
    assert Lake.from_env().count_rows("score_cache", "run-1") == 4


def test_rerun_of_the_same_run_id_appends_new_parts(wizard_home: Path) -> None:
    first = ScoreCache("run-1")
    first.add(["a"], [1.0], EP, "m")
    first.flush()
    again = ScoreCache("run-1")
    again.add(["b"], [2.0], EP, "m")
    again.flush()
    assert again.files_written[0].endswith("part-00001.parquet")
    assert ScoreCache("run-1").lookup(["a", "b"]) == {"a": 1.0, "b": 2.0}
