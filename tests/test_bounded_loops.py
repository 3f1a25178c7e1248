"""No loop in the code base runs without a bound (issue 22: edge shapes never hang).

A cheap AST audit of every module in ``rlhf_core``, ``flows``, ``tasks``, ``ops`` and
``rlhf_cli``. A loop passes when its bound is recognisable in the code itself:

* ``for`` over a finite iterable (``range(cap)``, a list, a table ...): always; but ``for`` over
  ``itertools.count()`` / ``cycle()`` / one-argument ``repeat()`` or two-argument
  ``iter(f, sentinel)`` is treated like a ``while`` loop;
* ``while`` with an **iteration cap**: the test compares a counter ``n < cap`` (or ``<=``, or
  ``cap > n``) and the body increments it (``n += ...``);
* ``while`` with a **deadline**: the test compares a clock reading (``time.monotonic()``,
  ``loop.time()``, ``perf_counter()``, ``time.time()``) with a limit;
* a **read to end of file**: ``while chunk := f.read(n)`` or ``for chunk in iter(lambda:
  f.read(n), b"")`` (every call site reads a file, which ends);
* ``jax.lax.while_loop(cond, ...)``: ``cond`` compares an iteration counter (``step < cap``).

Any other ``while`` loop, and every recursive function (direct or through other functions of the
same module), needs an entry in :data:`WHILE_BOUNDS` / :data:`RECURSION_BOUNDS` naming why it
ends, and a **progress token**: a name that must appear in the loop (the token consumed, the
counter moved, the worklist popped), so deleting the progress step fails this test too. Entries
are keyed by file, function and loop condition (not line numbers) and stale entries fail, so the
list is always the current set of loops whose bound is argued rather than coded.

Limitation: blocking waits that are not loops (a Dask future's ``result()``, a socket read) are
not seen here; the edge-shape pipeline test (``tests/flows/test_edge_shapes.py``) runs each
pipeline under a wall-clock bound instead.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import REPO_ROOT

PACKAGES = ("rlhf_core", "flows", "tasks", "ops", "rlhf_cli")
CLOCKS = frozenset({"monotonic", "perf_counter", "time", "monotonic_ns", "perf_counter_ns"})
MAX_DEPTH_NOTE = "walks a Legal-Blocks AST, whose depth the parser bounds (MAX_DEPTH, find_too_deep)"

WHILE_BOUNDS: dict[tuple[str, str, str], tuple[str, str]] = {
    # (file, function, loop condition): (progress token, why the loop ends)
    ("rlhf_core/contract/legal_blocks/expressions.py", "ExprParser._expr", "True"):
        ("advance", "every iteration that does not break consumes a token; the stream is finite "
                    "(MAX_SOURCE_CHARS characters, one EOF)"),
    ("rlhf_core/contract/legal_blocks/expressions.py", "ExprParser._expr",
     "self.tok.kind in _COMPARE_OPS"): ("advance", "consumes the comparison operator"),
    ("rlhf_core/contract/legal_blocks/expressions.py", "ExprParser._call", "self.tok.kind == ','"):
        ("advance", "consumes the comma"),
    ("rlhf_core/contract/legal_blocks/lexer.py", "tokenize", "pos < n"):
        ("end", "every token but the final empty match at \\Z is at least one character; the "
                "empty match breaks"),
    ("rlhf_core/contract/legal_blocks/parser.py", "_ClauseParser._invariant_options",
     "self.tok.kind in ('PENALTY', 'SEVERITY')"):
        ("advance", "consumes the keyword; a repeated keyword is an error, so at most twice"),
    ("rlhf_core/contract/legal_blocks/parser.py", "parse_clauses", "parser.tok.kind != 'EOF'"):
        ("advance", "a newline is consumed, a clause consumes at least one token or raises"),
    ("rlhf_core/contract/legal_blocks/walk.py", "walk", "stack"):
        ("pop", "pre-order over a finite tree: every node is pushed once"),
    ("rlhf_core/contract/legal_blocks/walk.py", "find_too_deep", "stack"):
        ("pop", "pre-order over a finite tree: every node is pushed once"),
    ("rlhf_core/contract/numeric_risk.py", "fault", "True"):
        ("nxt", "descends to a child each iteration: at most the tree's depth"),
    ("rlhf_core/ingest/adapters/readers.py", "iter_csv", "True"):
        ("next", "every next() consumes at least one line of a finite file, also when it "
                 "raises csv.Error; StopIteration returns"),
    ("rlhf_core/lake/append_log.py", "_last_line_of_file", "position > 0"):
        ("start", "position falls by _TAIL_CHUNK bytes per iteration to 0"),
    ("rlhf_core/planner/cpm.py", "topological_order", "ready"):
        ("pop", "Kahn's algorithm: a node enters `ready` once, when its in-degree reaches 0"),
    ("rlhf_core/planner/model.py", "find_cycle", "stack"):
        ("state", "a node is pushed fresh only while unvisited, then once per edge: at most "
                  "nodes + edges iterations"),
    ("rlhf_core/remote/wire.py", "VllmPoolingWire.extract",
     "isinstance(value, list) and len(value) == 1"):
        ("value", "unwraps one level of a finite JSON document per iteration"),
    ("rlhf_core/optimize/export_card.py", "render_dataset_card", "'\\n\\n\\n' in body"):
        ("replace", "each replacement shortens the text by one character"),
    ("rlhf_core/optimize/export_sinks.py", "prefetch", "(item := slots.get()) is not _DONE"):
        ("get", "the producer puts _DONE (or its exception) after the finite `items`"),
    ("rlhf_core/optimize/export_sinks.py", "prefetch.produce", "not stop.is_set()"):
        ("put", "retries a 0.1 s put until the consumer takes the item or stops (`stop` is set "
                "in the consumer's finally)"),
}

RECURSION_BOUNDS: dict[tuple[str, frozenset[str]], tuple[str | None, str]] = {
    # (file, functions of one recursive cycle): (progress token or None, why the depth is bounded)
    ("rlhf_core/contract/diff.py", frozenset({"_compare"})):
        (None, "nesting of a loaded contract document: the loader refuses more than 32 levels"),
    ("rlhf_core/contract/intervals.py", frozenset({"call"})):
        (None, "only clip recurses, once, into min and max"),
    ("rlhf_core/contract/intervals.py", frozenset({"_compare"})):
        (None, "'>' / '>=' / '!=' re-enter once as '<' / '<=' / '=='"),
    ("rlhf_core/contract/intervals.py", frozenset({"_logic"})):
        (None, "IMPLIES re-enters once as OR"),
    ("rlhf_core/contract/intervals.py", frozenset({"interval_of.go", "interval_of.step"})):
        (None, MAX_DEPTH_NOTE),
    ("rlhf_core/contract/legal_blocks/checker.py",
     frozenset({"_Checker._call", "_Checker._compare", "_Checker._normalize", "_Checker.check",
                "_Checker.value"})): (None, MAX_DEPTH_NOTE),
    ("rlhf_core/contract/legal_blocks/expressions.py",
     frozenset({"ExprParser._call", "ExprParser._expr", "ExprParser._if", "ExprParser._name",
                "ExprParser._normalize", "ExprParser._prefix"})):
        ("MAX_DEPTH", "the parser counts its depth and raises past MAX_DEPTH"),
    ("rlhf_core/contract/legal_blocks/lower_array.py", frozenset({"Lowering._call", "Lowering.expr"})):
        (None, MAX_DEPTH_NOTE),
    ("rlhf_core/contract/legal_blocks/normalize.py", frozenset({"_neutral"})): (None, MAX_DEPTH_NOTE),
    ("rlhf_core/contract/legal_blocks/printer.py", frozenset({"_fmt", "_wrap"})):
        (None, MAX_DEPTH_NOTE),
    ("rlhf_core/contract/legal_blocks/sql_expr.py",
     frozenset({"SqlLowering._call", "SqlLowering._compare", "SqlLowering._expr",
                "SqlLowering._minmax", "SqlLowering.expr"})): (None, MAX_DEPTH_NOTE),
    ("rlhf_core/contract/loader.py", frozenset({"_plain"})):
        (None, "YAML nesting: _check_events refuses more than 32 levels before this runs"),
    ("rlhf_core/optimize/export_card.py", frozenset({"_feature"})):
        (None, "nesting of a catalogued Arrow type (list / struct of the pairs schema)"),
    ("rlhf_core/optimize/export_card.py", frozenset({"_type_text"})):
        (None, "nesting of the features _feature built from a catalogued Arrow type"),
    ("rlhf_core/remote/jsonpath.py", frozenset({"JsonPath._walk"})):
        ("position", "one level per step of the configured path (position + 1 each call)"),
    ("rlhf_core/remote/wire.py", frozenset({"_render"})):
        (None, "nesting of the operator's request template (a validated config value)"),
}


@dataclass(frozen=True)
class Loop:
    path: str
    function: str
    condition: str
    node: ast.AST

    @property
    def where(self) -> str:
        return f"{self.path}:{self.node.lineno} in {self.function or '<module>'}: {self.condition}"


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            rel = path.relative_to(REPO_ROOT).as_posix()
            yield rel, ast.parse(path.read_text(encoding="utf-8"), filename=rel)


def _functions(tree: ast.Module) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    """Every function and method by qualified name (``Class.method``, ``outer.inner``)."""
    out: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                out[prefix + child.name] = child
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return out


def _owner(functions: dict[str, ast.AST], node: ast.AST) -> str:
    """The innermost function containing ``node`` ('' at module level)."""
    best = ""
    for name, fn in functions.items():
        if fn.lineno <= node.lineno <= fn.end_lineno and len(name) > len(best):
            if any(sub is node for sub in ast.walk(fn)):
                best = name
    return best


def _names(node: ast.AST) -> set[str]:
    out = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            out.add(sub.id)
        elif isinstance(sub, ast.Attribute):
            out.add(sub.attr)
        elif isinstance(sub, ast.arg):
            out.add(sub.arg)
    return out


def _counter_capped(loop: ast.While) -> bool:
    """``while ... n < cap ...:`` (or ``cap > n``) with ``n += ...`` in the body."""
    counters = set()
    for sub in ast.walk(loop.test):
        if isinstance(sub, ast.Compare) and len(sub.ops) == 1:
            left, right = sub.left, sub.comparators[0]
            if isinstance(sub.ops[0], ast.Lt | ast.LtE) and isinstance(left, ast.Name):
                counters.add(left.id)
            if isinstance(sub.ops[0], ast.Gt | ast.GtE) and isinstance(right, ast.Name):
                counters.add(right.id)
    return any(isinstance(sub, ast.AugAssign) and isinstance(sub.op, ast.Add)
               and isinstance(sub.target, ast.Name) and sub.target.id in counters
               for stmt in loop.body for sub in ast.walk(stmt))


def _clock_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    fn = node.func
    return (isinstance(fn, ast.Attribute) and fn.attr in CLOCKS) or (
        isinstance(fn, ast.Name) and fn.id in CLOCKS)


def _deadline(loop: ast.While) -> bool:
    """``while clock() < deadline`` (either side, any comparison)."""
    return any(isinstance(sub, ast.Compare) and any(_clock_call(x) for x in (sub.left, *sub.comparators))
               for sub in ast.walk(loop.test))


def _reads(node: ast.AST | None) -> bool:
    """``<stream>.read(n)`` (or a lambda returning it)."""
    if isinstance(node, ast.Lambda):
        node = node.body
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "read" and len(node.args) == 1)


def _reads_to_eof(loop: ast.While) -> bool:
    """``while chunk := f.read(n):``: a read loop ends at the end of the file."""
    return isinstance(loop.test, ast.NamedExpr) and _reads(loop.test.value)


def _endless_iterable(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    fn = node.func
    name = fn.attr if isinstance(fn, ast.Attribute) else fn.id if isinstance(fn, ast.Name) else ""
    if name in ("count", "cycle"):
        return isinstance(fn, ast.Attribute) and isinstance(fn.value, ast.Name) \
            and fn.value.id == "itertools" or name == "cycle"
    if name == "repeat":
        return len(node.args) + len(node.keywords) == 1
    return name == "iter" and len(node.args) == 2 and not _reads(node.args[0])


def _loops() -> Iterator[tuple[Loop, bool]]:
    """Every while loop and endless-iterator for loop, with whether its bound is recognisable."""
    for rel, tree in _modules():
        functions = _functions(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.While):
                yield (Loop(rel, _owner(functions, node), ast.unparse(node.test), node),
                       _counter_capped(node) or _deadline(node) or _reads_to_eof(node))
            elif isinstance(node, ast.For | ast.AsyncFor) and _endless_iterable(node.iter):
                yield Loop(rel, _owner(functions, node), ast.unparse(node.iter), node), False


def _calls(fn: ast.AST, qualname: str, functions: dict[str, ast.AST]) -> set[str]:
    """The module's functions that ``fn`` calls by name (``f(...)``, ``self.m(...)``)."""
    scope = qualname.split(".")
    out = set()
    for sub in ast.walk(fn):
        if not isinstance(sub, ast.Call):
            continue
        target = sub.func
        if isinstance(target, ast.Name):  # a module-level function or one nested in an enclosing def
            for depth in range(len(scope), -1, -1):
                if depth and ".".join(scope[:depth]) not in functions:
                    continue  # a class body is not an enclosing scope of its methods
                candidate = ".".join([*scope[:depth], target.id])
                if candidate in functions:
                    out.add(candidate)
                    break
        elif (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
              and target.value.id in ("self", "cls") and len(scope) > 1):
            candidate = ".".join([*scope[:-1], target.attr])
            if candidate in functions:
                out.add(candidate)
    return out


