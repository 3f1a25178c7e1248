"""Legal-Blocks front-end cost, side by side with CPython's own parser on the same text.

Run: ``python -m benchmarks.bench_legal_blocks [--quick]``. Prints a Markdown table; the ratio
column is ``ours / baseline`` in the same run (lower is better). The baseline is ``ast.parse``
(CPython's C parser) on text that is valid in both languages, so the ratio shows what a pure-
Python tokenizer + precedence-climbing parser with positions costs. The last rows show that
hostile inputs are rejected in bounded time (baseline: CPython's parser failing on the same
text).
"""

from __future__ import annotations

import argparse
import ast
import time
from collections.abc import Callable

from rlhf_core.contract.legal_blocks import (
    check_clauses,
    check_expr,
    format_clauses,
    format_expr,
    parse_clauses,
    parse_expr,
)
from rlhf_core.contract.program import InputDecl
from rlhf_core.errors import ContractSyntaxError

INPUTS = (
    InputDecl("helpfulness", "float", 0, 4),
    InputDecl("correctness", "float", 0, 4),
    InputDecl("verbosity", "float", 0, 4),
    InputDecl("severity", "int", 0, 3),
    InputDecl("is_safe", "bool"),
)
UTILITY = "1 - (verbosity / 4 + min(helpfulness, 2.5) / 2.5) / 2 + abs(correctness - 2) * 0.25"
CLAUSES = (
    "safe: REQUIRES is_safe\n"
    "concise: INVARIANT verbosity <= 3 AND severity < 2 PENALTY 0.1 SEVERITY 2\n"
    "bounded: ENSURES -1 <= reward AND reward <= 1\n"
    "has_safe: EXISTS r IN prompt: r.is_safe AND r.helpfulness >= 2\n"
)
PY_CLAUSES = "is_safe\nverbosity <= 3 and severity < 2\n-1 <= reward and reward <= 1\n"


def _per_call(fn: Callable[[], object], repeat: int, number: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def _rejects(text: str) -> Callable[[], None]:
    def run() -> None:
        try:
            parse_expr(text)
        except ContractSyntaxError:
            return
        raise AssertionError("hostile input was accepted")

    return run


def _py_rejects(text: str) -> Callable[[], None]:
    def run() -> None:
        try:
            ast.parse(text, mode="eval")
        except (SyntaxError, RecursionError, MemoryError):
            return

    return run


def main(argv: list[str] | None = None) -> None:
    """Print the benchmark table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (seconds)")
    args = parser.parse_args(argv)
    number = 200 if args.quick else 2000
    repeat = 3 if args.quick else 5
    megabyte = "helpfulness + " * 75_000
    deep = "(" * 10_000 + "1" + ")" * 10_000

    def utility_full() -> None:
        expr = parse_expr(UTILITY)
        check_expr(expr, INPUTS, expect="number")
        format_expr(expr)

    def clauses_full() -> None:
        clauses = parse_clauses(CLAUSES)
        check_clauses(clauses, INPUTS)
        format_clauses(clauses)

    rows = [
        ("parse utility (84 chars)", lambda: parse_expr(UTILITY),
         lambda: ast.parse(UTILITY, mode="eval"), number),
        ("parse + check + print utility", utility_full,
         lambda: ast.parse(UTILITY, mode="eval"), number),
        ("parse + check + print 4 clauses", clauses_full, lambda: ast.parse(PY_CLAUSES), number),
        ("reject 1 MB expression", _rejects(megabyte), _py_rejects(megabyte), 3),
        ("reject 10,000-deep nesting", _rejects(deep), _py_rejects(deep), 20),
    ]
    print("| case | Legal-Blocks (µs) | baseline (µs) | ratio |")
    print("|---|---:|---:|---:|")
    for name, ours, baseline, n in rows:
        t_ours = _per_call(ours, repeat, n)
        t_base = _per_call(baseline, repeat, n)
        print(f"| {name} | {t_ours * 1e6:,.1f} | {t_base * 1e6:,.1f} | {t_ours / t_base:.3g} |")


if __name__ == "__main__":
    main()
