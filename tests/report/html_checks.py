"""Checks that a report page is self-contained: no external resource, every image an embedded PNG."""

from __future__ import annotations

import base64
import re

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_IMG_SRC = re.compile(r'<img[^>]*\ssrc="([^"]*)"')


def assert_self_contained(html: str) -> list[bytes]:
    """No external resource of any kind; every image an embedded PNG. Returns the PNGs."""
    assert not re.search(r'(src|href)\s*=\s*"(?!data:|#)', html), "a src/href points outside the page"
    assert not re.search(r"url\(|@import|<script|<link", html, re.IGNORECASE)
    pngs = []
    for src in _IMG_SRC.findall(html):
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert png.startswith(PNG_MAGIC) and len(png) > 2_000
        pngs.append(png)
    return pngs
