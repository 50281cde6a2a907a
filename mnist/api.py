"""FastAPI app: the original /image-predict contract plus /api/v1 over the engine.

Handlers are thin: they validate with typed models, call mnist.service / mnist.store,
and turn the engine's typed errors into HTTP statuses with a string `detail`.
Nothing that touches the model or the database runs on the event loop (which the
dashboard shares when served by server.py): predictions go to worker threads of
their own, and the other endpoints are plain `def`, which FastAPI runs in its pool.

Run alone:  uvicorn mnist.api:app      Run with the dashboard:  make run
"""

import base64
import binascii
import hmac
import io
import logging
import re
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, replace
from datetime import datetime
from typing import Annotated, Any, Literal

import torch
from anyio import CapacityLimiter, to_thread
from fastapi import Depends, FastAPI, File, Header, HTTPException, Path, Query, Request, Response, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from PIL import Image
from pydantic import BaseModel, Field, StrictInt
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mnist.config import get_settings
from mnist.errors import (
    ImageTooLarge,
    InvalidImage,
    NoDigitFound,
    RecordNotFound,
    StoreUnavailable,
    TooManyDigits,
    UnsupportedImageType,
)
from mnist.predict import get_predictor
from mnist.reader import get_reader
from mnist.service import (
    NOT_SAVED,
    NumberOutcome,
    Outcome,
    predict_and_save,
    predict_many_and_save,
    read_number_and_save,
)
from mnist.store import SOURCES, Filters, Record, Store, shared_store

log = logging.getLogger(__name__)

API_SOURCE = "api"
MAX_FILES_PER_REQUEST = 64
PREDICT_THREADS = 8
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
_DATA_URL_PREFIX = re.compile(r"^data:image/[\w.+-]+;base64,", re.IGNORECASE)
_WHITESPACE = re.compile(rb"\s+")
RecordId = Annotated[int, Path(ge=1, le=2**63 - 1, description="History id")]

# ---------------------------------------------------------------- request and response models


class ImagePredictRequest(BaseModel):
    """The original client's body: base64 image bytes and an optional display name."""

    image: str = Field(description="Base64 of an image file; a `data:image/...;base64,` prefix is accepted.")
    filename: str | None = Field(None, description="Shown in the history; never used as a path.")


class PredictionResult(BaseModel):
    """One prediction and what became of it in the history."""

    prediction: int
    img_shape: list[int]
    confidence: float
    probabilities: list[float]
    id: int | None
    saved: bool
    warning: str | None = None  # present only when the prediction was not saved


class BatchPrediction(PredictionResult):
    """One file of a multipart batch that was read."""

    filename: str | None


class BatchError(BaseModel):
    """One file of a multipart batch that could not be read; the others still count."""

    filename: str | None
    error: dict[str, Any] = Field(description='{"status": HTTP status this file alone would get, "detail": why}')


class DigitOut(BaseModel):
    """One digit of a number, left to right."""

    prediction: int
    confidence: float
    probabilities: list[float]


class NumberResult(BaseModel):
    """A whole number read from an image and what became of it in the history."""

    text: str = Field(description='The digits left to right, e.g. "2024".')
    digits: list[DigitOut]
    boxes: list[list[int]] = Field(description="Each digit's [x0, y0, x1, y1] in input pixels, x1/y1 exclusive.")
    confidence: float = Field(description="The least confident digit's confidence.")
    id: int | None
    saved: bool
    warning: str | None = None  # present only when the number was not saved


class Item(BaseModel):
    """One history row as the API shows it."""

    id: int
    created_at: datetime
    source: str
    filename: str | None
    prediction: int
    predicted_text: str | None
    confidence: float
    probabilities: list[float]
    label: int | None
    model_version: str


class ItemPage(BaseModel):
    """A page of history, newest first, and how many rows match in all."""

    items: list[Item]
    total: int


