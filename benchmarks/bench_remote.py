"""Remote reward-model scoring: the batched async client vs a naive one-request-per-row loop.

Run: ``python -m benchmarks.bench_remote [--quick]``. Both sides talk to the same real local
test server (``tests/remote/server.py``, a uvicorn subprocess) with 20 ms injected latency per
request, in one run. The client uses its defaults (TEI format, batch 64, 16 requests in flight,
lake cache on, cold). The naive loop (``httpx.Client`` with keep-alive, one pair per request) is
timed on a sample and extrapolated to the full row count, as the table states. The server's hit
count must equal the client's batch count (nothing re-requested without a failure); a warm re-run
answers every row from the lake cache with zero requests.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time

import httpx
import pyarrow as pa

from rlhf_core.remote import EndpointConfig, score_table_remote
from tests.remote.server import running_server, true_score

LATENCY_S = 0.02


def _table(rows: int) -> pa.Table:
    topics = ["sorting algorithms", "tax law", "photosynthesis", "the French revolution", "TCP"]
    prompts = [f"Q{i}: explain {topics[i % 5]} to a new engineer, briefly and with one example."
               for i in range(rows)]
    responses = [f"A{i}: " + "Here is a short, concrete explanation with an example. " * (1 + i % 6)
                 for i in range(rows)]
    return pa.table({"prompt": prompts, "response": responses})


def _naive(url: str, table: pa.Table) -> float:
    """One request per row, sequentially; returns the wall time."""
    prompts, responses = table["prompt"].to_pylist(), table["response"].to_pylist()
    start = time.perf_counter()
    with httpx.Client(timeout=30) as client:
        for prompt, response in zip(prompts, responses, strict=True):
            answer = client.post(url + "/predict", json={"inputs": [[prompt, response]]})
            answer.raise_for_status()
            if answer.json()[0][0]["score"] != true_score(prompt, response):
                raise RuntimeError("naive loop got a wrong score")
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    args = parser.parse_args(argv)
    rows, sample = (10_000, 200) if args.quick else (100_000, 1_000)
    table = _table(rows)
    with tempfile.TemporaryDirectory() as home, running_server() as server:
        os.environ["RLHF_WIZARD_HOME"] = home
        server.faults(latency_s=LATENCY_S)
        config = EndpointConfig(url=server.url)

        naive_s = _naive(server.url, table.slice(0, sample))
        naive_hits = server.stats()["requests"]
        server.reset()
        server.faults(latency_s=LATENCY_S)

        scores, quarantine, cold = score_table_remote(table, config, run_id="bench-cold")
        hits = server.stats()["requests"]
        expected = [true_score(p, r) for p, r in zip(table["prompt"].to_pylist(),
                                                     table["response"].to_pylist(), strict=True)]
        correct = scores[config.score_column].to_pylist() == expected and quarantine.num_rows == 0

        server.reset()
        _, _, warm = score_table_remote(table, config, run_id="bench-warm")
        warm_hits = server.stats()["requests"]

    naive_rate = sample / naive_s
    batches = math.ceil(rows / config.batch_size)
    print(f"### Remote scoring, {rows:,} rows, {LATENCY_S * 1000:.0f} ms server latency per request\n")
    print("| method | rows timed | server requests | wall (s) | rows/s | speed-up vs naive |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| naive loop, 1 row/request (timed on {sample:,} rows; wall extrapolated to {rows:,}) "
          f"| {sample:,} | {naive_hits:,} | {rows / naive_rate:.1f} (extrap.) | {naive_rate:,.0f} | 1.0x |")
    print(f"| client defaults (batch {config.batch_size}, {config.max_concurrency} in flight), "
          f"cold cache | {rows:,} | {hits:,} | {cold.elapsed_s:.2f} | {rows / cold.elapsed_s:,.0f} "
          f"| {rows / cold.elapsed_s / naive_rate:,.0f}x |")
    print(f"| client re-run, warm lake cache | {rows:,} | {warm_hits:,} | {warm.elapsed_s:.2f} "
          f"| {rows / warm.elapsed_s:,.0f} | {rows / warm.elapsed_s / naive_rate:,.0f}x |")
    print(f"\nscores equal the server's true scores: {correct}; server hits {hits:,} == batches "
          f"{batches:,}: {hits == batches == cold.batches}; warm re-run requests: {warm_hits}; "
          f"target speed-up >= 50x: {rows / cold.elapsed_s / naive_rate >= 50}")


if __name__ == "__main__":
    main()
