"""PSPLIB reader on the real files, and clear errors for malformed ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlhf_core.errors import PlannerError
from rlhf_core.planner import critical_path, instance_key, read_sm, read_solutions


def test_reads_j301_1(shared_data: Path) -> None:
    proj = read_sm(shared_data / "psplib/j30/instances/j301_1.sm")
    assert proj.n_activities == 32 and proj.name == "j301_1"
    assert [r.capacity for r in proj.resources] == [12, 13, 4, 12]
    a2 = proj.activities[1]
    assert (a2.name, a2.duration, a2.demands, a2.predecessors) == ("2", 8, {"R1": 4}, ("1",))
    assert proj.activities[-1].duration == 0
    # The file's MPM-Time (critical-path length) is 38.
    assert critical_path(proj.arrays()).length == 38


def test_solution_lists(shared_data: Path) -> None:
    opt = read_solutions(shared_data / "psplib/j30/j30opt.sm")
    hrs = read_solutions(shared_data / "psplib/j60/j60hrs.sm")
    lb = read_solutions(shared_data / "psplib/j60/j60lb.sm")
    assert len(opt) == 480 and len(hrs) == 480 and len(lb) == 410
    assert opt[(1, 1)].upper == 43 and opt[(1, 1)].optimal
    assert hrs[(48, 10)].upper == 70 and hrs[(48, 10)].lower is None
    assert lb[(1, 4)] == (91, 91, True)
    assert instance_key("j6048_10") == (48, 10) and instance_key("j301_1") == (1, 1)


def _broken(tmp_path: Path, shared_data: Path, old: str, new: str) -> Path:
    text = (shared_data / "psplib/j30/instances/j301_1.sm").read_text()
    assert old in text
    path = tmp_path / "broken.sm"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("   2        1          3           6  11  15", "   2        1          3           6  11  x", r"broken\.sm:20: expected integers in the precedence table"),
        ("   2        1          3           6  11  15", "   2        1          3           6  11  99", r"broken\.sm:20: job 2 names unknown successor 99"),
        ("   2        1          3           6  11  15", "   2        1          4           6  11  15", r"broken\.sm:20: bad precedence row"),
        ("  2      1     8       4    0    0    0", "  2      1     8       4    0    0", r"broken\.sm:56: bad request row"),
        ("   12   13    4   12", "   12   13    4", r"broken\.sm:\d+: expected 4 capacities, got 3"),
        ("RESOURCEAVAILABILITIES:", "RESOURCES:", r"section 'RESOURCEAVAILABILITIES:' not found"),
        ("  3      1     4      10    0    0    0", "  3      1     4      99    0    0    0", r"needs 99 'R1' but the capacity is 12"),
    ],
)
def test_malformed_files(tmp_path: Path, shared_data: Path, old: str, new: str, message: str) -> None:
    with pytest.raises(PlannerError, match=message):
        read_sm(_broken(tmp_path, shared_data, old, new))


def test_cyclic_sm_file_names_the_cycle(tmp_path: Path, shared_data: Path) -> None:
    path = _broken(tmp_path, shared_data, "  32        1          0        ", "  32        1          1           2")
    with pytest.raises(PlannerError, match=r"precedence cycle .*2 -> .*32 -> 2"):
        read_sm(path)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(PlannerError, match=r"cannot read PSPLIB file"):
        read_sm(tmp_path / "nope.sm")
    empty = tmp_path / "empty.sm"
    empty.write_text("hello\n")
    with pytest.raises(PlannerError, match=r"empty\.sm:1: no 'jobs"):
        read_sm(empty)
    with pytest.raises(PlannerError, match=r"no result rows"):
        read_solutions(empty)
