"""Request builders the API, dashboard and live-server tests share: image files, base64, written numbers."""

from __future__ import annotations

import base64
import io
import socket

import numpy as np
from PIL import Image

from tests.support.sample import mnist_sample

# The original milestone's client request, copied verbatim from shared/seed/original-flask-milestone.md.
ORIGINAL_REQUEST = {
    "image": "iVBORw0KGgoAAAANSUhEUgAAABwAAAAcCAYAAAByDd+UAAAAOXRFWHRTb2Z0d2FyZQBNYXRwbG90bGliIHZlcnNpb24zLjUuMCwgaHR0cHM6Ly9tYXRwbG90bGliLm9yZy8/fFQqAAAACXBIWXMAAA9hAAAPYQGoP6dpAAABfElEQVR4nO1W0Y2DMAw16LpFukf2aDJHmzVAqGuEroGI2m7RrlE5776aAxJoOOn6caolyxImvDw/26IgItAbrXwn2AfwA/gr+8p5qW1bAkCXy4WOx2OUN8YQESVzKcOSSykBAMwMAKjrGt57MHMy1nW9+L1FQGMMrLVgZjwej+xojFkPOGU2jClmXddlMS2eqFOz1pLWmrz3VJZlFJumoev1SgCoKAo6n8+03+/pcDiE9zabTZ6GTdMkmbVtCynlbLmccyPm2SVNaVNV1atmgBACXdeFczMXjA/e73dYa0PjvGiCyKcaD3PJOQR+ZM2dren5oeZRfuoAoJRaxYqIoLVG3/eBmTEmr6TMjN1ulw30LPlU+5kGW8ci5d57KKUCsxfdHD88nU6haXKcmUfduXrTSClxu93gnIPWGtvtFlrrkVZDz2S2XFIpZbhx3/dhruZ2a1VVueMzn3TORTsyFVfO6XxSCAEhBJRSI43WbqChzy7vv7L//0/zdsBvGrApTDvwxZ0AAAAASUVORK5CYII=",  # noqa: E501
    "filename": "request_test.png",
}
ORIGINAL_DIGIT = 0  # the sample, decoded and looked at, is a handwritten zero (white ink on black)


def png(array: np.ndarray, fmt: str = "PNG") -> bytes:
    """An image file's bytes from a uint8 array."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    """Base64 text of some bytes, as the JSON API takes images."""
    return base64.b64encode(data).decode()


# One clearly written specimen of each digit in the committed MNIST sample (indices into it): numbers
# built from them test the wiring around the reader, while tests/number_gen.py's varied numbers
# measure the reader's own accuracy.
WELL_FORMED = {0: 28, 1: 14, 2: 1, 3: 30, 4: 19, 5: 15, 6: 21, 7: 0, 8: 84, 9: 9}


def number_png(text: str, *, paper: bool = False, height: int = 112) -> bytes:
    """A written number: real MNIST digits side by side with small gaps, white on black or black on paper."""
    images, _ = mnist_sample()
    strip = np.pad(np.hstack([np.pad(images[WELL_FORMED[int(c)]], ((0, 0), (3, 3))) for c in text]), 14)
    if paper:
        strip = 255 - strip
    scale = height / 28
    size = (round(strip.shape[1] * scale), round(strip.shape[0] * scale))
    return png(np.asarray(Image.fromarray(strip).resize(size, Image.Resampling.BILINEAR)))


def closed_port() -> int:
    """A loopback port nothing listens on (a database that is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens here once the socket closes
