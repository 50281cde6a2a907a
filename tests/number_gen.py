"""Synthetic multi-digit numbers composed from real MNIST test digits, for tests and the numbers benchmark.

Every number is built from the committed 1,000-digit sample (weights/mnist-test-sample/t10k-1000-*), so no download
is needed. The sample is split in two: TUNE (indices 0-499) is what the segmentation was tuned on,
HELD_BACK (500-999) is what tests and the benchmark score, so a figure never comes from digits the
thresholds were fitted to. The number reader's network is trained on MNIST *training* digits only.
With the full MNIST files, two more pools: FRESH (test digits 1,000-9,999, scored only) and UNSEEN
(the ~420 training digits neither model learnt from, a second pool to make choices on beside TUNE).
How a number is composed and rendered is mnist/synth.py. Everything is deterministic given a seed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from mnist.config import NUMBER_CLASSIFIER_CARD_PATH, get_settings
from mnist.data import load_split
from mnist.synth import GAP_TYPES, LAYOUTS, STYLES, render
from mnist.train import validation_split
from mnist.train_reader import VALIDATION_DIGITS as READER_VALIDATION_DIGITS
from tests.support.sample import mnist_sample

DATA_DIR = Path(__file__).resolve().parent / "data"
ROOT = Path(__file__).resolve().parent.parent
TUNE = range(0, 500)
HELD_BACK = range(500, 1000)
FRESH = range(1000, 10_000)  # of the full MNIST test set (see full_test_set)


@dataclass(frozen=True)
class NumberSample:
    """One synthetic number: the image, what it says, and where each digit's ink is."""

    image: Image.Image
    text: str
    boxes: list[tuple[int, int, int, int]]  # each digit's ink box (x0, y0, x1, y1), x1/y1 exclusive, left to right
    gap: str
    style: str
    owner: np.ndarray | None = None  # (H, W) uint8: which digit (1-based) owns each pixel, 0 = paper; for diagnosis
    sources: tuple[int, ...] = ()  # each digit's index in the pool it was drawn from; for diagnosis


def full_data_dir() -> Path | None:
    """The four original MNIST files: MNIST_DATA_DIR, else the shared checkout next to the repo."""
    for candidate in (get_settings().mnist_data_dir, ROOT.parent / "shared" / "data" / "mnist"):
        if candidate and (Path(candidate) / "train-images-idx3-ubyte.gz").exists():
            return Path(candidate)
    return None


def full_set(split: str) -> tuple[np.ndarray, np.ndarray] | None:
    """All MNIST 'train' or 'test' digits from MNIST_DATA_DIR (or ../shared/data/mnist), or None when absent."""
    data_dir = full_data_dir()
    if data_dir is None:
        return None
    images, labels = load_split(split, data_dir)
    return images.numpy(), labels.numpy()


def full_test_set() -> tuple[np.ndarray, np.ndarray] | None:
    """All 10,000 MNIST test digits, or None when the files are absent.

    Digits 1,000-9,999 (FRESH) were never used to tune or train anything: numbers drawn from those
    9,000 measure the reader on a broad pool, where the committed sample's 500 held-back digits
    (a handful of them ambiguous, e.g. an 8 written as a 9, drawn again and again) measure a small one.
    """
    return full_set("test")


def full_train_set() -> tuple[np.ndarray, np.ndarray] | None:
    """All 60,000 MNIST training digits (UNSEEN numbers draw on them), or None when the files are absent."""
    return full_set("train")


def classifier_split() -> tuple[np.ndarray, np.ndarray]:
    """(validation, training) indices of the MNIST training images, as the shipped classifier split them.

    The seed and the validation count come from its model card (mnist.train.validation_split draws the split).
    """
    card = json.loads(NUMBER_CLASSIFIER_CARD_PATH.read_text())["training"]
    held_out, trained_on = validation_split(60_000, card["validation_images"], card["seed"])
    return held_out.numpy(), trained_on.numpy()


def unseen_digits() -> np.ndarray:
    """Indices of the MNIST *training* digits neither shipped model learnt from (about 420), sorted.

    They are the classifier's validation images that are also the line reader's validation digits
    55,000-59,999. Numbers drawn from them are a second pool to make choices on beside TUNE: TUNE's
    500 digits hold only a handful the models find hard, so one of them (a 9 written like a 4) can
    decide a comparison alone.
    """
    held_out, _ = classifier_split()
    inside = (held_out >= READER_VALIDATION_DIGITS.start) & (held_out < READER_VALIDATION_DIGITS.stop)
    return np.sort(held_out[inside])


def make_number(
    rng: np.random.Generator,
    n_digits: int,
    gap: str,
    style: str,
    indices: Sequence[int] = HELD_BACK,
    pool: tuple[np.ndarray, np.ndarray] | None = None,
    layout: str = "drawn",
) -> NumberSample:
    """`n_digits` digits drawn (with replacement) from `indices` of `pool` (default: the committed sample),
    laid out as `layout` says (mnist.synth.LAYOUTS)."""
    images, labels = pool if pool is not None else mnist_sample()
    chosen = rng.choice(np.asarray(indices), size=n_digits)
    ink, boxes, owner = LAYOUTS[layout](rng, [images[i] for i in chosen], gap)
    text = "".join(str(labels[i]) for i in chosen)
    return NumberSample(render(rng, ink, style), text, boxes, gap, style, owner, tuple(int(i) for i in chosen))


def sample_set(
    seed: int,
    count: int,
    gap: str,
    styles: tuple[str, ...] = STYLES,
    indices: Sequence[int] = HELD_BACK,
    digits: tuple[int, int] = (2, 8),
    pool: tuple[np.ndarray, np.ndarray] | None = None,
    layout: str = "drawn",
) -> list[NumberSample]:
    """`count` numbers of one gap type, lengths uniform in `digits`, styles cycled; same seed, same set."""
    rng = np.random.default_rng([seed, GAP_TYPES.index(gap)])
    return [
        make_number(
            rng, int(rng.integers(digits[0], digits[1] + 1)), gap, styles[i % len(styles)], indices, pool, layout
        )
        for i in range(count)
    ]
