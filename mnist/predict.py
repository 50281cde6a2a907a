"""Shipped weights -> Prediction. The model loads once per process; inference is thread-safe."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from mnist.config import NUMBER_CLASSIFIER_PATH, WEIGHTS_PATH
from mnist.model import CLASSES, NOT_A_DIGIT, SEVERAL_DIGITS, Net, class_probabilities
from mnist.preprocess import ImageInput, View, candidate_views
from mnist.results import Prediction


def model_version_of(weights_path: Path) -> str:
    """First 12 hex digits of the weights file's sha256: changes whenever the weights do."""
    return hashlib.sha256(weights_path.read_bytes()).hexdigest()[:12]


def read_weights(weights_path: Path) -> dict[str, torch.Tensor]:
    """A plain state dict (tensors only: weights_only, never pickle)."""
    return torch.load(weights_path, map_location="cpu", weights_only=True)


def load_weights(net: torch.nn.Module, weights_path: Path, state: dict[str, torch.Tensor] | None = None) -> str:
    """Load the weights (`state`, if already read) into `net`, in eval mode; -> their version.

    Weights saved before calibration existed lack the temperature and thresholds: they keep the defaults."""
    state = read_weights(weights_path) if state is None else state
    missing, unexpected = net.load_state_dict(state, strict=False)
    if unexpected or set(missing) - CALIBRATION:
        raise RuntimeError(f"{weights_path.name} does not fit the network: missing {missing}, unexpected {unexpected}")
    net.eval()
    return model_version_of(weights_path)


CALIBRATION = {"temperature", "unsure_below", "not_a_digit_from"}  # buffers chosen after training


class Predictor:
    """A loaded network. Forward passes in eval/inference mode mutate nothing, so threads may share it."""

    def __init__(self, weights_path: Path = WEIGHTS_PATH) -> None:
        state = read_weights(weights_path)
        self.net = Net(classes=int(state["head.6.weight"].shape[0]))  # 10 digits, or 12 with the verdict classes
        self.model_version = load_weights(self.net, weights_path, state)

    def probabilities(self, model_inputs: Sequence[np.ndarray]) -> np.ndarray:
        """28x28 uint8 arrays -> (N, 12) calibrated probabilities (ten digits, not a digit, several), one pass."""
        batch = torch.from_numpy(np.stack([np.asarray(m, dtype=np.uint8) for m in model_inputs]))
        with torch.inference_mode():
            probs = class_probabilities(self.net, batch).numpy().astype(np.float64)
        probs /= probs.sum(axis=1, keepdims=True)  # exact sum to 1 after float32 rounding
        return np.pad(probs, ((0, 0), (0, CLASSES - probs.shape[1])))  # the ten-digit classifier: no verdict classes

    def classify(self, model_inputs: Sequence[np.ndarray], boxes: Sequence | None = None) -> list[Prediction]:
        """Already-preprocessed 28x28 uint8 arrays -> predictions, in one forward pass."""
        if len(model_inputs) == 0:
            return []
        probs = self.probabilities(model_inputs)
        boxes = boxes if boxes is not None else [None] * len(model_inputs)
        return [self._prediction(p, m, box) for p, m, box in zip(probs, model_inputs, boxes, strict=True)]

    def read(self, views_per_image: Sequence[Sequence[View]]) -> list[Prediction]:
        """Each image's candidate views (see preprocess.candidate_views) -> one prediction per image.

        All views of all images go through one forward pass. Each image is read from the view the
        network reads a digit in most surely (the wrong polarity or a view that lost the digit scores low
        there: it was taught to call those "not a digit"); any view that shows several digits says so.
        """
        flat = [v for views in views_per_image for v in views]
        if not flat:
            return []
        probs = self.probabilities([v.model_input for v in flat])
        out, start = [], 0
        for views in views_per_image:
            p = probs[start : start + len(views)]
            start += len(views)
            best = int(p[:, :10].max(axis=1).argmax())
            view = views[best]
            out.append(self._prediction(p[best], view.model_input, view.box, float(p[:, SEVERAL_DIGITS].max())))
        return out

    def _prediction(self, p: np.ndarray, model_input: np.ndarray, box, several: float | None = None) -> Prediction:
        """One row of class probabilities -> the digit (given it is one), its confidence and the verdict."""
        digits = p[:10] / max(float(p[:10].sum()), 1e-12)
        not_a_digit = float(p[NOT_A_DIGIT])
        several = float(p[SEVERAL_DIGITS]) if several is None else several
        return Prediction(
            digit=int(digits.argmax()),
            confidence=float(digits.max()),
            probabilities=[float(v) for v in digits],
            model_input=np.asarray(model_input, dtype=np.uint8),
            model_version=self.model_version,
            box=box,
            verdict=verdict(float(p[:10].sum()), not_a_digit, several, float(digits.max()), self.thresholds),
        )

    @property
    def thresholds(self) -> tuple[float, float]:
        """(unsure below this confidence, not a digit from this share), both chosen on validation data."""
        return float(self.net.unsure_below), float(self.net.not_a_digit_from)


def verdict(
    digit_mass: float, not_a_digit: float, several: float, confidence: float, thresholds: tuple[float, float]
) -> str:
    """What the picture is: several digits when any view more likely shows several than not (`several` is the
    highest over the views: the view that keeps all the ink sees them, the one cut to the main digit does
    not); not a digit when the chosen view gives that class a large enough share of it and the digits; else
    a digit, sure or not."""
    unsure_below, not_a_digit_from = thresholds
    if several >= 0.5:
        return "several_digits"
    if not_a_digit >= not_a_digit_from * (not_a_digit + digit_mass):
        return "not_a_digit"
    return "unsure" if confidence < unsure_below else "digit"


T = TypeVar("T")


def load_once(load: Callable[[], T]) -> Callable[[], T]:
    """A getter that calls `load` on first use and then returns its result (double-checked under a lock)."""
    loaded: list[T] = []
    lock = threading.Lock()

    def get() -> T:
        if not loaded:
            with lock:
                if not loaded:
                    loaded.append(load())
        return loaded[0]

    return get


get_predictor = load_once(Predictor)
get_predictor.__doc__ = "The process-wide predictor, loaded on first use."
get_number_classifier = load_once(lambda: Predictor(NUMBER_CLASSIFIER_PATH))
get_number_classifier.__doc__ = "The classifier the number reader scores its segments with, loaded on first use."


def predict(image: ImageInput) -> Prediction:
    """Any image `preprocess` accepts -> the digit it shows. Raises InvalidImage / NoDigitFound."""
    return predict_batch([image])[0]


def predict_batch(images: Sequence[ImageInput]) -> list[Prediction]:
    """Many images -> predictions with one forward pass. Any bad image raises; see `read` for per-item handling."""
    return get_predictor().read([candidate_views(image) for image in images])
