"""The API's typed bodies, and the functions that turn the engine's results into them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictInt

from mnist.results import NOT_SAVED, SAVE_FAILURES, VERDICTS, NumberOutcome, Outcome
from mnist.store import Record


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
    verdict: Literal[VERDICTS] = Field(
        description='"digit"; "unsure" (a digit, read with too little confidence); "not_a_digit"; "several_digits"'
    )
    id: int | None
    saved: bool
    warning: str | None = None  # present only when the prediction was not saved
    reason: Literal[SAVE_FAILURES] | None = Field(None, description="Why it was not saved (present only then)")


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
    reason: Literal[SAVE_FAILURES] | None = Field(None, description="Why it was not saved (present only then)")


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
    verdict: Literal[VERDICTS]


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


# ---------------------------------------------------------------- engine results -> answers


def history_fields(outcome: Outcome | NumberOutcome) -> dict[str, Any]:
    """Where the answer went in the history: its id, whether it was saved, and why not."""
    out: dict[str, Any] = {"id": outcome.record_id, "saved": outcome.saved}
    if not outcome.saved:
        out["warning"] = outcome.warning or NOT_SAVED
        out["reason"] = outcome.reason or "unavailable"
    return out


def result_of(outcome: Outcome) -> dict[str, Any]:
    """The original contract's answer, extended with confidence, probabilities and the history id."""
    p = outcome.prediction
    out = {
        "prediction": p.digit,
        "img_shape": list(p.model_input.shape),
        "confidence": p.confidence,
        "probabilities": p.probabilities,
        "verdict": p.verdict,
    }
    return out | history_fields(outcome)


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
        "verdict": record.verdict,
    }
