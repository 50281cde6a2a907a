"""Reading whole numbers: POST /api/v1/numbers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from mnist.api.deps import IdempotencyKey, ProviderDep, decode_base64_image, in_predict_thread
from mnist.api.schemas import ROW_LINKS, ImagePredictRequest, NumberResult, errors, number_result_of
from mnist.service import Idempotency, read_number_and_save
from mnist.store import StoreProvider

router = APIRouter(tags=["numbers"])


@router.post(
    "/api/v1/numbers",
    response_model=NumberResult,
    response_model_exclude_unset=True,
    responses=errors(400, 403, 408, 413, 415, 422) | ROW_LINKS,
)
async def read_number(
    body: ImagePredictRequest, request: Request, stores: ProviderDep, idempotency_key: IdempotencyKey = None
) -> dict[str, Any]:
    """Read the whole number (1-12 digits) in a base64 image; kept in the history as one row (source 'number')."""
    return await in_predict_thread(request, read_base64_number, body, stores, idempotency_key)


def read_base64_number(body: ImagePredictRequest, stores: StoreProvider, key: str | None) -> dict[str, Any]:
    """Decode, read and save one base64 number (on a prediction thread)."""
    image = decode_base64_image(body.image)
    idempotency = Idempotency.of(key, "/api/v1/numbers", image, (body.filename or "").encode())
    outcome = read_number_and_save(image, filename=body.filename, store=stores, idempotency=idempotency)
    return number_result_of(outcome)