def _recursive_cycles() -> Iterator[tuple[str, frozenset[str], list[ast.AST]]]:
    """Strongly connected components of each module's call graph that call back into themselves."""
    for rel, tree in _modules():
        functions = _functions(tree)
        graph = {name: _calls(fn, name, functions) for name, fn in functions.items()}
        reach: dict[str, set[str]] = {}
        for start in graph:  # transitive closure by search (modules are small)
            seen, todo = set(), list(graph[start])
            for _ in range(len(graph) ** 2 + 1):
                if not todo:
                    break
                node = todo.pop()
                if node not in seen:
                    seen.add(node)
                    todo.extend(graph[node])
            reach[start] = seen
        done: set[str] = set()
        for name in graph:
            if name in done or name not in reach[name]:
                continue
            cycle = frozenset(n for n in reach[name] if name in reach[n])
            done |= cycle
            yield rel, cycle, [functions[n] for n in sorted(cycle)]


def _lax_while_loops() -> Iterator[tuple[str, str, ast.AST | None]]:
    """``jax.lax.while_loop(cond, ...)`` calls: (file, caller, the cond function or None)."""
    for rel, tree in _modules():
        functions = _functions(tree)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "while_loop"):
                owner = _owner(functions, node)
                cond = node.args[0] if node.args else None
                found = None
                if isinstance(cond, ast.Lambda):
                    found = cond
                elif isinstance(cond, ast.Name):
                    scope = owner.split(".") if owner else []
                    for depth in range(len(scope), -1, -1):
                        found = functions.get(".".join([*scope[:depth], cond.id]))
                        if found is not None:
                            break
                yield rel, owner, found


