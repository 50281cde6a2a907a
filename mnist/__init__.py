"""Handwritten-digit recognition engine: preprocessing, model, prediction, history store, API.

Never imports streamlit; the dashboard and the API both call into here. This top level stays light
(errors and plain result types, no torch), so `import mnist.store` or `import mnist.errors` costs
what those modules cost. The model lives in mnist.predict, numbers in mnist.numbers.
"""

from mnist.errors import (
    EngineError,
    ImageTooLarge,
    InvalidImage,
    NoDigitFound,
    RecordNotFound,
    StoreUnavailable,
    TooManyDigits,
    UnsupportedImageType,
)
from mnist.results import NumberOutcome, NumberReading, Outcome, Prediction

__all__ = [
    "EngineError",
    "ImageTooLarge",
    "InvalidImage",
    "NoDigitFound",
    "NumberOutcome",
    "NumberReading",
    "Outcome",
    "Prediction",
    "RecordNotFound",
    "StoreUnavailable",
    "TooManyDigits",
    "UnsupportedImageType",
]
