"""The API's typed bodies, and the functions that turn the engine's results into them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    Tag,
)

from mnist.results import NOT_SAVED, SAVE_FAILURES, VERDICTS, NumberOutcome, Outcome
from mnist.store import MODEL_STATUSES, ModelVersion, Record


class ErrorOut(BaseModel):
    """Every error answer: one sentence saying what was wrong (never a traceback)."""

    detail: str


# What each error status means wherever it is answered (README's error table says the same).
ERRORS = {
    400: "The body is not valid JSON or multipart, the image not valid base64 or not an image, or "
    "Content-Length is not a number",
    401: "PATCH, DELETE and the /api/v1/models operations need `Authorization: Bearer <MNIST_API_TOKEN>` when "
    "that token is set",
    403: "A write from a browser page on another origin that MNIST_ALLOWED_ORIGINS does not list",
    404: "No history row has that id, or no model version that name",
    408: "The request body stalled: no data for MNIST_BODY_TIMEOUT seconds, or not all of it within 60 s",
    413: "The body, the image file or its pixels are over their limit",
    415: "An image format that is not accepted (PNG, JPEG, GIF, BMP, WEBP, TIFF and HEIC/HEIF are)",
    409: "A fine-tune is already training (one at a time); the version has no weights (training or failed); or "
    "the gate refused the version (the detail gives its reasons; force overrides it)",
    422: "A missing or invalid field, parameter or header; no digit found; more than 12 digits; an "
    "Idempotency-Key reused for a different request; a fine-tune with no labelled rows to learn from",
    503: "The history database is unavailable (history reads and changes, the model registry), a model is not "
    "loaded (health), or MNIST's training files are missing (a fine-tune replays them)",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """A route's `responses=`: the error statuses it can answer, each with the ErrorOut body."""
    return {status: {"model": ErrorOut, "description": ERRORS[status]} for status in statuses}


# OpenAPI links from an answer's `id` to what can be done with that row: clients (and schemathesis's
# stateful phase) can follow a saved prediction to reading, labelling and deleting it.
ROW_LINKS = {
    200: {
        "links": {
            name: {"operationId": operation, "parameters": {"record_id": "$response.body#/id"}}
            for name, operation in (
                ("GetRow", "get_prediction"),
                ("GetModelInput", "get_model_input"),
                ("SetLabel", "set_label"),
                ("DeleteRow", "delete_prediction"),
            )
        }
    }
}


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


class ImagePredictRequest(BaseModel):
    """The original client's body: base64 image bytes and an optional display name."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"image": SAMPLE_IMAGE_BASE64, "filename": "request_test.png"}]}
    )

    image: str = Field(
        min_length=1, description="Base64 of an image file; a `data:image/...;base64,` prefix is accepted."
    )
    filename: str | None = Field(None, description="Shown in the history; never used as a path.")


class ImagePredictSample(ImagePredictRequest):
    """GET /image-predict: a body POST /image-predict accepts as it is, and how to send it."""

    how_to: str


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
    """One history row as the API shows it: a digit, or a whole number (predicted_text set)."""

    id: int
    created_at: datetime
    source: str
    filename: str | None
    prediction: int = Field(
        description="The digit read; for a number, its least certain digit (whose confidence and probabilities "
        "these are, and whose input input.png is)"
    )
    predicted_text: str | None = Field(description='A number\'s digits as read, e.g. "4096"; null on a digit row')
    text: str = Field(description='What was read, either kind: a number\'s digits, or the digit ("7")')
    confidence: float
    probabilities: list[float]
    label: int | None = Field(
        description="A digit row's true digit; null while unlabelled, and on number rows (their label is label_text)"
    )
    label_text: str | None = Field(
        description="The true text, either kind: a number row's label, a digit row's digit as text; null while "
        "unlabelled"
    )
    model_version: str
    verdict: Literal[VERDICTS]


class ItemPage(BaseModel):
    """A page of history, newest first, and how many rows match in all."""

    items: list[Item]
    total: int


class StatsOut(BaseModel):
    """Counts, mean confidence, accuracy on labelled digits and the confusion matrix (rows = label).

    A number row counts once in the row figures and once per digit in the digit figures; a labelled
    number is compared with what was read place by place, when the two have as many digits.
    """

    total: int = Field(description="Rows")
    per_digit: list[int] = Field(
        description="Digits read, 0 to 9: a digit row adds one to its digit, a number row one to each of its "
        'digits ("4096" to 4, 0, 9 and 6)'
    )
    per_source: dict[str, int] = Field(description="Rows per source")
    mean_confidence: float | None = Field(description="Mean over rows (a number's is its least certain digit's)")
    labelled: int = Field(
        description="Labelled digits in the confusion matrix: one per labelled digit row, and one per place of "
        "a labelled number whose label has as many digits as were read"
    )
    correct: int = Field(description="Labelled digits read right (the matrix's diagonal)")
    accuracy: float | None = Field(description="correct / labelled; null when nothing is labelled")
    confusion: list[list[int]] = Field(description="confusion[true digit][digit read], over the labelled digits")
    labelled_rows: int = Field(description="Rows with a label of either kind")
    mismatched_length: int = Field(
        description="Labelled numbers whose label has more or fewer digits than were read: not in the matrix"
    )


def _whole_number(value: object) -> object:
    """JSON Schema's integer takes 3.0 as well as 3 (never "3" or true): so does the API."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _label_kind(value: object) -> str:
    """A JSON string is a number's text, null clears, anything else had better be a digit: one error, not three."""
    return "text" if isinstance(value, str) else "null" if value is None else "digit"


