"""Normalised signals: ``zscore`` / ``rank`` / ``minmax`` ``(x IN prompt | run)``.

Exact semantics on hand-made groups (ties, groups of one, constant groups, missing values,
-0.0) in all three evaluators (jitted JAX, NumPy, DuckDB SQL); interval bounds that sampled
groups never leave; the static check; front-end errors with positions; run statistics.
"""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlhf_core.contract import load_contract_text
from rlhf_core.contract.bounds import input_env, utility_bounds
from rlhf_core.contract.intervals import interval_of
from rlhf_core.contract.legal_blocks import format_expr, parse_clauses, parse_expr
from rlhf_core.contract.legal_blocks.compile_jax import compile_jax, evaluate_numpy
from rlhf_core.contract.legal_blocks.normalize import RunStats, neutral_program
from rlhf_core.contract.lint import lint_contract
from rlhf_core.contract.program import ContractProgram, InputDecl, StakeholderProgram
from rlhf_core.contract.static_check import check_ensures
from rlhf_core.errors import ContractError, ContractSyntaxError, ContractTypeError
from rlhf_core.scoring import score_sql, score_table

INPUTS = (InputDecl("x", "float", -8.0, 8.0), InputDecl("y", "float", -1.0, 1.0),
          InputDecl("s", "bool"), InputDecl("text", "str"))
FNS = ("zscore", "rank", "minmax")


def program_of(*utilities: str, clauses: str = "", max_candidates: int | None = None,
               inputs: tuple[InputDecl, ...] = INPUTS) -> ContractProgram:
    holders = tuple(StakeholderProgram(f"u{i}", 1.0 / len(utilities), parse_expr(u))
                    for i, u in enumerate(utilities))
    return ContractProgram("norm", inputs, holders, "weighted_sum",
                           clauses=parse_clauses(clauses) if clauses else (),
                           max_candidates=max_candidates)


def table_of(x: list[float], prompts: list[int], y: list[float] | None = None) -> pa.Table:
    n = len(x)
    return pa.table({
        "x": pa.array(np.asarray(x, np.float32)),
        "y": pa.array(np.asarray(y if y is not None else [0.5] * n, np.float32)),
        "s": [True] * n,
        "text": ["ab"] * n,
        "prompt_id": [f"p{p}" for p in prompts],
        "row_id": list(range(n)),
    })


def utilities_everywhere(program: ContractProgram, table: pa.Table) -> np.ndarray:
    """Utilities by JAX (score_table), checked equal to NumPy and within 1e-6 of DuckDB."""
    out = score_table(program, table, id_columns=["row_id"])
    names = [f"u_{s.name}" for s in program.stakeholders]
    jax_u = np.stack([out.column(n).to_numpy() for n in names], axis=1)
    con = duckdb.connect()
    con.register("t", table)
    sql = score_sql(program, con, "t", id_columns=["row_id"], order_by=["row_id"])
    sql_u = np.stack([sql.column(n).to_numpy(zero_copy_only=False) for n in names], axis=1)
    np.testing.assert_allclose(jax_u, sql_u, rtol=1e-6, atol=1e-6)
    from rlhf_core.scoring.score import dense_segments, input_arrays

    seg = dense_segments(table, "prompt_id")
    order = np.argsort(seg, kind="stable")
    arrays = {k: v[order] for k, v in input_arrays(program, table).items()}
    numpy_u = np.asarray(evaluate_numpy(program, arrays, seg[order]).utilities)
    unsorted = np.empty_like(numpy_u)
    unsorted[order] = numpy_u
    np.testing.assert_allclose(jax_u, unsorted, rtol=1e-6, atol=1e-6)
    return jax_u


def test_ties_get_their_average_rank_and_zscore_is_population() -> None:
    program = program_of("zscore(x IN prompt)", "rank(x IN prompt)", "minmax(x IN prompt)")
    u = utilities_everywhere(program, table_of([1, 2, 2, 3], [0, 0, 0, 0]))
    r2 = math.sqrt(2.0)  # population std of [1, 2, 2, 3] is sqrt(1/2)
    np.testing.assert_allclose(u[:, 0], [-r2, 0, 0, r2], rtol=1e-6)
    np.testing.assert_array_equal(u[:, 1], [0.0, 0.5, 0.5, 1.0])
    np.testing.assert_array_equal(u[:, 2], [0.0, 0.5, 0.5, 1.0])


