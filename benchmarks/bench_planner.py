"""Campaign planner on PSPLIB: QIEA and bi-population GA vs the GA baseline (and CP-SAT if installed).

Run: ``python -m benchmarks.bench_planner [--quick]``. For each set (j30, j60), schedule budget
(1,000 / 5,000, and 50,000 on j30) and algorithm it solves every instance (instances padded to
one shape and vmapped in fixed-size batches: one compilation per set, budget and algorithm),
verifies every schedule with the independent checker and prints a Markdown table:

* j30: mean deviation from the proven optima (``j30opt.sm``) and the share of optima reached;
* j60: mean deviation from the critical-path lower bound and from the best known (``j60hrs.sm``);
* mean wall time per instance (compilation excluded, reported separately) and the QIEA / GA
  ratio of deviations within the same run;
* ``--algorithms`` (default ``qiea,bpga,ga``) may add ``qiea-no-windows`` (the QIEA without its window moves, an ablation);
* with ``ortools`` installed (the ``bench`` extra), CP-SAT runs on the same instances with the
  QIEA's mean wall time per instance as its time limit (``--cp-sat-budgets``, default 5,000).

Every instance's result (makespan, bounds, deviations, per set / budget / algorithm / seed) is
also written atomically to ``--out`` (Parquet, default ``.wizard/bench/planner_instances.parquet``),
and a DuckDB query over that file prints, per set, the PSPLIB parameter groups where the first
algorithm of ``--algorithms`` is furthest from the reference: the place to look when the averages miss.

``--quick`` uses every 10th instance (48 per set) and budgets 1,000 and 5,000.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import duckdb
import jax
import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from rlhf_core.lake.fs import atomic_write
from rlhf_core.planner import (
    SearchConfig,
    check_schedule,
    critical_path,
    instance_key,
    make_solver,
    padded_shape,
    read_sm,
    read_solutions,
    search_config,
    stack,
    to_instance,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "psplib"
DEFAULT_OUT = ROOT / ".wizard" / "bench" / "planner_instances.parquet"
REFERENCE = {"j30": "j30/j30opt.sm", "j60": "j60/j60hrs.sm"}


def _load(family: str, stride: int) -> tuple[list, list, dict]:
    files = sorted((DATA / family / "instances").glob("*.sm"), key=lambda p: instance_key(p.stem))[::stride]
    projects = [read_sm(f) for f in files]
    return projects, [p.arrays() for p in projects], read_solutions(DATA / REFERENCE[family])


def _solve(arrays: list, config: SearchConfig, batch: int) -> tuple[np.ndarray, np.ndarray, float, float]:
    shape = padded_shape(arrays)
    insts = [to_instance(a, shape) for a in arrays]
    solver = jax.jit(jax.vmap(make_solver(config)))
    n = len(insts)
    chunks = [insts[i : i + batch] for i in range(0, n, batch)]
    t0 = time.perf_counter()
    solver(stack(chunks[0] + [chunks[0][-1]] * (batch - len(chunks[0])))).makespan.block_until_ready()
    compile_s = time.perf_counter() - t0
    starts, schedules = [], []
    t0 = time.perf_counter()
    for chunk in chunks:
        padded = chunk + [chunk[-1]] * (batch - len(chunk))
        res = solver(stack(padded))
        starts.append(np.asarray(res.starts)[: len(chunk)])
        schedules.append(np.asarray(res.schedules)[: len(chunk)])
    run_s = time.perf_counter() - t0
    # The first batch also ran during compilation; time per instance counts the timed runs only.
    return np.concatenate(starts), np.concatenate(schedules), run_s / n, compile_s


ALGORITHMS: dict[str, dict] = {
    "qiea": {"algorithm": "qiea"},
    "ga": {"algorithm": "ga"},
    "bpga": {"algorithm": "bpga"},
    "qiea-no-windows": {"algorithm": "qiea", "window_moves": 0},
}
"""Benchmark labels -> :func:`search_config` options (every other parameter at its default)."""


def _config(label: str, budget: int, seed: int) -> SearchConfig:
    if label not in ALGORITHMS:
        raise SystemExit(f"unknown algorithm {label!r}; choose from {', '.join(ALGORITHMS)}")
    return search_config(**ALGORITHMS[label], budget=budget, seed=seed)


def _have_ortools() -> bool:
    try:
        import ortools.sat.python.cp_model  # noqa: F401
    except ImportError:
        return False
    return True


def _cp_sat(arrays, seconds: float) -> tuple[list[int | None], float]:
    """CP-SAT on each instance; ``None`` where it finds no schedule within ``seconds``."""
    from ortools.sat.python import cp_model

    out = []
    t0 = time.perf_counter()
    for arr in arrays:
        model = cp_model.CpModel()
        horizon = int(arr.durations.sum())
        s = [model.NewIntVar(0, horizon, f"s{j}") for j in range(len(arr.durations))]
        iv = [model.NewFixedSizeIntervalVar(s[j], int(d), f"i{j}") for j, d in enumerate(arr.durations)]
        for j, i in np.argwhere(arr.pred):
            model.Add(s[j] >= s[i] + int(arr.durations[i]))
        for k, cap in enumerate(arr.capacities):
            model.AddCumulative(iv, [int(x) for x in arr.demands[:, k]], int(cap))
        ms = model.NewIntVar(0, horizon, "makespan")
        for j, d in enumerate(arr.durations):
            model.Add(ms >= s[j] + int(d))
        model.Minimize(ms)
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = seconds
        solver.parameters.num_workers = 2
        if solver.Solve(model) not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            out.append(None)
            continue
        starts = np.array([solver.Value(v) for v in s])
        out.append(check_schedule(arr, starts, where="CP-SAT schedule"))
    return out, (time.perf_counter() - t0) / len(arrays)


def _per_instance(family, budget, label, seed, projects, arrays, ref, makespans, per_inst) -> list[dict]:
    """One record per instance: makespan, bounds and deviations (the Parquet rows).

    A makespan of ``None`` (no schedule found, CP-SAT only) is kept as a null row, not dropped.
    """
    out = []
    for p, a, m in zip(projects, arrays, makespans, strict=True):
        parameter, number = instance_key(p.name)
        cp = critical_path(a).length
        best = ref[(parameter, number)].upper
        out.append({
            "set": family, "budget": budget, "algorithm": label, "seed": seed, "instance": p.name,
            "parameter": parameter, "number": number, "activities": int(a.durations.shape[0]),
            "makespan": None if m is None else int(m), "cp_bound": int(cp), "reference": int(best),
            "reference_is_optimum": family == "j30",
            "dev_cp_pct": None if m is None else 100.0 * (int(m) - cp) / cp,
            "dev_ref_pct": None if m is None else 100.0 * (int(m) - best) / best,
            "s_per_instance": float(per_inst),
        })
    return out


INSTANCE_SCHEMA = pa.schema([
    ("set", pa.string()), ("budget", pa.int64()), ("algorithm", pa.string()), ("seed", pa.int64()),
    ("instance", pa.string()), ("parameter", pa.int64()), ("number", pa.int64()),
    ("activities", pa.int64()), ("makespan", pa.int64()), ("cp_bound", pa.int64()),
    ("reference", pa.int64()), ("reference_is_optimum", pa.bool_()), ("dev_cp_pct", pa.float64()),
    ("dev_ref_pct", pa.float64()), ("s_per_instance", pa.float64()),
])


def write_instances(records: list[dict], out: Path) -> Path:
    """Write the per-instance records to ``out`` atomically (Parquet)."""
    table = pa.Table.from_pylist(records, schema=INSTANCE_SCHEMA)
    atomic_write(pafs.LocalFileSystem(), str(out.resolve()), lambda tmp: pq.write_table(table, tmp))
    return out


def hardest_groups(path: Path, limit: int = 5, algorithm: str = "qiea") -> list[tuple]:
    """Per set, the PSPLIB parameter groups where ``algorithm`` at its largest budget is furthest off.

    Returns:
        ``(set, parameter, instances, mean dev. from reference %, reference reached %)`` rows.
    """
    query = """
        WITH q AS (
            SELECT * FROM read_parquet($path) WHERE algorithm = $algorithm
        ), top AS (
            SELECT set, max(budget) AS budget FROM q GROUP BY set
        ), g AS (
            SELECT q.set, parameter, count(*) AS n, avg(dev_ref_pct) AS dev,
                   100.0 * avg(CASE WHEN makespan <= reference THEN 1 ELSE 0 END) AS reached,
                   row_number() OVER (PARTITION BY q.set ORDER BY avg(dev_ref_pct) DESC, parameter) AS r
            FROM q JOIN top USING (set, budget) GROUP BY q.set, parameter
        )
        SELECT set, parameter, n, dev, reached FROM g WHERE r <= $limit ORDER BY set, r
    """
    with duckdb.connect() as con:
        return con.execute(query, {"path": str(path), "limit": limit, "algorithm": algorithm}).fetchall()


def _row(records: list[dict], compile_s: float, schedules) -> dict:
    """One table row from one run's per-instance records (means over the instances it solved)."""
    first = records[0]
    solved = [r for r in records if r["makespan"] is not None]
    label = first["algorithm"]
    if len(solved) < len(records):
        label += f"; no schedule on {len(records) - len(solved)} of {len(records)}"
    ms = np.array([r["makespan"] for r in solved])
    best = np.array([r["reference"] for r in solved])
    if first["reference_is_optimum"] and (ms < best).any():
        raise AssertionError(f"{first['algorithm']}: a makespan beats a proven j30 optimum (a bug)")
    mean = (lambda key: float(np.mean([r[key] for r in solved]))) if solved else (lambda key: float("nan"))
    return {
        "set": first["set"], "budget": first["budget"], "algorithm": label, "n": len(records),
        "dev_cp": mean("dev_cp_pct"), "dev_best": mean("dev_ref_pct"),
        "hits": float(np.mean(ms == best)) if solved else float("nan"),
        "s_per_inst": first["s_per_instance"], "compile_s": compile_s,
        "schedules": int(np.max(schedules)) if schedules is not None else 0,
    }


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run the grid, print the Markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="every 10th instance, budgets 1k/5k")
    ap.add_argument("--sets", default="j30,j60")
    ap.add_argument("--budgets", default=None, help="comma-separated; default 1000,5000 (+50000 on j30)")
    ap.add_argument("--algorithms", default="qiea,bpga,ga",
                    help=f"comma-separated, from {', '.join(ALGORITHMS)}")
    ap.add_argument("--stride", type=int, default=None, help="use every k-th instance")
    ap.add_argument("--batch", type=int, default=16, help="instances per compiled batch")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="per-instance results (Parquet)")
    ap.add_argument("--cp-sat-budgets", default="5000",
                    help="budgets whose rows also run CP-SAT at the QIEA's time per instance (needs ortools)")
    args = ap.parse_args(argv)
    cp_budgets = {int(b) for b in args.cp_sat_budgets.split(",") if b}
    stride = args.stride or (10 if args.quick else 1)
    rows, records = [], []
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; stride {stride}", flush=True)
    for family in args.sets.split(","):
        projects, arrays, ref = _load(family, stride)
        budgets = [int(b) for b in args.budgets.split(",")] if args.budgets else (
            [1000, 5000] + ([50000] if family == "j30" and not args.quick else []))
        for budget in budgets:
            for algo in args.algorithms.split(","):
                config = _config(algo, budget, args.seed)
                starts, sched, per_inst, comp = _solve(arrays, config, args.batch)
                ms = [check_schedule(a, starts[i, : a.durations.shape[0]], where=p.name)
                      for i, (p, a) in enumerate(zip(projects, arrays, strict=True))]
                found = _per_instance(family, budget, algo, args.seed, projects, arrays, ref, ms, per_inst)
                rows.append(_row(found, comp, sched))
                records += found
                print(_fmt(rows[-1]), flush=True)
            if budget not in cp_budgets or not _have_ortools():
                continue
            qiea_time = next((r["s_per_inst"] for r in rows[::-1]
                              if r["set"] == family and r["budget"] == budget and r["algorithm"] == "qiea"), None)
            if qiea_time is not None:
                ms, per = _cp_sat(arrays, qiea_time)
                found = _per_instance(family, budget, "cp-sat (same time)", args.seed, projects, arrays,
                                      ref, ms, per)
                rows.append(_row(found, 0.0, None))
                records += found
                print(_fmt(rows[-1]), flush=True)
    print("\n| set | budget | algorithm | instances | dev. from CP bound % | dev. from optimum / best known % | optimum / best reached | s per instance | compile s | dev. ratio vs GA |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        ga = next((g for g in rows if g["set"] == r["set"] and g["budget"] == r["budget"] and g["algorithm"] == "ga"), None)
        ratio = f"{r['dev_best'] / ga['dev_best']:.2f}" if ga and ga["dev_best"] > 0 else "-"
        print(f"| {r['set']} | {r['budget']} | {r['algorithm']} | {r['n']} | {r['dev_cp']:.2f} | {r['dev_best']:.3f} | "
              f"{100 * r['hits']:.0f} % | {r['s_per_inst']:.3f} | {r['compile_s']:.1f} | {ratio} |")
    write_instances(records, args.out)
    print(f"\nper-instance results: {args.out}")
    first = args.algorithms.split(",")[0]
    groups = hardest_groups(args.out, algorithm=first)
    if groups:
        print(f"\n{first} at the largest budget, PSPLIB parameter groups furthest from the reference:\n")
        print("| set | parameter group | instances | dev. from reference % | reference reached |")
        print("|---|---:|---:|---:|---:|")
        for family, parameter, n, dev, reached in groups:
            print(f"| {family} | {parameter} | {n} | {dev:.2f} | {reached:.0f} % |")


def _fmt(r: dict) -> str:
    return (f"{r['set']} budget={r['budget']} {r['algorithm']}: dev_cp={r['dev_cp']:.2f}% "
            f"dev_best={r['dev_best']:.3f}% hits={100 * r['hits']:.0f}% {r['s_per_inst']:.3f}s/inst "
            f"compile={r['compile_s']:.1f}s schedules={r['schedules']}")


if __name__ == "__main__":
    main()