DigitLabel = Annotated[StrictInt, Field(ge=0, le=9), BeforeValidator(_whole_number)]
TextLabel = Annotated[StrictStr, Field(pattern=r"^[0-9]{1,64}$")]
Label = Annotated[
    Annotated[DigitLabel, Tag("digit")] | Annotated[TextLabel, Tag("text")] | Annotated[None, Tag("null")],
    Discriminator(_label_kind),
]


class LabelUpdate(BaseModel):
    """What a row really shows, or null to clear its label."""

    label: Label = Field(
        description="A digit row's true digit, 0-9 (also as a one-digit string, \"7\"); a number row's true text, "
        'a string of 1-64 digits ("4096"; leading zeros are kept); null clears the label. A label of the other '
        "kind than the row's is a 422."
    )


class FineTuneRequest(BaseModel):
    """How to fine-tune the active version on the labelled history (every field may be left out)."""

    epochs: Annotated[StrictInt, BeforeValidator(_whole_number)] | None = Field(
        None, ge=1, le=100, description="Passes over the labelled rows (default 12; at most 1,500 steps in all)"
    )


class ActivateRequest(BaseModel):
    """Whether to override the gate."""

    force: StrictBool = Field(
        False,
        description="Activate even though the gate refused the version (logged, and noted as gate.forced_at). "
        "A version that has served before, or the shipped one, needs no force.",
    )


class ModelOut(BaseModel):
    """One version of the digit classifier in the registry."""

    version: str = Field(description="What every prediction row made by it records as model_version")
    parent: str | None = Field(description="The version it was fine-tuned from; null for the shipped weights")
    shipped: bool = Field(description="The shipped weights (version zero), always there to roll back to")
    status: Literal[MODEL_STATUSES] = Field(
        description="training; ready (trained, never served); failed (error says why); active (served by every app "
        "process); retired (served before)"
    )
    progress: float = Field(description="0 to 1 while training; 1 once trained")
    stage: str | None = Field(description='What a training job is doing now, e.g. "training: step 120 of 600"')
    created_at: datetime
    finished_at: datetime | None
    activated_at: datetime | None = Field(description="When it last became the active version")
    rows_trained_on: int | None = Field(description="Labelled history rows it learnt from (the holdout's excluded)")
    recipe: dict[str, Any] = Field(description="How it was made: epochs, seed, learning rate, replay, frozen layers")
    metrics: dict[str, Any] | None = Field(
        description="Its figures: holdout, mnist and redrawn, each with accuracy, errors, count, "
        "per_class_accuracy, confusion_matrix (rows: true digit) and verdicts; examples, steps and seconds"
    )
    gate: dict[str, Any] | None = Field(
        description="passed, reasons (why not), parent, holdout_gain_points, mnist_change_points and "
        "parent_metrics (the parent measured on the same sets); forced_at when activated by force"
    )
    error: str | None = Field(description="Why a failed version failed")


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


def model_of(model: ModelVersion) -> dict[str, Any]:
    """A registry ModelVersion -> the API's model fields."""
    fields = ("version", "parent", "status", "progress", "stage", "created_at", "finished_at", "activated_at")
    fields += ("rows_trained_on", "recipe", "metrics", "gate", "error")
    return {name: getattr(model, name) for name in fields} | {"shipped": model.is_shipped}


def item_of(record: Record) -> dict[str, Any]:
    """A store Record -> the API's item fields (never the image bytes)."""
    return {
        "id": record.id,
        "created_at": record.created_at,
        "source": record.source,
        "filename": record.filename,
        "prediction": record.digit,
        "predicted_text": record.predicted_text,
        "text": record.text,
        "confidence": record.confidence,
        "probabilities": record.probabilities,
        "label": record.label,
        "label_text": record.label_text,
        "model_version": record.model_version,
        "verdict": record.verdict,
    }
