"""The lake passphrase from a Prefect ``Secret`` block, for runs that have no shell to export it.

A flow started from the Prefect UI, a schedule or ``prefect deployment run`` inherits only the
worker's environment. Set ``RLHF_WIZARD_LAKE_PASSPHRASE_BLOCK`` on the worker (or the deployment's
``job_variables.env``) to the name of a ``Secret`` block holding the passphrase, and the run's first
task copies it into ``RLHF_WIZARD_LAKE_PASSPHRASE`` of its own process, where the lake reads it
(:mod:`rlhf_core.lake.keyfile`) and where the Dask workers the run starts later inherit it.
"""

from __future__ import annotations

import os

from rlhf_core.errors import LakeKeyError
from rlhf_core.lake.keyfile import LAKE_PASSPHRASE_ENV

LAKE_PASSPHRASE_BLOCK_ENV = "RLHF_WIZARD_LAKE_PASSPHRASE_BLOCK"

__all__ = ["LAKE_PASSPHRASE_BLOCK_ENV", "export_lake_passphrase"]


def export_lake_passphrase() -> bool:
    """Load the Secret block named by ``RLHF_WIZARD_LAKE_PASSPHRASE_BLOCK`` into the environment.

    A passphrase already in ``RLHF_WIZARD_LAKE_PASSPHRASE`` wins; without a block name nothing
    happens.

    Returns:
        Whether a passphrase was loaded from a block.

    Raises:
        LakeKeyError: The block cannot be loaded.
    """
    block = os.environ.get(LAKE_PASSPHRASE_BLOCK_ENV)
    if not block or os.environ.get(LAKE_PASSPHRASE_ENV):
        return False
    from prefect.blocks.system import Secret

    try:
        value = Secret.load(block).get()
    except ValueError as exc:  # Prefect raises ValueError for an unknown block name
        raise LakeKeyError(f"cannot load the lake passphrase from Secret block {block!r} "
                           f"({LAKE_PASSPHRASE_BLOCK_ENV}): {exc}; create it with "
                           f"Secret(value=...).save({block!r})") from None
    os.environ[LAKE_PASSPHRASE_ENV] = str(value)
    return True
