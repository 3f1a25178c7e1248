"""Flow ``build-report``: one self-contained HTML report of a run, linked from Prefect."""

from __future__ import annotations

from prefect import flow
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ops.access import guard
from ops.confinement import confined
from tasks.report import build_run_report


class BuildReportParams(BaseModel):
    """Parameters of ``build-report``.

    Attributes:
        run_id: The run to report on (any flow's run id in this lake); empty: the latest
            completed ``contract-pipeline`` run (what a scheduled weekly report wants).
        lake_root: Lake root (``RLHF_WIZARD_HOME``).
        token: Run token (``rlhf-wizard access token``); needed once an access policy is
            installed (docs/security.md). Shown to anyone who can read the run's parameters:
            prefer ``token_block`` for schedules.
        token_block: Name of a Prefect ``Secret`` block holding the run token.
    """

    model_config = ConfigDict(extra="forbid")

    run_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
    lake_root: str = ".wizard"
    token: SecretStr | None = None
    token_block: str | None = None


@flow(name="build-report", log_prints=True)
def build_report(params: BuildReportParams) -> dict:
    """Collect the run's tables from the lake, render the report, publish its link."""
    params = confined(params, "build-report")
    guard(params, "report")
    return build_run_report(params.run_id, params.lake_root)
