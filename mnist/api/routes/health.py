"""GET /api/v1/health: liveness, the models' versions and whether the history database answers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from mnist.api.deps import ProviderDep
from mnist.api.schemas import Health, errors
from mnist.predict import get_predictor
from mnist.reader import get_reader

router = APIRouter(tags=["health"])


@router.get("/api/v1/health", response_model=Health, responses=errors(503))
def health(stores: ProviderDep) -> dict[str, Any]:
    """The models' versions and whether the history database answers."""
    try:
        versions = {"model_version": get_predictor().model_version, "reader_version": get_reader().version}
    except (OSError, RuntimeError) as exc:
        raise HTTPException(503, "a model is not loaded (weights missing or unreadable)") from exc
    current = stores.get_or_none(wait=0)  # a migration still under way reads as unavailable, never as a wait
    database = "ok" if current is not None and current.ping() else "unavailable"
    return {"status": "ok", **versions, "database": database}
