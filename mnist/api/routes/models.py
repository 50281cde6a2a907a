"""The model registry: fine-tune the active version on the labelled history, follow the job, compare, activate.

Every operation needs the bearer token when MNIST_API_TOKEN is set: reading the registry shows what the
history taught, and the others change what every app process serves.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from mnist import finetune, registry
from mnist.api.deps import StoreDep, authorised
from mnist.api.schemas import ActivateRequest, FineTuneRequest, ModelOut, errors, model_of

router = APIRouter(tags=["models"], dependencies=[Depends(authorised)])
Version = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$", description="Model version")]


@router.post("/api/v1/models", status_code=202, response_model=ModelOut, responses=errors(400, 401, 403, 409, 422, 503))
def start_finetune(db: StoreDep, body: FineTuneRequest | None = None) -> dict[str, Any]:
    """Fine-tune the active version on the labelled history in a process of its own (predictions go on meanwhile);
    202 with the new version, status "training". Follow it with GET /api/v1/models/{version}. 409 while another
    fine-tune trains, 422 when no row is labelled."""
    return model_of(finetune.start(db, epochs=body.epochs if body is not None else None))


@router.get("/api/v1/models", response_model=list[ModelOut], responses=errors(401, 503))
def list_models(db: StoreDep) -> list[dict[str, Any]]:
    """Every version, newest first: status, progress, figures and the gate's verdict."""
    return [model_of(m) for m in registry.list_models(db)]


@router.get("/api/v1/models/{version}", response_model=ModelOut, responses=errors(401, 404, 422, 503))
def get_model(version: Version, db: StoreDep) -> dict[str, Any]:
    """One version: status, progress, figures (per class and confusion matrices) and the gate's verdict."""
    return model_of(registry.get_model(db, version))


@router.post(
    "/api/v1/models/{version}/activate",
    response_model=ModelOut,
    responses=errors(400, 401, 403, 404, 409, 422, 503),
)
def activate_model(version: Version, db: StoreDep, body: ActivateRequest | None = None) -> dict[str, Any]:
    """Serve this version from every app process (within seconds). A fine-tuned version's first activation must
    pass its gate: 409 with the gate's reasons, unless {"force": true}. Going back to a version that served
    before, or to the shipped one, is never gated: that is the rollback."""
    return model_of(registry.activate(db, version, force=body is not None and body.force))