class StatsOut(BaseModel):
    """Counts, mean confidence, accuracy on labelled rows and the confusion matrix (rows = label)."""

    total: int
    per_digit: list[int]
    per_source: dict[str, int]
    mean_confidence: float | None
    labelled: int
    correct: int
    accuracy: float | None
    confusion: list[list[int]]


class LabelUpdate(BaseModel):
    """The true digit of a prediction, or null to clear it."""

    label: Annotated[StrictInt, Field(ge=0, le=9)] | None


class Health(BaseModel):
    """Liveness plus what the model and database are doing."""

    status: Literal["ok"]
    model_version: str  # the digit classifier
    reader_version: str  # the number reader (POST /api/v1/numbers)
    database: Literal["ok", "unavailable"]


# ---------------------------------------------------------------- the database, lazily


class StoreProvider:
    """One Store per app, created and migrated on first use so a database down at startup can come back later."""

    RETRY_SECONDS = 5.0  # while the database is down, try migrating again at most this often

    def __init__(self, store: Store | None = None) -> None:
        self._store = store
        self._ready = False
        self._lock = threading.Lock()
        self._retry_at = 0.0

    def get(self) -> Store:
        """The migrated store, or StoreUnavailable."""
        if self._ready:
            return self._store
        with self._lock:
            if not self._ready:
                if time.monotonic() < self._retry_at:
                    raise StoreUnavailable("the history database is unavailable")
                if self._store is None:
                    self._store = shared_store(get_settings().database_url)
                try:
                    self._store.migrate()
                except StoreUnavailable:
                    self._retry_at = time.monotonic() + self.RETRY_SECONDS
                    log.warning("History database unavailable (%s); retrying later", self._store.describe())
                    raise
                self._ready = True
        return self._store

    def get_or_none(self) -> Store | None:
        """The store for a prediction, or None while the database is down (the prediction still stands)."""
        try:
            return self.get()
        except StoreUnavailable:
            return None


# ---------------------------------------------------------------- body size limit