def test_rank_with_several_tie_groups() -> None:
    program = program_of("rank(x IN prompt)")
    u = utilities_everywhere(program, table_of([5, 1, 5, 1, 3, 5], [0] * 6))
    # ranks 1.5, 1.5, 3, 5, 5, 5 -> (r - 1) / 5
    np.testing.assert_allclose(u[:, 0], [0.8, 0.1, 0.8, 0.1, 0.4, 0.8], rtol=1e-6)


def test_groups_of_one_and_constant_groups_are_neutral() -> None:
    program = program_of("zscore(x IN prompt)", "rank(x IN prompt)", "minmax(x IN prompt)")
    u = utilities_everywhere(program, table_of([7, 2, 2, 2, 0.1, 0.1, 0.1], [0, 1, 1, 1, 2, 2, 2]))
    np.testing.assert_array_equal(u[:, 0], [0.0] * 7)
    np.testing.assert_array_equal(u[:, 1], [0.5] * 7)
    np.testing.assert_array_equal(u[:, 2], [0.5] * 7)


def test_missing_values_are_excluded_and_get_the_neutral_value() -> None:
    """sqrt(y) is NaN where y < 0: those rows are not counted and score neutral."""
    program = program_of("zscore(sqrt(y) IN prompt)", "rank(sqrt(y) IN prompt)",
                         "minmax(sqrt(y) IN run)")
    y = [0.25, -1.0, 1.0, 0.0, -0.5]
    u = utilities_everywhere(program, table_of([0] * 5, [0] * 5, y))
    # finite values 0.5, 1.0, 0.0 (rows 0, 2, 3): mean 0.5, std sqrt(1/6)
    z = 0.5 / math.sqrt(1 / 6)
    np.testing.assert_allclose(u[:, 0], [0.0, 0.0, z, -z, 0.0], rtol=1e-6)
    np.testing.assert_array_equal(u[:, 1], [0.5, 0.5, 1.0, 0.0, 0.5])
    np.testing.assert_array_equal(u[:, 2], [0.5, 0.5, 1.0, 0.0, 0.5])


def test_sql_null_inputs_are_missing_too() -> None:
    program = program_of("rank(x IN run)", "zscore(x IN prompt)")
    table = pa.table({"x": pa.array([1.0, None, 3.0], pa.float32()), "y": [0.0] * 3,
                      "s": [True] * 3, "text": ["a"] * 3, "prompt_id": ["p"] * 3,
                      "row_id": [0, 1, 2]})
    con = duckdb.connect()
    con.register("t", table)
    sql = score_sql(program, con, "t", id_columns=["row_id"], order_by=["row_id"])
    assert sql.column("u_u0").to_pylist() == [0.0, 0.5, 1.0]
    assert sql.column("u_u1").to_pylist() == [-1.0, 0.0, 1.0]


def test_negative_zero_ties_with_zero_and_groups_are_prompts() -> None:
    program = program_of("rank(x IN prompt)", "rank(x IN run)")
    u = utilities_everywhere(program, table_of([-0.0, 0.0, 1.0, 5.0, -3.0], [0, 0, 0, 1, 1]))
    np.testing.assert_allclose(u[:, 0], [0.25, 0.25, 1.0, 1.0, 0.0])
    # whole run: -3, -0, 0, 1, 5 -> ranks 1, 2.5, 2.5, 4, 5
    np.testing.assert_allclose(u[:, 1], [0.375, 0.375, 0.75, 1.0, 0.0])


def test_zscore_reaches_its_bound_sqrt_n_minus_1_and_never_exceeds_it() -> None:
    n = 9
    program = program_of("zscore(x IN prompt)", "zscore(x IN run)")
    u = utilities_everywhere(program, table_of([8.0] + [-8.0] * (n - 1), [0] * n))
    assert u[0, 0] <= np.float32(math.sqrt(n - 1))
    assert u[0, 0] == pytest.approx(math.sqrt(n - 1), rel=1e-6)
    assert u[0, 1] == pytest.approx(math.sqrt(n - 1), rel=1e-6)


def test_huge_values_do_not_overflow_the_statistics() -> None:
    program = program_of("zscore(x IN prompt)", "minmax(x IN run)",
                         inputs=(InputDecl("x", "float"), *INPUTS[1:]))
    big = float(np.finfo(np.float32).max)
    u = utilities_everywhere(program, table_of([big, -big, big, 0.0], [0, 0, 0, 0]))
    assert np.isfinite(u).all()
    np.testing.assert_allclose(u[:, 1], [1.0, 0.0, 1.0, 0.5], atol=1e-6)


