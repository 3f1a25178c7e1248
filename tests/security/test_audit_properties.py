"""Property: any change to any byte of the audit log, or any cut, is detected by verify."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlhf_core.lake.store import Lake
from rlhf_core.security.audit import AuditLog
from rlhf_core.security.audit_verify import verify_audit


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("audit-pristine")
    log = AuditLog(Lake(root))
    for i in range(5):
        log.append("contract_used", f"sha256:{i:064x}", {"i": i, "score": i / 3, "text": "é ✓"},
                   actor="operator")
    assert verify_audit(Lake(root)).ok
    return root


def _copy(pristine: Path) -> Path:
    target = Path(tempfile.mkdtemp(prefix="audit-case-"))
    shutil.copytree(pristine, target, dirs_exist_ok=True)
    return target


_SETTINGS = settings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])


@_SETTINGS
@given(position=st.floats(0, 1, exclude_max=True), flip=st.integers(1, 255))
def test_any_byte_change_is_detected(pristine: Path, position: float, flip: int) -> None:
    root = _copy(pristine)
    try:
        path = root / "audit/audit.log"
        data = bytearray(path.read_bytes())
        index = int(position * len(data))
        data[index] ^= flip
        path.write_bytes(bytes(data))
        report = verify_audit(Lake(root))
        assert not report.ok, f"byte {index} changed ({flip:#x}) but verify passed"
    finally:
        shutil.rmtree(root)


@_SETTINGS
@given(cut=st.integers(1, 10_000))
def test_any_cut_of_the_tail_is_detected(pristine: Path, cut: int) -> None:
    root = _copy(pristine)
    try:
        path = root / "audit/audit.log"
        data = path.read_bytes()
        path.write_bytes(data[: max(0, len(data) - cut)])
        assert not verify_audit(Lake(root)).ok
    finally:
        shutil.rmtree(root)