def test_every_while_loop_has_a_recognisable_or_argued_bound() -> None:
    unbounded, seen = [], set()
    for loop, recognised in _loops():
        key = (loop.path, loop.function, loop.condition)
        if recognised:
            continue
        seen.add(key)
        entry = WHILE_BOUNDS.get(key)
        if entry is None:
            unbounded.append(f"{loop.where}: no iteration cap (`for _ in range(cap)`, `n < cap` "
                             "with `n += 1`), no deadline, and no WHILE_BOUNDS entry")
        elif entry[0] not in _names(loop.node):
            unbounded.append(f"{loop.where}: its progress token {entry[0]!r} is gone ({entry[1]})")
    assert not unbounded, "\n".join(unbounded)
    stale = sorted(set(WHILE_BOUNDS) - seen)
    assert not stale, f"WHILE_BOUNDS entries match no loop any more (remove them): {stale}"


def test_every_recursion_has_an_argued_depth_bound() -> None:
    missing, seen = [], set()
    for rel, cycle, nodes in _recursive_cycles():
        seen.add((rel, cycle))
        entry = RECURSION_BOUNDS.get((rel, cycle))
        if entry is None:
            missing.append(f"{rel}: {sorted(cycle)} recurse without a RECURSION_BOUNDS entry")
        elif entry[0] is not None and not any(entry[0] in _names(n) for n in nodes):
            missing.append(f"{rel}: {sorted(cycle)} no longer mention their bound {entry[0]!r}")
    assert not missing, "\n".join(missing)
    stale = sorted(set(RECURSION_BOUNDS) - seen, key=str)
    assert not stale, f"RECURSION_BOUNDS entries match no recursion any more (remove them): {stale}"