def test_str_columns_normalise_through_len() -> None:
    program = program_of("rank(len(text) IN prompt)")
    table = table_of([0, 0, 0], [0, 0, 0]).set_column(3, "text", pa.array(["a", "abc", "ab"]))
    np.testing.assert_allclose(utilities_everywhere(program, table)[:, 0], [0.0, 1.0, 0.5])


def test_normalisations_in_clauses_veto_and_penalise() -> None:
    program = program_of("x / 8", clauses=(
        "top: REQUIRES rank(x IN prompt) >= 0.5\n"
        "spread: INVARIANT minmax(x IN run) > 0.25 PENALTY 0.5\n"
        "calm: ENSURES zscore(x IN prompt) < 1 IMPLIES reward <= 1"))
    table = table_of([1, 2, 3, 4], [0, 0, 1, 1])
    out = score_table(program, table, id_columns=["row_id"])
    assert out.column("v_top").to_pylist() == [True, False, True, False]
    assert out.column("penalty").to_pylist() == [0.5, 0.0, 0.0, 0.0]
    con = duckdb.connect()
    con.register("t", table)
    from tests.contract.test_compile_differential import assert_tables_agree

    assert_tables_agree(out, score_sql(program, con, "t", id_columns=["row_id"],
                                       order_by=["row_id"]))


# -- run statistics ---------------------------------------------------------------------------


def test_run_statistics_do_not_depend_on_row_order_or_parts() -> None:
    program = program_of("zscore(x + y IN run)", "rank(x IN run)")
    rng = np.random.default_rng(3)
    x = rng.normal(size=500).astype(np.float32)
    table = table_of(list(x), list(rng.integers(0, 50, 500)), list(rng.uniform(-1, 1, 500)))
    from rlhf_core.scoring import run_values

    whole = RunStats.from_values(program, run_values(program, table))
    perm = table.take(rng.permutation(500))
    parts = [perm.slice(0, 123), perm.slice(123, 300), perm.slice(423)]
    values: dict[str, list[np.ndarray]] = {}
    for part in parts:
        for key, v in run_values(program, part).items():
            values.setdefault(key, []).append(v)
    split = RunStats.from_values(program, values)
    assert whole.to_bytes() == split.to_bytes()
    assert set(whole.stats) == {"x + y", "x"}
    assert whole.stats["x"].sorted_values is not None
    assert whole.stats["x + y"].sorted_values is None  # zscore keeps no values
    again = RunStats.from_bytes(whole.to_bytes("sha256:abc"), "sha256:abc")
    assert again.to_bytes() == whole.to_bytes()
    with pytest.raises(ContractError, match="computed for contract sha256:abc"):
        RunStats.from_bytes(whole.to_bytes("sha256:abc"), "sha256:other")
    with pytest.raises(ContractError, match="unreadable run statistics"):
        RunStats.from_bytes(b"not npz")


def test_chunked_scoring_uses_the_statistics_of_the_whole_table() -> None:
    program = program_of("zscore(x IN run)", "rank(x IN run)", "minmax(x IN prompt)")
    rng = np.random.default_rng(0)
    table = table_of(list(rng.normal(size=300)), sorted(rng.integers(0, 40, 300)))
    whole = score_table(program, table, id_columns=["row_id"])
    chunked = score_table(program, table, id_columns=["row_id"], chunk_rows=50)
    assert whole.equals(chunked)
    first = table.column("prompt_id").to_pylist().index("p10")  # whole prompts p0..p9
    alone = score_table(program, table.slice(0, first), id_columns=["row_id"])
    assert not alone.column("u_u0").equals(whole.slice(0, first).column("u_u0"))
    from rlhf_core.scoring import table_run_stats

    given_stats = score_table(program, table.slice(0, first), id_columns=["row_id"],
                              run_stats=table_run_stats(program, table))
    assert given_stats.equals(whole.slice(0, first))


def test_max_candidates_is_enforced_when_scoring() -> None:
    from rlhf_core.errors import DataError

    program = program_of("zscore(x IN prompt)", max_candidates=2)
    with pytest.raises(DataError, match="max_candidates 2, but prompt 'p0' has 3 candidates"):
        score_table(program, table_of([1, 2, 3, 4], [0, 0, 0, 1]))
    plain = program_of("x", max_candidates=2)  # enforced without normalisations too
    with pytest.raises(DataError, match="max_candidates 2"):
        score_table(plain, table_of([1, 2, 3, 4], [0, 0, 0, 1]))


