"""What to plan: a campaign YAML or a PSPLIB ``.sm`` file, by path (a small, serialisable value)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from rlhf_core.planner.campaign import load_campaign
from rlhf_core.planner.model import Project
from rlhf_core.planner.psplib import read_sm


class PlanSource(BaseModel):
    """A project file and its kind; workers re-read it instead of receiving the project."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    kind: Literal["campaign", "psplib"] = "campaign"

    def load(self) -> Project:
        """Read and validate the project.

        Raises:
            PlannerError: unreadable or invalid file (located).
        """
        return load_campaign(self.path) if self.kind == "campaign" else read_sm(self.path)
