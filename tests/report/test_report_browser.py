"""The report renders in a real browser: headless Chromium over the DevTools protocol."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from rlhf_core.lake.store import Lake
from rlhf_core.report import build_report
from tests.report.chromium import INSTALL_HINT, chromium_page, find_chromium, group_alive
from tests.report.conftest import RUN_ID

pytestmark = pytest.mark.integration

_IMAGES_JS = ("JSON.stringify(Array.from(document.images).map(i => "
              "({id: i.id, complete: i.complete, w: i.naturalWidth, h: i.naturalHeight})))")


@pytest.fixture(scope="module")
def chromium() -> str:
    exe = find_chromium()
    if exe is None:
        pytest.skip(f"chromium is not installed (CI installs it: `{INSTALL_HINT}`)")
    return exe


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def _open_and_check(chromium: str, report: Path, shot: Path) -> list[dict]:
    import json

    with chromium_page(chromium) as (page, pgid):
        page.goto(report.resolve().as_uri())
        images = json.loads(page.evaluate(_IMAGES_JS))
        title = page.evaluate("document.title")
        page.screenshot(shot)
        load = page.load
    assert group_alive(pgid) == [], "a chromium process outlived the test"
    assert RUN_ID in title
    assert load.console_errors == [] and load.log_errors == []
    assert all(u.startswith(("file:", "data:")) for u in load.requests), load.requests[:3]
    assert images and all(i["complete"] and i["w"] > 0 and i["h"] > 0 for i in images), images
    width, height = _png_size(shot)
    assert width == 1280 and height > 1600  # the full page, taller than the window
    assert shot.stat().st_size > 50_000
    return images


def test_pipeline_report_loads_every_image_without_errors(chromium, pipeline_run, tmp_path) -> None:
    _, result = pipeline_run
    images = _open_and_check(chromium, Path(result["report"]), tmp_path / "report.png")
    assert {i["id"] for i in images} == {"img-histograms", "img-violations", "img-length"}


def test_full_report_with_pareto_and_gantt_renders(chromium, enriched_lake, tmp_path) -> None:
    report = Path(build_report(Lake(enriched_lake), RUN_ID).path)
    images = _open_and_check(chromium, report, tmp_path / "full-report.png")
    assert {"img-pareto", "img-gantt"} <= {i["id"] for i in images} and len(images) == 5