class BodyTooLarge(HTTPException):
    """Raised from `receive` once a body passes the limit; FastAPI passes HTTPExceptions through body parsing."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is larger than the {limit:,}-byte limit")


class BodyLimit:
    """Pure ASGI middleware: refuse bodies over `limit` bytes from Content-Length up front and while they stream."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            status = 413 if length.isdigit() else 400
            detail = BodyTooLarge(self.limit).detail if status == 413 else "invalid Content-Length header"
            await JSONResponse({"detail": detail}, status, headers={"Connection": "close"})(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:  # chunked bodies carry no Content-Length: count what arrives
                    raise BodyTooLarge(self.limit)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge as exc:  # raised outside FastAPI's own body parsing (e.g. a raw stream read)
            if started:
                raise
            await JSONResponse({"detail": exc.detail}, 413, headers={"Connection": "close"})(scope, receive, send)


# ---------------------------------------------------------------- helpers


def decode_base64_image(text: str) -> bytes:
    """The original contract's `image` string -> file bytes (data-URL prefix, whitespace, url-safe, no padding ok)."""
    data = _WHITESPACE.sub(b"", _DATA_URL_PREFIX.sub("", text.strip(), count=1).encode("ascii", "replace"))
    if b"-" in data or b"_" in data:
        data = data.replace(b"-", b"+").replace(b"_", b"/")
    data += b"=" * (-len(data) % 4)
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidImage("image is not valid base64") from exc


def result_of(outcome: Outcome) -> dict[str, Any]:
    """The original contract's answer, extended with confidence, probabilities and the history id."""
    p = outcome.prediction
    out = {
        "prediction": p.digit,
        "img_shape": list(p.model_input.shape),
        "confidence": p.confidence,
        "probabilities": p.probabilities,
    }
    return out | history_fields(outcome)


def history_fields(outcome: Outcome | NumberOutcome) -> dict[str, Any]:
    """Where the answer went in the history: its id, whether it was saved, and why not."""
    out: dict[str, Any] = {"id": outcome.record_id, "saved": outcome.saved}
    if not outcome.saved:
        out["warning"] = outcome.warning or NOT_SAVED
    return out


def number_result_of(outcome: NumberOutcome) -> dict[str, Any]:
    """A number reading -> the /api/v1/numbers answer."""
    reading = outcome.reading
    out = {
        "text": reading.text,
        "digits": [
            {"prediction": d.digit, "confidence": d.confidence, "probabilities": d.probabilities}
            for d in reading.digits
        ],
        "boxes": [list(box) for box in reading.boxes],
        "confidence": reading.confidence,
    }
    return out | history_fields(outcome)


def item_of(record: Record) -> dict[str, Any]:
    """A store Record -> the API's item fields (never the image bytes)."""
    return {
        "id": record.id,
        "created_at": record.created_at,
        "source": record.source,
        "filename": record.filename,
        "prediction": record.digit,
        "predicted_text": record.predicted_text,
        "confidence": record.confidence,
        "probabilities": record.probabilities,
        "label": record.label,
        "model_version": record.model_version,
    }


def status_of(exc: Exception) -> tuple[int, str]:
    """The HTTP status and detail for one of the engine's typed errors."""
    if isinstance(exc, UnsupportedImageType):
        return 415, str(exc) or "unsupported image type"
    if isinstance(exc, ImageTooLarge):
        return 413, str(exc) or "image too large"
    if isinstance(exc, InvalidImage):
        return 400, str(exc) or "not an image"
    if isinstance(exc, NoDigitFound):  # the engine's messages already say "no digit found ..."
        message = str(exc)
        if not message.startswith("no digit found"):
            message = f"no digit found: {message}" if message else "no digit found"
        return 422, message
    if isinstance(exc, TooManyDigits):
        return 422, str(exc)
    if isinstance(exc, StoreUnavailable):
        return 503, "the history database is unavailable; try again later"
    if isinstance(exc, RecordNotFound):
        return 404, str(exc) or "no such prediction"
    return 500, "internal error"


def _validation_message(exc: RequestValidationError) -> tuple[int, str]:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return 400, "request body is not valid JSON"
    parts = []
    for e in errors:
        where = ".".join(str(x) for x in e.get("loc", ()) if x not in ("body", "query", "path"))
        parts.append(f"{where}: {e.get('msg', 'invalid')}" if where else str(e.get("msg", "invalid")))
    return 422, "; ".join(parts) or "invalid request"


# ---------------------------------------------------------------- the app


def create_app(store: Store | None = None) -> FastAPI:
    """Build the API; `store` lets tests inject a database, otherwise DATABASE_URL is used on first need."""
    settings = get_settings()
    provider = StoreProvider(store)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await to_thread.run_sync(warm_up, provider)
        yield

    app = FastAPI(
        title="MNIST digit recognizer API",
        version="1",
        description="Handwritten digits in, predictions out; every prediction is kept in a history you can query.",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
    )
    app.state.provider = provider
    app.add_middleware(BodyLimit, limit=settings.max_api_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        status, detail = _validation_message(exc)
        return JSONResponse({"detail": detail}, status)

    async def on_engine_error(_request: Request, exc: Exception) -> JSONResponse:
        status, detail = status_of(exc)
        return JSONResponse({"detail": detail}, status)

    for error in (InvalidImage, NoDigitFound, TooManyDigits, StoreUnavailable, RecordNotFound):
        app.add_exception_handler(error, on_engine_error)

    async def on_unexpected(_request: Request, _exc: Exception) -> JSONResponse:
        # Starlette still logs the traceback server-side; the client never sees it.
        return JSONResponse({"detail": "internal error"}, 500)

    app.add_exception_handler(Exception, on_unexpected)

    def store() -> Store:
        return provider.get()

    # Predictions get worker threads of their own, at most PREDICT_THREADS at once: enough to keep
    # 2 cores busy while some wait on the database, within the Store's pool of 10 connections (more
    # threads made it open and close a PostgreSQL connection per request under load), and never
    # the thread tokens Streamlit's file serving and the other endpoints draw on.
    predict_slots = CapacityLimiter(PREDICT_THREADS)

    def authorised(authorization: Annotated[str | None, Header()] = None) -> None:
        token = get_settings().api_token
        if token is None:
            return
        scheme, _, given = (authorization or "").partition(" ")
        # compare_digest: the time taken must not reveal how much of the token matched.
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise HTTPException(
                401, "a valid 'Authorization: Bearer <token>' header is required", {"WWW-Authenticate": "Bearer"}
            )

    # ------------------------------------------------------------ the original contract

    @app.get("/image-predict", tags=["original"])
    def image_predict_sample() -> dict[str, Any]:
        """How to call POST /image-predict, with a sample body that works as is."""
        return {
            "how_to": "POST this JSON to /image-predict: 'image' is the base64 of a PNG/JPEG/... file, "
            "'filename' is optional; the answer holds 'prediction' and 'img_shape'.",
            "sample": {"image": SAMPLE_IMAGE_BASE64, "filename": "request_test.png"},
        }

    @app.post(
        "/image-predict",
        tags=["original"],
        response_model=PredictionResult,
        responses={400: {}, 413: {}, 415: {}, 422: {}},
    )
    async def image_predict(body: ImagePredictRequest) -> JSONResponse:
        """Predict the digit in a base64 image and keep it in the history (source 'api')."""
        result = await to_thread.run_sync(predict_base64, body, limiter=predict_slots)
        # The hot path: a ready response skips re-validating our own dict against the model (documented above).
        return JSONResponse(result)

    def predict_base64(body: ImagePredictRequest) -> dict[str, Any]:
        image = decode_base64_image(body.image)
        current = provider.get_or_none()
        outcome = predict_and_save(image, source=API_SOURCE, filename=body.filename, store=current)
        return result_of(outcome if current is not None else replace(outcome, warning=NOT_SAVED))

    # ------------------------------------------------------------ v1

    @app.post(
        "/api/v1/predictions",
        tags=["predictions"],
        response_model=list[BatchPrediction | BatchError],
        response_model_exclude_unset=True,
    )
    async def create_predictions(
        file: Annotated[list[UploadFile], File(description="One or more image files, each in a 'file' part")],
    ) -> list[dict[str, Any]]:
        """Predict every uploaded file with one forward pass; a bad file gets its own error entry."""
        if len(file) > MAX_FILES_PER_REQUEST:
            raise HTTPException(422, f"at most {MAX_FILES_PER_REQUEST} files per request")
        return await to_thread.run_sync(predict_uploads, file, limiter=predict_slots)

    def predict_uploads(file: list[UploadFile]) -> list[dict[str, Any]]:
        images = [(upload.filename, upload.file.read()) for upload in file]  # spooled: may be on disk
        current = provider.get_or_none()
        outcomes = predict_many_and_save(images, source=API_SOURCE, store=current)
        results = []
        for (filename, _), outcome in zip(images, outcomes, strict=True):
            if isinstance(outcome, Exception):
                status, detail = status_of(outcome)
                results.append({"filename": filename, "error": {"status": status, "detail": detail}})
            else:
                if current is None:
                    outcome = replace(outcome, warning=NOT_SAVED)
                results.append({"filename": filename, **result_of(outcome)})
        return results

    @app.post(
        "/api/v1/numbers",
        tags=["numbers"],
        response_model=NumberResult,
        response_model_exclude_unset=True,
        responses={400: {}, 413: {}, 415: {}, 422: {}},
    )
    async def read_number(body: ImagePredictRequest) -> dict[str, Any]:
        """Read the whole number (1-12 digits) in a base64 image; kept in the history as one row (source 'number')."""
        return await to_thread.run_sync(read_base64_number, body, limiter=predict_slots)

    def read_base64_number(body: ImagePredictRequest) -> dict[str, Any]:
        image = decode_base64_image(body.image)
        current = provider.get_or_none()
        outcome = read_number_and_save(image, filename=body.filename, store=current)
        return number_result_of(outcome if current is not None else replace(outcome, warning=NOT_SAVED))

    @app.get("/api/v1/predictions", tags=["predictions"], response_model=ItemPage)
    def list_predictions(
        db: Annotated[Store, Depends(store)],
        offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        digit: Annotated[int | None, Query(ge=0, le=9)] = None,
        source: Annotated[Literal[SOURCES] | None, Query()] = None,
        labelled: Annotated[bool | None, Query()] = None,
    ) -> dict[str, Any]:
        """History, newest first, optionally filtered by predicted digit, source and whether it has a label."""
        page = db.page(offset, limit, Filters(digit=digit, source=source, labelled=labelled))
        return {"items": [item_of(r) for r in page.items], "total": page.total}

    @app.get("/api/v1/predictions/{record_id}", tags=["predictions"], response_model=Item)
    def get_prediction(record_id: RecordId, db: Annotated[Store, Depends(store)]) -> dict[str, Any]:
        """One history row."""
        return item_of(db.get(record_id))

    @app.get(
        "/api/v1/predictions/{record_id}/input.png",
        tags=["predictions"],
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}},
    )
    def get_model_input(
        record_id: RecordId,
        db: Annotated[Store, Depends(store)],
        scale: Annotated[int, Query(ge=1, le=20, description="Enlarge by this factor (nearest neighbour)")] = 1,
    ) -> Response:
        """The 28x28 image the model saw, as PNG."""
        image = Image.fromarray(db.get(record_id).model_input)  # (28, 28) uint8 -> mode L
        if scale > 1:
            image = image.resize((28 * scale, 28 * scale), Image.Resampling.NEAREST)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return Response(buffer.getvalue(), media_type="image/png")

    @app.patch(
        "/api/v1/predictions/{record_id}",
        tags=["predictions"],
        response_model=Item,
        dependencies=[Depends(authorised)],
    )
    def set_label(record_id: RecordId, body: LabelUpdate, db: Annotated[Store, Depends(store)]) -> dict[str, Any]:
        """Record the true digit (0-9), or clear it with null. Needs the bearer token when MNIST_API_TOKEN is set."""
        return item_of(db.set_label(record_id, body.label))

    @app.delete(
        "/api/v1/predictions/{record_id}",
        tags=["predictions"],
        status_code=204,
        response_class=Response,
        dependencies=[Depends(authorised)],
    )
    def delete_prediction(record_id: RecordId, db: Annotated[Store, Depends(store)]) -> Response:
        """Remove one history row. Needs the bearer token when MNIST_API_TOKEN is set."""
        db.delete(record_id)
        return Response(status_code=204)

    @app.get("/api/v1/stats", tags=["history"], response_model=StatsOut)
    def stats(db: Annotated[Store, Depends(store)]) -> dict[str, Any]:
        """Totals per digit and source, mean confidence, accuracy on labelled rows, confusion matrix."""
        return asdict(db.stats())

    @app.get("/api/v1/health", tags=["health"], response_model=Health)
    def health() -> dict[str, Any]:
        """The models' versions and whether the history database answers."""
        try:
            versions = {"model_version": get_predictor().model_version, "reader_version": get_reader().version}
        except (OSError, RuntimeError) as exc:
            raise HTTPException(503, "a model is not loaded (weights missing or unreadable)") from exc
        current = provider.get_or_none()
        database = "ok" if current is not None and current.ping() else "unavailable"
        return {"status": "ok", **versions, "database": database}

    return app


def warm_up(provider: StoreProvider) -> None:
    """Load the model and migrate the database before the first request; neither failure stops the server."""
    # Requests already run in parallel threads; intra-op threads on top of that only spin against each
    # other (measured on 2 busy cores: ~30 ms CPU per single-image forward with 2 threads, ~1 ms with 1).
    torch.set_num_threads(1)
    try:
        get_predictor()
        get_reader()
    except (OSError, RuntimeError) as exc:  # missing or unreadable weights: /api/v1/health will say so
        log.warning("Model not loaded at startup: %s", exc)
    provider.get_or_none()


app = create_app()
