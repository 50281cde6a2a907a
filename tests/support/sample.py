"""The committed 1,000-digit MNIST test sample (weights/mnist-test-sample), loaded once per process."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

from mnist.config import MNIST_SAMPLE_DIR as DATA
from mnist.data import read_sample


@cache
def mnist_sample() -> tuple[np.ndarray, np.ndarray]:
    """Images (1000, 28, 28) uint8 and labels (1000,) int64; callers must not write into them."""
    return read_sample()


def first_of(digit: int, nth: int = 0) -> np.ndarray:
    """The nth sample image of `digit` (28x28 uint8, white ink on black)."""
    images, labels = mnist_sample()
    return images[np.flatnonzero(labels == digit)[nth]]


def as_mnist_test_dir(folder: Path) -> Path:
    """`folder` made into an MNIST_DATA_DIR whose test set is the sample (load_split wants the original names)."""
    folder.mkdir(parents=True, exist_ok=True)
    for kind in ("images-idx3", "labels-idx1"):
        (folder / f"t10k-{kind}-ubyte.gz").symlink_to(DATA / f"t10k-1000-{kind}-ubyte.gz")
    return folder
