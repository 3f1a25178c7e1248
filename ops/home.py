"""This machine's working directory for the platform (local state beside the lake)."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "RLHF_WIZARD_HOME"


def local_home() -> Path:
    """``RLHF_WIZARD_HOME`` when it is a local path, else ``.wizard`` (a lake on object storage
    keeps the machine's local state — server database, compilation cache — beside the working
    directory)."""
    home = os.environ.get(HOME_ENV) or ".wizard"
    if "://" in home:
        home = ".wizard"
    return Path(home).expanduser().resolve()
