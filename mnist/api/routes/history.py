"""The prediction history: list (with the History page's filters), one row, its input image, label, delete, stats."""

from __future__ import annotations

import io
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response
from PIL import Image

from mnist.api.deps import FiltersDep, StoreDep, authorised
from mnist.api.schemas import Item, ItemPage, LabelUpdate, StatsOut, errors, item_of

router = APIRouter()
RecordId = Annotated[int, Path(ge=1, le=2**63 - 1, description="History id")]


@router.get("/api/v1/predictions", tags=["predictions"], response_model=ItemPage, responses=errors(422, 503))
def list_predictions(
    db: StoreDep,
    filters: FiltersDep,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """History, newest first, filtered like the History page: digit or text read, source, label, dates, confidence."""
    page = db.page(offset, limit, filters)
    return {"items": [item_of(r) for r in page.items], "total": page.total}


@router.get(
    "/api/v1/predictions/{record_id}", tags=["predictions"], response_model=Item, responses=errors(404, 422, 503)
)
def get_prediction(record_id: RecordId, db: StoreDep) -> dict[str, Any]:
    """One history row."""
    return item_of(db.get(record_id))


@router.get(
    "/api/v1/predictions/{record_id}/input.png",
    tags=["predictions"],
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}} | errors(404, 422, 503),
)
def get_model_input(
    record_id: RecordId,
    db: StoreDep,
    scale: Annotated[int, Query(ge=1, le=20, description="Enlarge by this factor (nearest neighbour)")] = 1,
) -> Response:
    """The 28x28 image the model saw, as PNG."""
    image = Image.fromarray(db.get(record_id).model_input)  # (28, 28) uint8 -> mode L
    if scale > 1:
        image = image.resize((28 * scale, 28 * scale), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return Response(buffer.getvalue(), media_type="image/png")


@router.patch(
    "/api/v1/predictions/{record_id}",
    tags=["predictions"],
    response_model=Item,
    responses=errors(400, 401, 403, 404, 408, 413, 422, 503),
    dependencies=[Depends(authorised)],
)
def set_label(record_id: RecordId, body: LabelUpdate, db: StoreDep) -> dict[str, Any]:
    """Record what the row really shows, or clear it with null: a digit row's digit (`{"label": 7}`), a number
    row's text (`{"label": "4096"}`). Needs the bearer token when MNIST_API_TOKEN is set."""
    try:
        return item_of(db.set_label(record_id, body.label))
    except ValueError as exc:  # the other kind of label than the row's (the schema cannot know the row)
        raise HTTPException(422, str(exc)) from None


@router.delete(
    "/api/v1/predictions/{record_id}",
    tags=["predictions"],
    status_code=204,
    response_class=Response,
    responses=errors(401, 403, 404, 422, 503),
    dependencies=[Depends(authorised)],
)
def delete_prediction(record_id: RecordId, db: StoreDep) -> Response:
    """Remove one history row. Needs the bearer token when MNIST_API_TOKEN is set."""
    db.delete(record_id)
    return Response(status_code=204)


@router.get("/api/v1/stats", tags=["history"], response_model=StatsOut, responses=errors(422, 503))
def stats(db: StoreDep, filters: FiltersDep) -> dict[str, Any]:
    """Rows per source, digits read per digit, mean confidence, accuracy and confusion matrix over the labelled
    digits of the filtered rows (a labelled number counts place by place)."""
    return asdict(db.stats(filters))
