"""Handwritten-digit recognition engine: preprocessing, model, prediction, history store, API.

Never imports streamlit; the dashboard and the API both call into here.
"""

from mnist.errors import (
    ImageTooLarge,
    InvalidImage,
    NoDigitFound,
    StoreUnavailable,
    TooManyDigits,
    UnsupportedImageType,
)
from mnist.numbers import NumberReading, read_number
from mnist.predict import Prediction, get_predictor, predict, predict_batch
from mnist.preprocess import Preprocessed, preprocess

__all__ = [
    "ImageTooLarge",
    "InvalidImage",
    "NoDigitFound",
    "NumberReading",
    "Prediction",
    "Preprocessed",
    "StoreUnavailable",
    "TooManyDigits",
    "UnsupportedImageType",
    "get_predictor",
    "predict",
    "predict_batch",
    "preprocess",
    "read_number",
]
