"""Plain result types the engine hands out: no torch here, so the store and the pages can name them cheaply."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NOT_SAVED = "The history database is unavailable: this prediction was not saved."
HISTORY_OFF = "The history is off (DATABASE_URL is not a valid database URL): this prediction was not saved."
# Why a prediction was not saved (mnist.errors.StoreUnavailable.reason): Outcome.reason, the API's "reason".
SAVE_FAILURES = ("timeout", "outage", "unavailable", "off")
# What the engine makes of a picture handed in as one digit (Prediction.verdict).
VERDICTS = ("digit", "unsure", "not_a_digit", "several_digits")


@dataclass(frozen=True)
class Prediction:
    """What the model said about one image, and the 28x28 input it saw."""

    digit: int
    confidence: float
    probabilities: list[float]
    model_input: np.ndarray  # (28, 28) uint8, white ink on black
    model_version: str
    box: tuple[int, int, int, int] | None = None  # ink crop (x0, y0, x1, y1) in input pixels
    verdict: str = "digit"  # one of VERDICTS: a sure digit, an unsure one, not a digit, several digits


@dataclass(frozen=True)
class NumberReading:
    """A whole number read from an image: its text, and each digit with its box in input pixels."""

    text: str
    digits: list[Prediction]  # left to right
    boxes: list[tuple[int, int, int, int]]  # (x0, y0, x1, y1) in input pixels, x1/y1 exclusive
    confidence: float  # the weakest digit's: a number is only as sure as its least sure digit

    @property
    def digit_inputs(self) -> np.ndarray:
        """(n, 28, 28) uint8: each digit's input, left to right, exactly as the model saw it."""
        return np.stack([d.model_input for d in self.digits])


@dataclass(frozen=True)
class Outcome:
    """A prediction and what became of it in the history."""

    prediction: Prediction
    record_id: int | None
    saved: bool
    warning: str | None = None
    reason: str | None = None  # one of SAVE_FAILURES when not saved


@dataclass(frozen=True)
class NumberOutcome:
    """A number read from an image and what became of it in the history."""

    reading: NumberReading
    record_id: int | None
    saved: bool
    warning: str | None = None
    reason: str | None = None  # one of SAVE_FAILURES when not saved