# -- interval bounds --------------------------------------------------------------------------


def test_interval_bounds_of_each_normalisation() -> None:
    program = program_of("zscore(x IN prompt)", "zscore(x IN run)", "rank(x IN run)",
                         "minmax(y IN prompt)", "zscore(3 IN run)", max_candidates=5)
    bounds = utility_bounds(program)
    assert bounds[0].lo == -2.0 and bounds[0].hi == 2.0 and not bounds[0].nan
    assert bounds[1].hi == pytest.approx(2.0**31.5) and not bounds[1].nan
    assert (bounds[2].lo, bounds[2].hi) == (0.0, 1.0)
    assert (bounds[3].lo, bounds[3].hi) == (0.0, 1.0)
    assert (bounds[4].lo, bounds[4].hi) == (0.0, 0.0)  # a constant is neutral
    nan_arg = program_of("rank(log(y) IN prompt)", "zscore(sqrt(y) IN prompt)", max_candidates=1)
    b = utility_bounds(nan_arg)
    assert (b[0].lo, b[0].hi, b[0].nan) == (0.0, 1.0, False)
    assert (b[1].lo, b[1].hi, b[1].nan) == (0.0, 0.0, False)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(st.integers(1, 6), min_size=1, max_size=8),
    seed=st.integers(0, 2**31 - 1),
    arg=st.sampled_from(["x", "x * y", "floor(x) + y", "IF s THEN x ELSE -x", "x ^ 2",
                         "sqrt(x)", "min(x, 2)", "abs(y) - 1"]),
)
def test_sampled_groups_stay_inside_the_interval_bounds(sizes, seed, arg) -> None:
    """Random prompts of up to max_candidates (6) rows with ties and extreme values."""
    program = program_of(*(f"{fn}({arg} IN {g})" for fn in FNS for g in ("prompt", "run")),
                         max_candidates=6)
    rng = np.random.default_rng(seed)
    n = sum(sizes)
    pool = np.array([-8.0, -1.0, 0.0, 0.5, 2.0, 8.0], np.float32)
    x = np.where(rng.random(n) < 0.5, rng.choice(pool, n), rng.uniform(-8, 8, n))
    table = table_of(list(x), [i for i, k in enumerate(sizes) for _ in range(k)],
                     list(rng.choice([-1.0, 0.0, 0.25, 1.0], n)))
    out = score_table(program, table, id_columns=["row_id"])
    env = input_env(program, rounding=True)
    for s in program.stakeholders:
        box = interval_of(s.utility, env, rounding=True)
        values = out.column(f"u_{s.name}").to_numpy()
        assert np.isfinite(values).all(), format_expr(s.utility)
        assert ((values >= box.lo) & (values <= box.hi)).all(), (format_expr(s.utility), box)
        if s.utility.group == "run" and s.utility.fn == "zscore":
            assert (np.abs(values) <= np.float32(math.sqrt(n - 1)) if n > 1 else values == 0).all()


# -- static check and lint --------------------------------------------------------------------


def _yaml(utility: str, clauses: str = "", extra: str = "") -> str:
    return (
        "contract: norm-test\nversion: 1.0.0\n"
        "inputs:\n  helpfulness: {dtype: float, range: [0, 4]}\n  text: {dtype: str}\n"
        f"stakeholders:\n  - name: users\n    weight: 1\n    utility: {utility}\n"
        "aggregation: {rule: weighted_sum}\n"
        + (f"clauses: |\n  {clauses}\n" if clauses else "") + extra
    )


