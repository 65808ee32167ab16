"""The load planner: from a model's shape and a machine's resources to load parameters."""

from __future__ import annotations

from app.planner.plan import (
    DOES_NOT_FIT, FITS, FITS_SLOWER, KV_CACHE_CHOICES, KVOffer, LoadPlan, conservative, plan_load,
)
from app.planner.spec import ModelSpec

__all__ = ["DOES_NOT_FIT", "FITS", "FITS_SLOWER", "KV_CACHE_CHOICES", "KVOffer", "LoadPlan", "ModelSpec",
           "conservative", "plan_load"]
