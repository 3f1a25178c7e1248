"""Run every benchmark module in turn: ``python -m benchmarks [--quick] [names...]``.

Each ``benchmarks/bench_<area>.py`` is run as its own process (so JAX / Dask / DuckDB thread
pools of one benchmark never disturb the next) and prints its Markdown table.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    wanted = [a for a in argv if not a.startswith("-")]
    here = Path(__file__).parent
    modules = sorted(p.stem for p in here.glob("bench_*.py"))
    if wanted:
        unknown = sorted(set(wanted) - {m.removeprefix("bench_") for m in modules})
        if unknown:
            print(f"unknown benchmark(s) {unknown}; choose from {[m[6:] for m in modules]}")
            return 2
        modules = [m for m in modules if m.removeprefix("bench_") in wanted]
    failed = []
    for module in modules:
        print(f"\n## {module}\n", flush=True)
        cmd = [sys.executable, "-m", f"benchmarks.{module}"] + (["--quick"] if quick else [])
        if subprocess.call(cmd) != 0:
            failed.append(module)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
