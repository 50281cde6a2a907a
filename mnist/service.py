"""The one call pages and the API make: predict, then try to keep it in the history.

A prediction never depends on the database: when saving fails the caller still
gets the digit (or the number), with saved=False, a warning it can show and the
reason's class, and the failure is logged. The store waits for the database a
bounded time (mnist.store), so a hung database costs a prediction that, no more.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from mnist import logs, metrics
from mnist.errors import EngineError, StoreUnavailable
from mnist.numbers import read_number
from mnist.predict import get_predictor
from mnist.preprocess import ImageInput, candidate_views, load_image, number_thumbnail_png, thumbnail_png
from mnist.results import HISTORY_OFF, NOT_SAVED, NumberOutcome, NumberReading, Outcome, Prediction
from mnist.store import Store, StoreProvider

NUMBER_SOURCE = "number"
WIDE = 2.0  # ink at least this many times wider than tall is read as a number (see read_many)
log = logging.getLogger(__name__)
# Where a prediction is kept: a Store, the provider that hands out the migrated one (the API and the
# pages), or None when there is no history at all.
History = Store | StoreProvider | None


@dataclass(frozen=True)
class Idempotency:
    """A client's Idempotency-Key for one request: a retry with it finds the rows the first try made.

    `scope` (the endpoint) keeps the same key on two endpoints apart; `digest` (of what was sent) tells a
    retry from a different request under the same key. A retry is read again by the same model, so its
    answer is the first one; its rows are the first one's (none is added).
    """

    key: str
    scope: str
    digest: str

    @classmethod
    def of(cls, key: str | None, scope: str, *parts: bytes) -> Idempotency | None:
        """The request's Idempotency, its digest over `parts` (each length-prefixed); None without a key."""
        if key is None:
            return None
        digest = hashlib.sha256()
        for part in parts:
            digest.update(len(part).to_bytes(8, "big") + part)
        return cls(key, scope, digest.hexdigest())

    def row(self, index: int) -> tuple[str, str]:
        """(idempotency_key, request_digest) of the request's `index`-th row (a batch makes several)."""
        return hashlib.sha256(json.dumps([self.scope, index, self.key]).encode()).hexdigest(), self.digest


def _store_of(history: History) -> Store:
    """The store to save in, or StoreUnavailable saying why there is none now."""
    if isinstance(history, StoreProvider):
        return history.get()
    if history is None:
        raise StoreUnavailable("the history is off (DATABASE_URL is not usable)", "off")
    return history


def save_prediction(
    store: History,
    prediction: Prediction,
    image: ImageInput,
    *,
    source: str,
    filename: str | None,
    latency_ms: float,
    predicted_text: str | None = None,
    idempotency: tuple[str, str] | None = None,
    digit_inputs: bytes | None = None,
    thumbnail: bytes | None = None,
) -> Outcome:
    """Try to store one prediction with a thumbnail of its input (thumbnail_png's, unless given); an outage
    becomes a warning (and a log line)."""
    try:
        record_id = _store_of(store).save(
            prediction,
            source=source,
            filename=filename,
            original=thumbnail_png(image) if thumbnail is None else thumbnail,
            latency_ms=latency_ms,
            predicted_text=predicted_text,
            idempotency=idempotency,
            digit_inputs=digit_inputs,
        )
    except StoreUnavailable as exc:
        metrics.SAVES_FAILED.labels(exc.reason).inc()
        logs.event(
            log, "prediction_not_saved", level=logging.WARNING, source=source, reason=exc.reason, detail=str(exc)
        )
        return Outcome(prediction, None, False, HISTORY_OFF if exc.reason == "off" else NOT_SAVED, exc.reason)
    return Outcome(prediction, record_id, True, None)


def predict_and_save(
    image: ImageInput,
    *,
    source: str,
    filename: str | None = None,
    store: History,
    idempotency: Idempotency | None = None,
) -> Outcome:
    """Preprocess and predict one image (InvalidImage / NoDigitFound propagate), then save it."""
    images = [(filename, image)]
    return predict_many_and_save(images, source=source, store=store, raise_errors=True, idempotency=idempotency)[0]


def _decode_and_predict(
    images: Sequence[ImageInput], *, raise_errors: bool
) -> tuple[list[ImageInput | EngineError], Iterator[tuple[Prediction, float]]]:
    """Each image decoded once (the views and the thumbnail both use it), then one forward pass over all.

    A bad image becomes its own EngineError entry (InvalidImage, NoDigitFound: a bug elsewhere is not
    this file's fault) unless `raise_errors`; the good ones' predictions follow in order, each with the
    width / height of its widest view's ink.
    """
    decoded: list[ImageInput | EngineError] = []
    views = []
    for image in images:
        try:
            loaded = load_image(image)
            views.append(candidate_views(loaded))
            decoded.append(loaded)
        except EngineError as exc:
            if raise_errors:
                raise
            decoded.append(exc)
    predictions = get_predictor().read(views)
    for prediction in predictions:
        metrics.PREDICTIONS.labels(prediction.verdict).inc()
    aspects = [max((v.box[2] - v.box[0]) / max(v.box[3] - v.box[1], 1) for v in each) for each in views]
    return decoded, zip(predictions, aspects, strict=True)