def test_static_check_proves_bounds_of_rank_and_bounded_zscores() -> None:
    c = load_contract_text(_yaml("rank(helpfulness IN prompt)",
                                 "b: ENSURES 0 <= reward AND reward <= 1.001"), "c.yaml")
    assert [r.status for r in check_ensures(c.program)] == ["proved"]
    z = load_contract_text(_yaml("zscore(helpfulness IN prompt)",
                                 "b: ENSURES -2.001 <= reward AND reward <= 2.001",
                                 "max_candidates: 5\n"), "z.yaml")
    assert [r.status for r in check_ensures(z.program)] == ["proved"]
    unbounded = load_contract_text(_yaml("zscore(helpfulness IN prompt)",
                                         "b: ENSURES -2 <= reward AND reward <= 2"), "u.yaml")
    assert [r.status for r in check_ensures(unbounded.program)] == ["unknown"]
    notes = [w for w in lint_contract(unbounded).warnings if "sqrt(n - 1)" in w]
    assert notes and "u.yaml:9:14" in notes[0] and "declare max_candidates" in notes[0]
    run = load_contract_text(_yaml("zscore(helpfulness IN run)"), "r.yaml")
    assert any("a run's size is only known when it is scored" in w
               for w in lint_contract(run).warnings)


def test_static_check_refutes_on_a_run_of_one_row() -> None:
    """A row alone in its prompt and run scores the neutral value: a real counterexample."""
    c = load_contract_text(_yaml("rank(helpfulness IN run)", "b: ENSURES reward > 0.75"), "c.yaml")
    [result] = check_ensures(c.program)
    assert result.status == "refuted" and result.counterexample is not None
    assert neutral_program(c.program) != c.program


@pytest.mark.parametrize(
    ("utility", "error", "message", "at"),
    [
        ("zscore(rank(helpfulness IN prompt) IN run)", ContractTypeError,
         "rank(... IN prompt) is nested inside zscore(... IN run)", "rank"),
        ("rank(text IN prompt)", ContractTypeError,
         "rank() needs a number, found str 'text'; str values may only be used as len(...)",
         "text"),
        ("minmax(helpfulness IN batch)", ContractSyntaxError,
         "unknown group 'batch' in minmax(... IN ...)", "batch"),
        ("zscore(helpfulness)", ContractSyntaxError,
         "expected 'IN prompt' or 'IN run' after the argument of zscore()", ")"),
        ("zscore(helpfulness, 2 IN run)", ContractSyntaxError, "(it takes one expression)", ","),
        ("zscore + 1", ContractTypeError, "'zscore' must be called", "zscore"),
        ("rank(helpfulness > 2 IN run)", ContractTypeError, "rank() needs a number, found bool",
         ">"),
    ],
)
def test_misuse_is_a_positioned_one_line_error(utility, error, message, at) -> None:
    with pytest.raises(error) as info:
        load_contract_text(_yaml(utility), "bad.yaml")
    assert message in str(info.value)
    col = len("    utility: ") + utility.index(at) + 1  # the utility sits on line 9
    assert str(info.value).startswith(f"bad.yaml:9:{col}: ")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("clause", "message", "at"),
    [
        ("q: FORALL r IN prompt: rank(r.helpfulness IN prompt) > 0",
         "rank(... IN prompt) is not allowed inside FORALL r IN prompt", "rank"),
        ("e: ENSURES zscore(reward IN run) < 3",
         "'reward' cannot be normalised: the argument of zscore(... IN run)", "reward"),
    ],
)
def test_misuse_in_clauses_points_into_the_yaml_block(clause, message, at) -> None:
    with pytest.raises(ContractTypeError) as info:
        load_contract_text(_yaml("helpfulness / 4", clause), "bad.yaml")
    assert message in str(info.value)
    col = 2 + clause.index(at) + 1  # the block's only clause: line 12, indented by 2
    assert str(info.value).startswith(f"bad.yaml:12:{col}: ")


def test_canonical_text_and_hash_of_normalisations() -> None:
    a = load_contract_text(_yaml("zscore( helpfulness*2   IN prompt ) # c"), "a.yaml")
    b = load_contract_text(_yaml("zscore(helpfulness * 2 IN prompt)"), "b.yaml")
    assert format_expr(a.program.stakeholders[0].utility) == "zscore(helpfulness * 2 IN prompt)"
    assert a.hash == b.hash
    other = load_contract_text(_yaml("zscore(helpfulness * 2 IN run)"), "c.yaml")
    assert other.hash != a.hash
    capped = load_contract_text(_yaml("zscore(helpfulness * 2 IN prompt)",
                                      extra="max_candidates: 8\n"), "d.yaml")
    assert capped.hash != a.hash and capped.program.max_candidates == 8


def test_programs_without_normalisations_compile_as_before() -> None:
    program = program_of("x / 8 + y")
    compiled = compile_jax(program)
    assert not compiled.needs_run_stats and compiled.run_jitted is None
    assert not compiled.needs_segments
