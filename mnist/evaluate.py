"""python -m mnist.evaluate: test accuracy, per-class accuracy and confusion matrix of the shipped weights."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mnist.config import WEIGHTS_PATH
from mnist.data import load_split, read_sample
from mnist.model import log_probabilities
from mnist.predict import Predictor, get_predictor


def predict_labels(net: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Predicted digit for each uint8 (N, 28, 28) image, in eval mode."""
    net.eval()
    with torch.inference_mode():
        return torch.cat([log_probabilities(net, chunk).argmax(1) for chunk in images.split(batch_size)])


def scores(predicted: torch.Tensor, labels: torch.Tensor) -> dict:
    """Accuracy, per-class accuracy and the 10x10 confusion matrix (rows: true digit, columns: predicted)."""
    confusion = torch.zeros(10, 10, dtype=torch.int64)
    confusion.index_put_((labels, predicted), torch.ones_like(labels), accumulate=True)
    per_class = (confusion.diag().double() / confusion.sum(1).clamp(min=1).double()).tolist()
    return {
        "accuracy": float((predicted == labels).double().mean()),
        "errors": int((predicted != labels).sum()),
        "count": len(labels),
        "per_class_accuracy": [round(v, 6) for v in per_class],
        "confusion_matrix": confusion.tolist(),
    }


def misclassified(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> list[tuple[np.ndarray, int, int]]:
    """The images the network gets wrong, in order: (28x28 uint8 array, true digit, predicted digit)."""
    predicted = predict_labels(net, images)
    wrong = (predicted != labels).nonzero().flatten().tolist()
    return [(images[i].numpy().copy(), int(labels[i]), int(predicted[i])) for i in wrong]


def mistakes_on_test_set(data_dir: str | Path | None = None) -> tuple[list[tuple[np.ndarray, int, int]], int]:
    """The loaded model's mistakes on the MNIST test set in data_dir (misclassified triples, test-set size)."""
    images, labels = load_split("test", data_dir)
    return misclassified(get_predictor().net, images, labels), len(labels)


def mistakes_on_sample() -> tuple[list[tuple[np.ndarray, int, int]], int]:
    """The loaded model's mistakes on the 1,000 MNIST test digits shipped in weights/ (for when there is no
    MNIST_DATA_DIR)."""
    images, labels = read_sample()
    return misclassified(get_predictor().net, torch.from_numpy(images.copy()), torch.from_numpy(labels)), len(labels)


def format_report(result: dict) -> str:
    """The scores as plain-text tables."""
    lines = [f"accuracy {result['accuracy'] * 100:.2f}%  ({result['errors']} errors in {result['count']})", ""]
    lines.append("digit  accuracy")
    lines += [f"{d:>5}  {acc * 100:7.2f}%" for d, acc in enumerate(result["per_class_accuracy"])]
    lines += ["", "confusion (rows: true, columns: predicted)", "     " + "".join(f"{d:>6}" for d in range(10))]
    lines += [f"{d:>5}" + "".join(f"{n:>6}" for n in row) for d, row in enumerate(result["confusion_matrix"])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--data-dir", default=None, help="directory with the four MNIST .gz files (default: MNIST_DATA_DIR)"
    )
    parser.add_argument("--weights", type=Path, default=WEIGHTS_PATH)
    args = parser.parse_args(argv)

    net = Predictor(args.weights).net
    images, labels = load_split("test", args.data_dir)
    result = scores(predict_labels(net, images), labels)
    print(format_report(result))
    return result


if __name__ == "__main__":
    main()