def test_every_jax_while_loop_caps_its_steps() -> None:
    loops = list(_lax_while_loops())
    assert len(loops) >= 4  # kl_policy, calibrate, fit (L-BFGS and Adam): the audit sees them
    for rel, owner, cond in loops:
        assert cond is not None, f"{rel} in {owner}: lax.while_loop's cond is not a local function"
        capped = any(isinstance(sub, ast.Compare) and isinstance(sub.ops[0], ast.Lt | ast.LtE)
                     and "step" in _names(sub.left) for sub in ast.walk(cond))
        assert capped, f"{rel} in {owner}: lax.while_loop's cond has no `step < cap`"


SAMPLES = {
    "capped": "def f(xs):\n    n = 0\n    while xs and n < 8:\n        n += 1\n",
    "deadline": "import time\ndef f():\n    end = time.monotonic() + 1\n    while time.monotonic() < end:\n        pass\n",
    "endless": "def f(q):\n    while True:\n        q.get()\n",
    "no_increment": "def f(n):\n    while n < 8:\n        print(n)\n",
    "count": "import itertools\ndef f():\n    for i in itertools.count():\n        pass\n",
    "sentinel": "def f(q):\n    for b in iter(q.get, None):\n        pass\n",
    "read": "def f(h):\n    while b := h.read(8):\n        pass\n",
    "read_iter": "def f(h):\n    for b in iter(lambda: h.read(1), b''):\n        pass\n",
}


