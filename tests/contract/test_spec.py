"""Contract file model and loader: defaults, normalisation, and located typed errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlhf_core.contract import build_program, load_contract, load_contract_text
from rlhf_core.contract.loader import MAX_CONTRACT_BYTES, yaml_path
from rlhf_core.contract.spec import ContractSpec
from rlhf_core.errors import (
    ContractError,
    ContractSchemaError,
    ContractSyntaxError,
    ContractTypeError,
)

KEY_A = "ed25519:" + "A" * 43 + "="
KEY_B = "ed25519:" + "B" * 43 + "="

BASE = """\
contract: test-contract
version: 1.0.0
inputs:
  helpfulness: {dtype: float, range: [0, 4]}
  severity: {dtype: int, range: [0, 3]}
  is_safe: {dtype: bool}
stakeholders:
  - name: users
    weight: 0.6
    utility: helpfulness / 4
  - name: safety
    weight: 0.4
    utility: 1 - severity / 3
aggregation: {rule: weighted_sum}
clauses: |
  safe: REQUIRES is_safe
  bounded: ENSURES 0 <= reward AND reward <= 1
approval: {quorum: 1}
"""


def _replace_line(line_no: int, new: str, text: str = BASE) -> str:
    lines = text.splitlines()
    lines[line_no - 1] = new
    return "\n".join(lines) + "\n"


def test_base_loads_with_defaults_and_normalised_weights() -> None:
    contract = load_contract_text(BASE, "base.yaml")
    program = contract.program
    assert [h.weight for h in program.stakeholders] == pytest.approx([0.6, 0.4])
    assert program.rule == "weighted_sum"
    assert [c.label for c in program.clauses] == ["safe", "bounded"]
    assert program.floor_reward == -1.0
    assert program.lex_order == ()
    assert contract.spec.selection.pairing == "best_vs_worst"
    assert contract.spec.selection.kl_beta == 0.1
    assert program.input("severity").hi == 3.0
    assert contract.hash.startswith("sha256:") and len(contract.hash) == 71


def test_weights_are_normalised_to_sum_one() -> None:
    text = _replace_line(9, "    weight: 3").replace("weight: 0.4", "weight: 1")
    program = load_contract_text(text).program
    assert [h.weight for h in program.stakeholders] == pytest.approx([0.75, 0.25])


def test_lexicographic_order_is_completed_in_declaration_order() -> None:
    text = _replace_line(14, "aggregation: {rule: lexicographic, order: [safety], tolerance: 0.05}")
    program = load_contract_text(text).program
    assert program.lex_order == ("safety", "users")
    assert program.lex_tolerance == 0.05


def test_build_program_without_source_map() -> None:
    spec = load_contract_text(BASE).spec
    program = build_program(spec)
    assert program.name == "test-contract"
    bad = spec.model_copy(update={"clauses": "x: REQUIRES nope"})
    with pytest.raises(ContractTypeError, match="nope"):
        build_program(bad)


def test_load_contract_from_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(BASE)
    contract = load_contract(path)
    assert contract.path == path
    assert contract.text == BASE


# (description, text, error type, line, fragment of the message)
BAD: list[tuple[str, str, type[ContractError], int, str]] = [
    ("zero weight", _replace_line(12, "    weight: 0"), ContractSchemaError, 12,
     "stakeholders[1].weight: weight must be > 0"),
    ("negative weight", _replace_line(12, "    weight: -0.4"), ContractSchemaError, 12,
     "inverted utility"),
    ("nan weight", _replace_line(12, "    weight: .nan"), ContractSchemaError, 12, "finite"),
    ("string weight", _replace_line(12, "    weight: '0.4'"), ContractSchemaError, 12,
     "expected a number"),
    ("unknown rule", _replace_line(14, "aggregation: {rule: majority}"), ContractSchemaError, 14,
     "aggregation.rule"),
    ("duplicate stakeholder", _replace_line(11, "  - name: users"), ContractSchemaError, 11,
     "duplicate stakeholder 'users'"),
    ("quorum above stakeholders", _replace_line(18, "approval: {quorum: 3}"),
     ContractSchemaError, 18, "quorum 3 exceeds the 2 declared"),
    ("quorum zero", _replace_line(18, "approval: {quorum: 0}"), ContractSchemaError, 18,
     "approval.quorum"),
    ("unknown top-level key", BASE + "reviewers: [bob]\n", ContractSchemaError, 19,
     "reviewers: unknown key"),
    ("misspelt stakeholder key", _replace_line(12, "    wieght: 0.4"), ContractSchemaError, 12,
     "stakeholders[1].wieght: unknown key"),
    ("bad semver", _replace_line(2, "version: '1.0'"), ContractSchemaError, 2,
     "semantic version"),
    ("bad supersedes", BASE + "supersedes: sha256:abc\n", ContractSchemaError, 19,
     "sha256:<64"),
    ("range lo > hi", _replace_line(4, "  helpfulness: {dtype: float, range: [4, 0]}"),
     ContractSchemaError, 4, "exceeds upper bound"),
    ("range on bool", _replace_line(6, "  is_safe: {dtype: bool, range: [0, 1]}"),
     ContractSchemaError, 6, "bool input cannot have a range"),
    ("unknown dtype", _replace_line(6, "  is_safe: {dtype: boolean}"), ContractSchemaError, 6,
     "inputs.is_safe.dtype"),
    ("missing version", _replace_line(2, "# no version"), ContractSchemaError, 1,
     "version: required key is missing"),
    ("undeclared input in utility", _replace_line(10, "    utility: helpfulnes / 4"),
     ContractTypeError, 10, "helpfulnes"),
    ("bool utility", _replace_line(10, "    utility: is_safe"), ContractTypeError, 10, "number"),
    ("utility syntax error", _replace_line(10, "    utility: (helpfulness / 4"),
     ContractSyntaxError, 10, "')'"),
    ("python call", _replace_line(10, "    utility: __import__('os')"), ContractError, 10, ""),
    ("dunder attribute", _replace_line(10, "    utility: helpfulness.__class__"),
     ContractError, 10, ""),
    ("clause syntax error", _replace_line(17, "  bounded: ENSURES 0 <= reward AND"),
     ContractSyntaxError, 17, ""),
    ("clause type error", _replace_line(16, "  safe: REQUIRES helpfulness"),
     ContractTypeError, 16, "bool"),
    ("clause undeclared column", _replace_line(16, "  safe: REQUIRES is_unsafe"),
     ContractTypeError, 16, "is_unsafe"),
    ("reward outside ENSURES", _replace_line(16, "  safe: REQUIRES reward > 0"),
     ContractTypeError, 16, "reward"),
    ("duplicate YAML key", _replace_line(2, "version: 1.0.0\nversion: 1.0.1"),
     ContractSchemaError, 3, "duplicate key"),
    ("YAML anchor", _replace_line(9, "    weight: &w 0.6").replace("weight: 0.4", "weight: *w"),
     ContractSchemaError, 9, "anchors and aliases"),
    ("python tag", _replace_line(9, "    weight: !!python/object:os.system 1"),
     ContractSchemaError, 9, "tag"),
    ("broken YAML", _replace_line(14, "aggregation: {rule: weighted_sum"), ContractSchemaError,
     15, "invalid YAML"),
    ("order with non-lexicographic rule",
     _replace_line(14, "aggregation: {rule: weighted_sum, order: [users]}"), ContractSchemaError,
     14, "only to rule lexicographic"),
    ("order names unknown stakeholder",
     _replace_line(14, "aggregation: {rule: lexicographic, order: [board]}"), ContractSchemaError,
     14, "aggregation.order[0]: lexicographic order names undeclared stakeholder 'board'"),
    ("negative tolerance",
     _replace_line(14, "aggregation: {rule: lexicographic, tolerance: -0.1}"),
     ContractSchemaError, 14, "tolerance must be >= 0"),
    ("zero kl_beta", BASE + "selection: {kl_beta: 0}\n", ContractSchemaError, 19, "kl_beta"),
    ("unknown pairing", BASE + "selection: {pairing: random}\n", ContractSchemaError, 19,
     "selection.pairing"),
    ("bad public key", _replace_line(10, "    utility: helpfulness / 4\n    public_key: rsa:xyz"),
     ContractSchemaError, 11, "ed25519:<base64"),
    ("shared public key",
     _replace_line(10, f"    utility: helpfulness / 4\n    public_key: {KEY_A}").replace(
         "utility: 1 - severity / 3", f"utility: 1 - severity / 3\n    public_key: {KEY_A}"),
     ContractSchemaError, 15, "reuses the public key"),
    ("quorum above keyed stakeholders",
     _replace_line(10, f"    utility: helpfulness / 4\n    public_key: {KEY_B}").replace(
         "quorum: 1", "quorum: 2"), ContractSchemaError, 19, "with a public_key"),
    ("no inputs", _replace_line(4, "  {}").replace("  severity: {dtype: int, range: [0, 3]}\n", "")
     .replace("  is_safe: {dtype: bool}\n", "").replace("inputs:\n  {}", "inputs: {}"),
     ContractSchemaError, 3, "inputs"),
    ("not a mapping", "- just\n- a list\n", ContractSchemaError, 1, "must be a YAML mapping"),
    ("two documents", BASE + "---\ncontract: x\n", ContractSchemaError, 19, "one contract per file"),
    ("deep YAML nesting", BASE + "extra: " + "[" * 5000 + "]" * 5000 + "\n", ContractSchemaError,
     19, "YAML nests deeper than 32 levels"),
    ("deep nesting", _replace_line(10, "    utility: " + "(" * 10_000 + "1" + ")" * 10_000),
     ContractSyntaxError, 10, ""),
]


@pytest.mark.parametrize(("text", "kind", "line", "fragment"), [b[1:] for b in BAD],
                         ids=[b[0] for b in BAD])
def test_bad_contract_raises_located_typed_error(
    text: str, kind: type[ContractError], line: int, fragment: str
) -> None:
    with pytest.raises(kind) as info:
        load_contract_text(text, "bad.yaml")
    err = info.value
    assert err.file == "bad.yaml"
    assert err.line == line, str(err)
    assert str(err).startswith(f"bad.yaml:{line}:{err.col}: ")
    assert fragment in str(err)
    assert "\n" not in str(err)


def test_at_least_thirty_bad_contracts() -> None:
    assert len(BAD) >= 30


def test_error_column_and_caret_point_into_the_yaml() -> None:
    with pytest.raises(ContractTypeError) as info:
        load_contract_text(_replace_line(13, "    utility: 1 - severty / 3"), "c.yaml")
    assert (info.value.line, info.value.col) == (13, 18)
    assert info.value.caret.splitlines() == ["    utility: 1 - severty / 3", " " * 17 + "^"]
    with pytest.raises(ContractTypeError) as info:
        load_contract_text(_replace_line(17, "  bounded: ENSURES 0 <= rewards"), "c.yaml")
    assert (info.value.line, info.value.col) == (17, 25)
    assert info.value.source_line == "  bounded: ENSURES 0 <= rewards"


def test_quoted_utility_column() -> None:
    with pytest.raises(ContractTypeError) as info:
        load_contract_text(_replace_line(13, '    utility: "1 - severty / 3"'), "c.yaml")
    assert (info.value.line, info.value.col) == (13, 19)


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text(BASE + "description: " + "x" * MAX_CONTRACT_BYTES + "\n")
    with pytest.raises(ContractSchemaError, match="byte limit"):
        load_contract(path)


def test_missing_file_is_a_schema_error(tmp_path: Path) -> None:
    with pytest.raises(ContractSchemaError, match="not found"):
        load_contract(tmp_path / "absent.yaml")


def test_yaml_path_rendering() -> None:
    assert yaml_path(("stakeholders", 1, "weight")) == "stakeholders[1].weight"
    assert yaml_path(("aggregation", "order", 0)) == "aggregation.order[0]"
    assert yaml_path(()) == ""


def test_spec_forbids_unknown_keys_everywhere() -> None:
    data = load_contract_text(BASE).spec.model_dump()
    data["aggregation"]["weights"] = [1, 2]
    with pytest.raises(ValueError, match="Extra inputs"):
        ContractSpec.model_validate(data)
