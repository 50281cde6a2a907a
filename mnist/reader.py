"""The number reader: a whole line of ink read in one pass by LineNet (CNN + BiLSTM, trained with CTC).

Cutting touching or overlapping digits apart and classifying the pieces fails where no cut separates
them (strokes cross) and where a fragment looks like a digit too; a sequence model sees the whole line
and says which digit is centred where, so it needs no cut at all. numbers.py uses its text and places;
the cut-and-classify segmentation supplies boxes and 28x28 inputs where it agrees with the reader.

to_strip is the line's MNIST recipe: crop to the ink, scale so the line is TEXT_HEIGHT px tall
(working at 4x so stroke width can be normalised as for single digits), centre in a STRIP_HEIGHT strip.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mnist.config import READER_WEIGHTS_PATH
from mnist.model import LineNet, normalise
from mnist.predict import load_once, load_weights
from mnist.preprocess import crop_to_ink, resize_ink

STRIP_HEIGHT = LineNet.STRIP_HEIGHT
TEXT_HEIGHT = 24  # the line's ink, top to bottom, in strip pixels (MNIST: 20 of 28 for one digit)
PAD = 8  # blank strip columns either side
WORK = 4  # stroke width is normalised at this multiple of the strip's size, as to_model_input does
MAX_STRIP_WIDTH = 1600  # a line longer than this (12 wide-spaced digits are ~600) is squeezed to fit


@dataclass(frozen=True)
class Strip:
    """A line of ink as the reader sees it, and where it came from in the ink map."""

    pixels: np.ndarray  # uint8 (STRIP_HEIGHT, W), white ink on black
    x0: int  # ink-map column of strip column PAD (the line's first ink column)
    scale: float  # ink-map pixels per strip pixel

    def to_ink_x(self, column: float) -> float:
        """Strip column -> ink-map column."""
        return self.x0 + (column - PAD) * self.scale


@dataclass(frozen=True)
class LineChar:
    """One digit the reader found: its distribution over 0-9 and the strip columns it was read at."""

    probabilities: np.ndarray  # (10,), sums to 1
    start: int  # strip columns [start, stop) of the CTC frames that emitted it
    stop: int
    centre: float  # strip column where it was most confidently read


def to_strip(ink: np.ndarray) -> Strip:
    """Ink map (float, 1 = ink) -> the line as a uint8 strip. Raises NoDigitFound for a blank map."""
    crop, x0, _ = crop_to_ink(np.asarray(ink, dtype=np.float32), "no digit found: the image looks blank")
    h, w = crop.shape
    f = min(TEXT_HEIGHT / h, (MAX_STRIP_WIDTH - 2 * PAD) / w)  # strip pixels per ink pixel
    small_w, small_h = max(1, round(w * f)), max(1, round(h * f))
    big_h = small_h * WORK
    small = resize_ink(crop, (small_w * WORK, big_h), (small_w, small_h), shrink=big_h < h)
    top = (STRIP_HEIGHT - small_h) // 2
    strip = np.zeros((STRIP_HEIGHT, small_w + 2 * PAD), np.float32)
    strip[top : top + small_h, PAD : PAD + small_w] = small
    pixels = (np.clip(strip, 0, 1) * 255).round().astype(np.uint8)
    return Strip(pixels, x0=x0, scale=1 / f)


def strip_batch(strips: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 strips of any widths -> (normalised float batch (N, 1, H, W_max), frames per strip)."""
    width = max(s.shape[1] for s in strips)
    width += -width % LineNet.WIDTH_STRIDE
    batch = np.zeros((len(strips), STRIP_HEIGHT, width), np.uint8)
    for i, s in enumerate(strips):
        batch[i, :, : s.shape[1]] = s
    x = normalise(torch.from_numpy(batch))
    frames = torch.tensor([s.shape[1] // LineNet.WIDTH_STRIDE for s in strips], dtype=torch.long)
    return x, frames


def decode(log_probs: np.ndarray) -> list[LineChar]:
    """One strip's CTC output (T, 11) -> its digits: best path, repeats merged, blanks dropped."""
    probs = np.exp(log_probs)
    best = probs.argmax(axis=1)
    chars, t = [], 0
    while t < len(best):
        stop = t
        while stop < len(best) and best[stop] == best[t]:
            stop += 1
        if best[t] != 0:
            run = probs[t:stop, 1:]
            peak = t + int(run[:, best[t] - 1].argmax())
            digit_probs = probs[peak, 1:] / probs[peak, 1:].sum()
            s = LineNet.WIDTH_STRIDE
            chars.append(LineChar(digit_probs.astype(np.float64), t * s, stop * s, (peak + 0.5) * s))
        t = stop
    return chars


class LineReader:
    """The loaded LineNet. Inference mutates nothing, so threads may share it."""

    def __init__(self, weights_path: Path = READER_WEIGHTS_PATH) -> None:
        self.net = LineNet()
        self.version = load_weights(self.net, weights_path)

    def read(self, strips: list[np.ndarray]) -> list[list[LineChar]]:
        """uint8 strips -> the digits of each, in one forward pass."""
        x, frames = strip_batch(strips)
        with torch.inference_mode():
            out = self.net(x).numpy()  # (T, N, 11)
        return [decode(out[: frames[i], i]) for i in range(len(strips))]


get_reader = load_once(LineReader)
get_reader.__doc__ = "The process-wide reader, loaded on first use."
