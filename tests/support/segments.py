"""A handwriting style the shipped model has never seen: digits drawn as seven-segment displays, by hand.

Each digit is the segments a calculator lights for it (a 7 is the top bar and the right side, a 9 has its
tail), drawn as straight pen strokes between corners that wander a little, slanted, at a random size,
stroke width and place on a white 200x200 canvas, dark ink (as the Draw page sends). Nothing like it is in
MNIST or in what mnist.synth, mnist.degrade and mnist.nondigits render, and the shipped model reads about
two in three right (the zero, a tall box, is a 1 to it; a 6 a 5; a 9 a 4). Deterministic given the
generator's seed.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

# a top, b upper right, c lower right, d bottom, e lower left, f upper left, g middle
SEGMENTS = {
    0: "abcdef", 1: "bc", 2: "abged", 3: "abgcd", 4: "fgbc", 5: "afgcd", 6: "afgedc", 7: "abc", 8: "abcdefg",
    9: "abcdfg",
}  # fmt: skip
# Each segment from one corner to another: corners are (column 0-1, row 0-2) of the display.
ENDS = {
    "a": ((0, 0), (1, 0)), "b": ((1, 0), (1, 1)), "c": ((1, 1), (1, 2)), "d": ((0, 2), (1, 2)),
    "e": ((0, 1), (0, 2)), "f": ((0, 0), (0, 1)), "g": ((0, 1), (1, 1)),
}  # fmt: skip


def segment_digit(digit: int, rng: np.random.Generator, size: int = 200) -> np.ndarray:
    """A (size, size) uint8 picture of `digit` drawn as seven segments: dark ink on white."""
    image = Image.new("L", (size, size), 255)
    pen = ImageDraw.Draw(image)
    height = rng.uniform(0.45, 0.75) * size
    width = height * rng.uniform(0.45, 0.65)
    slant = rng.uniform(-0.25, 0.05)
    left = (size - width) / 2 + rng.uniform(-0.1, 0.1) * size
    top = (size - height) / 2 + rng.uniform(-0.1, 0.1) * size
    stroke = int(max(3, height * rng.uniform(0.05, 0.11)))
    overshoot = rng.uniform(0.0, 0.06)  # strokes meet at the corners, sometimes running a little past them
    wander = {(c, r): (rng.normal(0, 0.04), rng.normal(0, 0.03)) for c in (0, 1) for r in (0, 1, 2)}

    def point(x: float, y: float) -> tuple[float, float]:
        return left + x * width + slant * (0.5 - y) * height, top + y * height

    for segment in SEGMENTS[digit]:
        (c0, r0), (c1, r1) = ENDS[segment]
        x0, y0 = c0 + wander[c0, r0][0], r0 / 2 + wander[c0, r0][1]
        x1, y1 = c1 + wander[c1, r1][0], r1 / 2 + wander[c1, r1][1]
        dx, dy = (x1 - x0) * overshoot, (y1 - y0) * overshoot
        pen.line([point(x0 - dx, y0 - dy), point(x1 + dx, y1 + dy)], fill=0, width=stroke)
    return np.asarray(image)


def segment_digits(count: int, seed: int) -> tuple[list[np.ndarray], list[int]]:
    """`count` pictures of random digits in the style, and their digits."""
    rng = np.random.default_rng(seed)
    digits = [int(d) for d in rng.integers(0, 10, count)]
    return [segment_digit(d, rng) for d in digits], digits