def predict_many_and_save(
    images: Sequence[tuple[str | None, ImageInput]],
    *,
    source: str,
    store: History,
    raise_errors: bool = False,
    idempotency: Idempotency | None = None,
) -> list[Outcome | EngineError]:
    """Many (filename, image) pairs with one forward pass; a bad image becomes its own error entry."""
    started = time.perf_counter()
    decoded, predictions = _decode_and_predict([image for _, image in images], raise_errors=raise_errors)
    latency_ms = (time.perf_counter() - started) * 1000 / max(len(images), 1)
    results: list[Outcome | EngineError] = []
    for index, ((filename, _), loaded) in enumerate(zip(images, decoded, strict=True)):
        if isinstance(loaded, EngineError):
            results.append(loaded)
            continue
        key = idempotency.row(index) if idempotency else None
        prediction, _ = next(predictions)
        results.append(
            save_prediction(
                store, prediction, loaded, source=source, filename=filename, latency_ms=latency_ms, idempotency=key
            )
        )
    return results


# ---------------------------------------------------------------- whole numbers


def representative(reading: NumberReading) -> Prediction:
    """The digit a number's history row fills its one-digit columns with: its least confident one (the first, on
    a tie).

    A row has one digit, model input and probability vector (the API's `prediction`, input.png). The
    weakest digit's explain the number's confidence (which is that digit's) and keep the row consistent
    (confidence = max(probabilities), the input is what those probabilities came from). The number itself
    is predicted_text, its label label_text, and every digit's input digit_inputs.
    """
    return min(reading.digits, key=lambda d: d.confidence)


def save_reading(
    store: History,
    reading: NumberReading,
    image: ImageInput,
    *,
    filename: str | None,
    latency_ms: float,
    idempotency: Idempotency | None = None,
) -> NumberOutcome:
    """Try to store a number as ONE history row (source "number", predicted_text = the number), with every
    digit's input and a thumbnail of the number itself (cropped to its digits: it shows whole in the History)."""
    outcome = save_prediction(
        store,
        representative(reading),
        image,
        source=NUMBER_SOURCE,
        filename=filename,
        latency_ms=latency_ms,
        predicted_text=reading.text,
        idempotency=idempotency.row(0) if idempotency else None,
        digit_inputs=reading.digit_inputs.tobytes(),
        thumbnail=number_thumbnail_png(image, reading.boxes),
    )
    return NumberOutcome(reading, outcome.record_id, outcome.saved, outcome.warning, outcome.reason)


def read_number_and_save(
    image: ImageInput, *, filename: str | None = None, store: History, idempotency: Idempotency | None = None
) -> NumberOutcome:
    """Read the whole number in an image (InvalidImage / NoDigitFound / TooManyDigits propagate), then save it."""
    started = time.perf_counter()
    loaded = load_image(image)  # decode once: the reading and the thumbnail both use it
    reading = read_number(loaded)
    latency_ms = (time.perf_counter() - started) * 1000
    return save_reading(store, reading, loaded, filename=filename, latency_ms=latency_ms, idempotency=idempotency)


# ---------------------------------------------------------------- whatever a picture holds


Reading = Prediction | NumberReading


def text_of(reading: Reading) -> str:
    """What was read, as text: "7" or "4096"."""
    return reading.text if isinstance(reading, NumberReading) else str(reading.digit)


def read_many(images: Sequence[ImageInput]) -> list[Reading | EngineError]:
    """Each picture read as the engine says: one digit, or the whole number when it holds several.

    The dashboard asks nobody to choose "digit" or "number" first. The classifier's verdict
    ("several_digits") sends a picture to the number reader; so does ink more than WIDE times wider
    than tall, because a long number squeezed into 28x28 pixels no longer looks like several digits
    to the classifier (0.06% of MNIST's training digits are that wide). Where the reader then finds
    a single digit the classifier's reading stands, "unsure" when it had said several digits (the two
    models disagree). A bad picture becomes its own error entry
    (InvalidImage, NoDigitFound, TooManyDigits); nothing is saved here.
    """
    decoded, predictions = _decode_and_predict(images, raise_errors=False)
    readings: list[Reading | EngineError] = []
    for loaded in decoded:
        if isinstance(loaded, EngineError):
            readings.append(loaded)
            continue
        prediction, aspect = next(predictions)
        if prediction.verdict == "several_digits":
            readings.append(_whole_number(loaded, replace(prediction, verdict="unsure")))
        elif aspect >= WIDE:
            readings.append(_whole_number(loaded, prediction))
        else:
            readings.append(prediction)
    return readings


def read(image: ImageInput) -> Reading:
    """One picture read as `read_many` does; its EngineError is raised."""
    reading = read_many([image])[0]
    if isinstance(reading, EngineError):
        raise reading
    return reading


def _whole_number(image: ImageInput, single: Prediction) -> Reading | EngineError:
    """The number in the picture, or `single` when the number reader finds only one digit there."""
    try:
        reading = read_number(image)
    except EngineError as exc:
        return exc
    return reading if len(reading.digits) > 1 else single


def save_read(
    store: History,
    reading: Reading,
    image: ImageInput,
    *,
    source: str,
    filename: str | None,
    latency_ms: float,
    idempotency: Idempotency | None = None,
) -> Outcome | NumberOutcome:
    """Keep a reading from `read`/`read_many`: a digit as one row of `source`, a number as one "number" row."""
    if isinstance(reading, NumberReading):
        return save_reading(store, reading, image, filename=filename, latency_ms=latency_ms, idempotency=idempotency)
    key = idempotency.row(0) if idempotency else None
    return save_prediction(
        store, reading, image, source=source, filename=filename, latency_ms=latency_ms, idempotency=key
    )