@pytest.mark.parametrize(("name", "expected"), [("capped", True), ("deadline", True),
                                                ("endless", False), ("no_increment", False),
                                                ("count", False), ("sentinel", False),
                                                ("read", True), ("read_iter", True)])
def test_the_audit_tells_bounded_loops_from_endless_ones(name: str, expected: bool) -> None:
    tree = ast.parse(SAMPLES[name])
    loop = next(n for n in ast.walk(tree) if isinstance(n, ast.While | ast.For))
    if isinstance(loop, ast.For):
        assert _endless_iterable(loop.iter) is not expected
    else:
        assert (_counter_capped(loop) or _deadline(loop) or _reads_to_eof(loop)) is expected


def test_the_audit_finds_mutual_recursion() -> None:
    tree = ast.parse("def a(n):\n    return b(n)\n\ndef b(n):\n    return a(n - 1) if n else 0\n\n"
                     "class C:\n    def m(self, x):\n        return self.m(x)\n\n    def run(self):\n"
                     "        return run()\n\ndef run():\n    return 1\n")
    functions = _functions(tree)
    assert _calls(functions["a"], "a", functions) == {"b"}
    assert _calls(functions["C.m"], "C.m", functions) == {"C.m"}
    assert _calls(functions["C.run"], "C.run", functions) == {"run"}  # the module function
