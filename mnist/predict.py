"""Weights -> Prediction. The model loads once per process; inference is thread-safe.

The process serves one predictor at a time (get_predictor): the shipped weights until mnist.registry swaps in
the version the registry says is active (serve). A swap is one reference assignment: a call under way
finishes on the predictor it started with, the next one uses the new; none sees a half-loaded network.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from mnist.batching import BatchWorker
from mnist.config import NUMBER_CLASSIFIER_PATH, WEIGHTS_PATH
from mnist.model import CLASSES, NOT_A_DIGIT, SEVERAL_DIGITS, Net, class_probabilities, for_inference
from mnist.preprocess import ImageInput, View, candidate_views
from mnist.results import Prediction


def weights_version(data: bytes) -> str:
    """First 12 hex digits of the weights' sha256: changes whenever the weights do."""
    return hashlib.sha256(data).hexdigest()[:12]


def model_version_of(weights_path: Path) -> str:
    """The version of a weights file (weights_version of its bytes)."""
    return weights_version(weights_path.read_bytes())


def read_weights(weights_path: Path | bytes) -> dict[str, torch.Tensor]:
    """A plain state dict from a file or its bytes (tensors only: weights_only, never pickle)."""
    source = io.BytesIO(weights_path) if isinstance(weights_path, bytes) else weights_path
    return torch.load(source, map_location="cpu", weights_only=True)


