"""`rlhf-wizard evaluate RUN_ID`: does the contract agree with the run's annotators?"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from rlhf_cli.access import require

app = typer.Typer()
_out = Console(highlight=False, soft_wrap=True)


@app.command("evaluate")
def evaluate(
    run_id: Annotated[str, typer.Argument(help="A scored run whose data has preference labels.")],
    contract: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False,
        help="Contract the run was scored with (default: the one its run record names).")] = None,
    criterion: Annotated[list[str] | None, typer.Option(
        "--criterion", help="Criterion to evaluate, repeatable (default: every label column).")] = None,
    resamples: Annotated[int, typer.Option(min=0, max=100_000,
                                           help="Bootstrap resamples over prompts.")] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Compare the reward, each utility, score and input column with the run's labels.

    Writes the lake tables agreement and disagreements (replacing the run's partitions) and
    prints accuracy with 95 % intervals (prompts resampled), then the clauses that flag the
    annotators' choice more often than the rejected response.

    Example: rlhf-wizard evaluate nightly-helpsteer --criterion better --json
    """
    from rlhf_core.evaluate import EvaluationConfig, evaluate_run, summarise, write_evaluation
    from rlhf_core.lake.store import Lake

    lake = Lake.from_env()
    require("run", run_id=run_id, lake=lake)
    program = _contract_of(lake, run_id, contract).program
    evaluation = evaluate_run(lake, run_id, program, criterion or None,
                              EvaluationConfig(n_resamples=resamples, seed=seed))
    paths = write_evaluation(lake, run_id, evaluation)
    summary = {**summarise(evaluation), "paths": paths}
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
        return
    _print(summary, evaluation.agreement.to_pylist())


def _contract_of(lake, run_id: str, contract: Path | None):
    from rlhf_core.contract import load_contract
    from rlhf_core.errors import DataError, LakeError
    from rlhf_core.lake.runs import get_run

    if contract is not None:
        return load_contract(contract)
    try:
        recorded = get_run(lake, run_id).parameters.get("contract")
    except LakeError:
        recorded = None
    if not recorded:
        raise DataError(f"run {run_id} records no contract in {lake.root}; pass --contract FILE")
    return load_contract(recorded)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _ci(row: dict) -> str:
    if row["ci_low"] is None or row["ci_high"] is None:
        return "–"
    return f"{row['ci_low'] * 100:.1f}–{row['ci_high'] * 100:.1f}%"


def _print(summary: dict, rows: list[dict]) -> None:
    _out.print(f"run [bold]{summary['run_id']}[/bold]: {summary['pairs']:,} labelled pairs scored"
               + (f" ({summary['unscored_pairs']:,} left out: a response was not scored)"
                  if summary["unscored_pairs"] else ""))
    for criterion, facts in summary["criteria"].items():
        table = Table(title=f"agreement with the annotators: {criterion}")
        for column in ("signal", "kind", "pairs", "accuracy", "95 % CI", "label ties"):
            table.add_column(column, justify="right" if column in ("pairs", "accuracy", "label ties")
                             else "left")
        for r in rows:
            if r["criterion"] == criterion and r["section"] == "signal":
                table.add_row(r["name"], "best single input" if r["kind"] == "best_input" else r["kind"],
                              f"{r['n_pairs']:,}", _pct(r["accuracy"]),
                              _ci(r), f"{r['n_ties']:,}")
        _out.print(table)
        length = facts["length"]
        if length:
            _out.print("  reward on pairs where the chosen response is longer: "
                       f"{_pct(length.get('chosen_longer'))}, shorter: {_pct(length.get('chosen_shorter'))}")
        if facts["flagged_clauses"]:
            _out.print(f"  [red]clauses that flag the annotators' choice more often than the "
                       f"rejected response:[/red] {', '.join(facts['flagged_clauses'])}")
    _out.print(f"tables: {summary['paths']['agreement']}, {summary['paths']['disagreements']}")
