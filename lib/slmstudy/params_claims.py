"""Parameters of notebooks/00_claims (the claims ledger). Standalone (no import of params.py),
so `params.py` can import it into PARAM_MODELS without a cycle."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ClaimsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: str = Field("default", min_length=1,
                        description="results go to build/runs/<run_id>/00_claims/")