def weights_bytes(state: dict[str, torch.Tensor]) -> bytes:
    """A state dict as the bytes torch.save writes to a weights file (read_weights reads them back)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def load_weights(net: torch.nn.Module, weights_path: Path, state: dict[str, torch.Tensor] | None = None) -> str:
    """Load the weights (`state`, if already read) into `net`, in eval mode; -> their version."""
    fit_weights(net, read_weights(weights_path) if state is None else state, weights_path.name)
    return model_version_of(weights_path)


def fit_weights(net: torch.nn.Module, state: dict[str, torch.Tensor], name: str) -> None:
    """Load a state dict into `net`, in eval mode; RuntimeError naming `name` when it does not fit.

    Weights saved before calibration existed lack the temperature and thresholds: they keep the defaults."""
    missing, unexpected = net.load_state_dict(state, strict=False)
    if unexpected or set(missing) - CALIBRATION:
        raise RuntimeError(f"{name} does not fit the network: missing {missing}, unexpected {unexpected}")
    net.eval()


CALIBRATION = {"temperature", "unsure_below", "not_a_digit_from"}  # buffers chosen after training


CORES = min(4, os.cpu_count() or 1)
SPLIT_FROM = 64  # rows: below this a batch is cheaper in one piece than handed to threads
_SPLITTER = ThreadPoolExecutor(CORES, thread_name_prefix="mnist-forward")


class MicroBatcher:
    """Runs `forward` once on the rows that concurrent callers hand in, as model servers do.

    Callers queue their rows and wait; a BatchWorker thread takes everything queued (up to `max_rows`
    rows), waiting up to `gather` seconds for more once it has some, and answers each caller with its own
    slice. With one caller at a time nothing waits; under load the rows of every request that arrived
    during one forward pass go through the next together, where a network costs a fraction per image of
    what it costs at batch 1.
    """

    def __init__(
        self, forward: Callable[[np.ndarray], np.ndarray], max_rows: int = 256, gather: float = 0.0, idle: float = 5.0
    ) -> None:
        self.forward = forward
        self.gather = gather
        self._worker: BatchWorker[tuple[np.ndarray, Future[np.ndarray]]] = BatchWorker(
            self._pass, name="mnist-micro-batcher", limit=max_rows, size=lambda item: len(item[0]), gather=gather,
            idle=idle,
        )  # fmt: skip
        self.passes = 0  # forward passes run, and the rows they took (tests read them)
        self.rows = 0

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        """forward(rows), run together with whatever other callers queued meanwhile."""
        done: Future[np.ndarray] = Future()
        self._worker.put((rows, done))
        return done.result()

    def _pass(self, batch: list[tuple[np.ndarray, Future[np.ndarray]]]) -> None:
        try:
            out = self.forward(np.concatenate([rows for rows, _ in batch]))
        except BaseException as exc:  # noqa: BLE001 - each caller re-raises it
            for _, done in batch:
                done.set_exception(exc)
            return
        self.passes += 1
        self.rows += len(out)
        start = 0
        for rows, done in batch:
            done.set_result(out[start : start + len(rows)])
            start += len(rows)


class Predictor:
    """A loaded network. Forward passes in eval/inference mode mutate nothing, so threads may share it."""

    def __init__(
        self,
        weights_path: Path = WEIGHTS_PATH,
        *,
        state: dict[str, torch.Tensor] | None = None,
        version: str = "",
        split: bool = True,
    ) -> None:
        """The weights in `weights_path`, or a state dict already read (`state`) that the registry calls `version`.

        `split`: big batches are split over the cores (the app); a fine-tune job measuring versions keeps to one."""
        if state is None:
            state, version = read_weights(weights_path), model_version_of(weights_path)
        self.net = Net(classes=int(state["head.6.weight"].shape[0]))  # 10 digits, or 12 with the verdict classes
        fit_weights(self.net, state, f"version {version}")
        self.model_version = version
        for_inference(self.net)
        self.split = split
        self.batcher: MicroBatcher | None = None

    def batch_concurrent_calls(self, gather: float = 0.0) -> MicroBatcher:
        """From now on, concurrent calls share forward passes (the API server turns this on)."""
        if self.batcher is None:
            self.batcher = MicroBatcher(self._forward, gather=gather)
        return self.batcher

    def probabilities(self, model_inputs: Sequence[np.ndarray]) -> np.ndarray:
        """28x28 uint8 arrays -> (N, 12) calibrated probabilities (ten digits, not a digit, several), one pass."""
        batch = np.stack([np.asarray(m, dtype=np.uint8) for m in model_inputs])
        probs = (self.batcher or self._forward)(batch).astype(np.float64)
        probs /= probs.sum(axis=1, keepdims=True)  # exact sum to 1 after float32 rounding
        if probs.shape[1] == CLASSES:
            return probs
        return np.pad(probs, ((0, 0), (0, CLASSES - probs.shape[1])))  # the ten-digit classifier: no verdict classes

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities of a uint8 batch. With one intra-op thread (how the app runs, see
        get_predictor), a big batch is split over the cores on threads of its own: torch releases the GIL."""
        if not self.split or len(batch) < SPLIT_FROM or torch.get_num_threads() > 1 or CORES < 2:
            return self._pass(batch)
        return np.concatenate(list(_SPLITTER.map(self._pass, np.array_split(batch, CORES))))

    def _pass(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return class_probabilities(self.net, torch.from_numpy(batch)).numpy()

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


def _shipped_predictor() -> Predictor:
    """The shipped model, with torch on one intra-op thread for the whole process.

    A process that predicts serves requests on threads of its own (and shares the machine); intra-op
    threads on top only spin against them. Measured on 2 cores with another process busy on one:
    a canvas prediction p50 4.0 ms, p99 75 ms with torch's 2 threads; 1.96 / 2.09 ms with one.
    Big batches still use every core (Predictor._forward splits them)."""
    torch.set_num_threads(1)
    return Predictor()


get_shipped_predictor = load_once(_shipped_predictor)
get_shipped_predictor.__doc__ = "The shipped weights' predictor, loaded on first use (see _shipped_predictor)."
_served: Predictor | None = None  # what serve() put in place of the shipped predictor, if anything


def get_predictor() -> Predictor:
    """The process-wide predictor: the shipped one, or the one `serve` put in its place."""
    served = _served
    return served if served is not None else get_shipped_predictor()


def serve(predictor: Predictor) -> Predictor:
    """From now on get_predictor() answers with `predictor` (shared forward passes on, if they were); -> the one
    it replaces. Calls under way finish on the predictor they started with."""
    global _served
    previous = get_predictor()
    if previous.batcher is not None and predictor.batcher is None:
        predictor.batch_concurrent_calls(previous.batcher.gather)
    _served = predictor  # one reference replaced
    return previous


get_number_classifier = load_once(lambda: Predictor(NUMBER_CLASSIFIER_PATH))
get_number_classifier.__doc__ = "The classifier the number reader scores its segments with, loaded on first use."


def predict(image: ImageInput) -> Prediction:
    """Any image `preprocess` accepts -> the digit it shows. Raises InvalidImage / NoDigitFound."""
    return predict_batch([image])[0]


def predict_batch(images: Sequence[ImageInput]) -> list[Prediction]:
    """Many images -> predictions with one forward pass. Any bad image raises; see `read` for per-item handling."""
    return get_predictor().read([candidate_views(image) for image in images])
