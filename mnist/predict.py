"""Shipped weights -> Prediction. The model loads once per process; inference is thread-safe."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from mnist.config import WEIGHTS_PATH
from mnist.model import Net, log_probabilities
from mnist.preprocess import ImageInput, preprocess
from mnist.results import Prediction


def model_version_of(weights_path: Path) -> str:
    """First 12 hex digits of the weights file's sha256: changes whenever the weights do."""
    return hashlib.sha256(weights_path.read_bytes()).hexdigest()[:12]


def load_weights(net: torch.nn.Module, weights_path: Path) -> str:
    """Load a plain state dict (tensors only: weights_only, never pickle) into `net`, in eval mode; -> its version."""
    net.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
    net.eval()
    return model_version_of(weights_path)


class Predictor:
    """A loaded network. Forward passes in eval/inference mode mutate nothing, so threads may share it."""

    def __init__(self, weights_path: Path = WEIGHTS_PATH) -> None:
        self.net = Net()
        self.model_version = load_weights(self.net, weights_path)

    def classify(self, model_inputs: Sequence[np.ndarray], boxes: Sequence | None = None) -> list[Prediction]:
        """Already-preprocessed 28x28 uint8 arrays -> predictions, in one forward pass."""
        if len(model_inputs) == 0:
            return []
        batch = torch.from_numpy(np.stack([np.asarray(m, dtype=np.uint8) for m in model_inputs]))
        with torch.inference_mode():
            probs = log_probabilities(self.net, batch).exp_().numpy().astype(np.float64)
        probs /= probs.sum(axis=1, keepdims=True)  # exact sum to 1 after float32 rounding
        boxes = boxes if boxes is not None else [None] * len(model_inputs)
        return [
            Prediction(
                digit=int(p.argmax()),
                confidence=float(p.max()),
                probabilities=[float(v) for v in p],
                model_input=np.asarray(m, dtype=np.uint8),
                model_version=self.model_version,
                box=box,
            )
            for p, m, box in zip(probs, model_inputs, boxes, strict=True)
        ]


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


def predict(image: ImageInput) -> Prediction:
    """Any image `preprocess` accepts -> the digit it shows. Raises InvalidImage / NoDigitFound."""
    return predict_batch([image])[0]


def predict_batch(images: Sequence[ImageInput]) -> list[Prediction]:
    """Many images -> predictions with one forward pass. Any bad image raises; see `classify` for per-item handling."""
    prepared = [preprocess(image) for image in images]
    return get_predictor().classify([p.model_input for p in prepared], [p.box for p in prepared])
