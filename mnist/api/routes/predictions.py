"""Predicting digits: the original /image-predict contract and the multipart batch of /api/v1/predictions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, HTTPException, Request, UploadFile
from fastapi.responses import JSONResponse

from mnist.api.deps import IdempotencyKey, ProviderDep, decode_base64_image, in_predict_thread
from mnist.api.errors import status_of
from mnist.api.schemas import (
    ROW_LINKS,
    SAMPLE_IMAGE_BASE64,
    BatchError,
    BatchPrediction,
    ImagePredictRequest,
    ImagePredictSample,
    PredictionResult,
    errors,
    result_of,
)
from mnist.service import Idempotency, predict_and_save, predict_many_and_save
from mnist.store import StoreProvider

API_SOURCE = "api"
MAX_FILES_PER_REQUEST = 64

router = APIRouter()


@router.get("/image-predict", tags=["original"], response_model=ImagePredictSample)
def image_predict_sample() -> dict[str, Any]:
    """A body POST /image-predict accepts as it is (as the original service answered), and how to send it."""
    return {
        "image": SAMPLE_IMAGE_BASE64,
        "filename": "request_test.png",
        "how_to": "POST this JSON to /image-predict: 'image' is the base64 of a PNG/JPEG/... file, "
        "'filename' is optional; the answer holds 'prediction' and 'img_shape'.",
    }


@router.post(
    "/image-predict",
    tags=["original"],
    response_model=PredictionResult,
    responses=errors(400, 403, 408, 413, 415, 422) | ROW_LINKS,
)
async def image_predict(
    body: ImagePredictRequest, request: Request, stores: ProviderDep, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Predict the digit in a base64 image and keep it in the history (source 'api')."""
    result = await in_predict_thread(request, predict_base64, body, stores, idempotency_key)
    # The hot path: a ready response skips re-validating our own dict against the model (documented above).
    return JSONResponse(result)


def predict_base64(body: ImagePredictRequest, stores: StoreProvider, key: str | None) -> dict[str, Any]:
    """Decode, predict and save one base64 image (on a prediction thread)."""
    image = decode_base64_image(body.image)
    idempotency = Idempotency.of(key, "/image-predict", image, (body.filename or "").encode())
    outcome = predict_and_save(image, source=API_SOURCE, filename=body.filename, store=stores, idempotency=idempotency)
    return result_of(outcome)


@router.post(
    "/api/v1/predictions",
    tags=["predictions"],
    response_model=list[BatchPrediction | BatchError],
    response_model_exclude_unset=True,
    responses=errors(400, 403, 408, 413, 422),
)
async def create_predictions(
    file: Annotated[list[UploadFile], File(min_length=1, description="One or more image files, each in a 'file' part")],
    request: Request,
    stores: ProviderDep,
    idempotency_key: IdempotencyKey = None,
) -> list[dict[str, Any]]:
    """Predict every uploaded file with one forward pass; a bad file gets its own error entry."""
    if len(file) > MAX_FILES_PER_REQUEST:
        raise HTTPException(422, f"at most {MAX_FILES_PER_REQUEST} files per request")
    return await in_predict_thread(request, predict_uploads, file, stores, idempotency_key)


def predict_uploads(file: list[UploadFile], stores: StoreProvider, key: str | None) -> list[dict[str, Any]]:
    """Read, predict and save the uploaded files (on a prediction thread)."""
    images = [(upload.filename, upload.file.read()) for upload in file]  # spooled: may be on disk
    parts = [part for name, data in images for part in ((name or "").encode(), data)]
    idempotency = Idempotency.of(key, "/api/v1/predictions", *parts)
    outcomes = predict_many_and_save(images, source=API_SOURCE, store=stores, idempotency=idempotency)
    results = []
    for (filename, _), outcome in zip(images, outcomes, strict=True):
        if isinstance(outcome, Exception):
            status, detail = status_of(outcome)
            results.append({"filename": filename, "error": {"status": status, "detail": detail}})
        else:
            results.append({"filename": filename, **result_of(outcome)})
    return results
