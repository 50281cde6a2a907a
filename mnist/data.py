"""MNIST's original IDX files -> uint8 tensors, offline from a directory, checked by md5."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import torch

from mnist.config import MNIST_SAMPLE_DIR, get_settings
from mnist.errors import InvalidDataset

# The published md5 of each original gzip file (same as torchvision's mirror list).
FILES = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
SPLITS = {"train": "train", "test": "t10k"}


def md5(path: Path) -> str:
    """md5 of a file, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)  # matching published checksums, not security
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (gzipped or not): big-endian magic, dims, then uint8 data."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[:4], "big")
    if magic >> 8 != 0x08:  # 0x08 = unsigned byte data
        raise InvalidDataset(f"{path.name}: not a uint8 IDX file (magic {magic:#x})")
    ndim = magic & 0xFF
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise InvalidDataset(f"{path.name}: expected {dims}, file is truncated or padded")
    return data.reshape(dims)


def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """The directory holding the four files: argument, else MNIST_DATA_DIR."""
    chosen = data_dir or get_settings().mnist_data_dir
    if not chosen:
        raise FileNotFoundError("No MNIST directory: pass --data-dir or set MNIST_DATA_DIR")
    return Path(chosen)


def verify(data_dir: Path) -> dict[str, str]:
    """Check every file's md5 against the published value; returns {file: md5}."""
    found = {}
    for name, expected in FILES.items():
        path = data_dir / name
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing (need the four original MNIST .gz files)")
        actual = md5(path)
        if actual != expected:
            raise InvalidDataset(f"{path}: md5 {actual} != published {expected}")
        found[name] = actual
    return found


def load_split(split: str, data_dir: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """('train' | 'test') -> (images uint8 (N, 28, 28), labels int64 (N,))."""
    directory = resolve_data_dir(data_dir)
    prefix = SPLITS[split]
    images = read_idx(directory / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(directory / f"{prefix}-labels-idx1-ubyte.gz")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def read_sample() -> tuple[np.ndarray, np.ndarray]:
    """The first 1,000 MNIST test digits shipped in weights/mnist-test-sample: images (1000, 28, 28) uint8 and
    labels (1000,) int64."""
    images = read_idx(MNIST_SAMPLE_DIR / "t10k-1000-images-idx3-ubyte.gz")
    labels = read_idx(MNIST_SAMPLE_DIR / "t10k-1000-labels-idx1-ubyte.gz")
    return images, labels.astype(np.int64)


def download_with_torchvision(target: Path) -> Path:
    """Fallback where the files are not on disk and the network is: torchvision's mirror."""
    from torchvision.datasets import MNIST

    for train in (True, False):
        MNIST(str(target), train=train, download=True)
    return target / "MNIST" / "raw"
