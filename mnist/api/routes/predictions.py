"""Predicting digits: the original /image-predict contract and the multipart batch of /api/v1/predictions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, HTTPException, Request, UploadFile
from fastapi.responses import JSONResponse

from mnist.api.deps import IdempotencyKey, ProviderDep, decode_base64_image, in_predict_thread
from mnist.api.errors import status_of
from mnist.api.schemas import BatchError, BatchPrediction, ImagePredictRequest, PredictionResult, result_of
from mnist.service import Idempotency, predict_and_save, predict_many_and_save
from mnist.store import StoreProvider

API_SOURCE = "api"
MAX_FILES_PER_REQUEST = 64
# The original milestone's own client example (a 28x28 RGBA PNG of a handwritten 0), served as the sample.
SAMPLE_IMAGE_BASE64 = (
    "iVBORw0KGgoAAAANSUhEUgAAABwAAAAcCAYAAAByDd+UAAAAOXRFWHRTb2Z0d2FyZQBNYXRwbG90bGliIHZlcnNpb24zLjUuMCwgaHR0cHM6"
    "Ly9tYXRwbG90bGliLm9yZy8/fFQqAAAACXBIWXMAAA9hAAAPYQGoP6dpAAABfElEQVR4nO1W0Y2DMAw16LpFukf2aDJHmzVAqGuEroGI2m7R"
    "rlE5776aAxJoOOn6caolyxImvDw/26IgItAbrXwn2AfwA/gr+8p5qW1bAkCXy4WOx2OUN8YQESVzKcOSSykBAMwMAKjrGt57MHMy1nW9+L1F"
    "QGMMrLVgZjwej+xojFkPOGU2jClmXddlMS2eqFOz1pLWmrz3VJZlFJumoev1SgCoKAo6n8+03+/pcDiE9zabTZ6GTdMkmbVtCynlbLmccyPm"
    "2SVNaVNV1atmgBACXdeFczMXjA/e73dYa0PjvGiCyKcaD3PJOQR+ZM2dren5oeZRfuoAoJRaxYqIoLVG3/eBmTEmr6TMjN1ulw30LPlU+5kG"
    "W8ci5d57KKUCsxfdHD88nU6haXKcmUfduXrTSClxu93gnIPWGtvtFlrrkVZDz2S2XFIpZbhx3/dhruZ2a1VVueMzn3TORTsyFVfO6XxSCAEh"
    "BJRSI43WbqChzy7vv7L//0/zdsBvGrApTDvwxZ0AAAAASUVORK5CYII="
)

router = APIRouter()


@router.get("/image-predict", tags=["original"])
def image_predict_sample() -> dict[str, Any]:
    """How to call POST /image-predict, with a sample body that works as is."""
    return {
        "how_to": "POST this JSON to /image-predict: 'image' is the base64 of a PNG/JPEG/... file, "
        "'filename' is optional; the answer holds 'prediction' and 'img_shape'.",
        "sample": {"image": SAMPLE_IMAGE_BASE64, "filename": "request_test.png"},
    }


@router.post(
    "/image-predict",
    tags=["original"],
    response_model=PredictionResult,
    responses={400: {}, 413: {}, 415: {}, 422: {}},
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
)
async def create_predictions(
    file: Annotated[list[UploadFile], File(description="One or more image files, each in a 'file' part")],
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
