"""Synthetic multi-digit numbers composed from real MNIST digits: training data for the number reader
(from training digits) and the test and benchmark sets (tests/number_gen.py, from test digits).

Each digit is cropped to its ink, scaled (per-digit size variation), slanted, jittered vertically and
placed after its left neighbour with one of three gap types:
  separated    a clear horizontal gap between the two ink boxes;
  touching     the strokes meet: the digit slides left until its ink touches its neighbour's;
  overlapping  the ink boxes overlap by a few pixels (the strokes may cross or not);
or, with gap "mixed", a type drawn afresh for every neighbour.
The composed ink is then rendered in one of four styles: a white-on-black canvas, a transparent RGBA
canvas with the ink in alpha, dark ink on noisy light paper (JPEG) and light ink on a noisy dark board (JPEG).
Everything is deterministic given the random generator.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageFilter

GAP_TYPES = ("separated", "touching", "overlapping")
STYLES = ("canvas", "canvas_rgba", "paper", "paper_inverted")
INK = 0.5  # a pixel of the composed float ink counts as stroke above this (for boxes)
VISIBLE = 0.25  # ... and is visible above this: touching strokes meet at this level


def _ink_bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the True pixels, x1/y1 exclusive."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def render_digit(digit: np.ndarray, height: int, slant: float, aspect: float) -> np.ndarray:
    """A 28x28 MNIST digit -> float ink in [0, 1], cropped to its ink, `height` px tall, sheared by `slant`.

    The shear pivots on the vertical centre, so a slanted digit stays on its line; `aspect` stretches
    the width to vary handwriting (narrow or wide writers).
    """
    x0, y0, x1, y1 = _ink_bbox(digit > 0)
    crop = Image.fromarray(digit[y0:y1, x0:x1])
    scale = height / (y1 - y0)
    width = max(1, round((x1 - x0) * scale * aspect))
    big = crop.resize((width, height), Image.Resampling.BICUBIC)
    shift = abs(slant) * height
    out_w = width + math.ceil(shift) + 2
    # Affine maps output (x, y) to input (x + slant*(y - h/2) - offset, y): a positive slant leans right (/).
    offset = shift / 2 + 1
    sheared = big.transform(
        (out_w, height),
        Image.Transform.AFFINE,
        (1, slant, -offset - slant * height / 2, 0, 1, 0),
        resample=Image.Resampling.BICUBIC,
    )
    ink = np.asarray(sheared, dtype=np.float32) / 255.0
    x0, y0, x1, y1 = _ink_bbox(ink > 0.05)
    return np.clip(ink[y0:y1, x0:x1], 0.0, 1.0)


def _touch_offset(canvas: np.ndarray, glyph: np.ndarray, top: int, overlap_px: int) -> int | None:
    """Leftmost x for `glyph` so its visible strokes meet the canvas's rightmost ones (sharing `overlap_px` px)."""
    rows = slice(top, top + glyph.shape[0])
    left_ink, glyph_ink = canvas[rows] > VISIBLE, glyph > VISIBLE
    both = left_ink.any(axis=1) & glyph_ink.any(axis=1)
    if not both.any():
        return None
    right_edge = canvas.shape[1] - 1 - np.argmax(left_ink[:, ::-1], axis=1)  # last ink column per row
    left_edge = np.argmax(glyph_ink, axis=1)  # first ink column per row
    # Smallest x with x + left_edge >= right_edge + 1 - overlap_px on every shared row.
    return int(np.max(right_edge[both] + 1 - overlap_px - left_edge[both]))


def compose(
    rng: np.random.Generator, digits: list[np.ndarray], gap: str
) -> tuple[np.ndarray, list[tuple[int, int, int, int]], np.ndarray]:
    """Lay out MNIST digits on one line -> (float ink HxW, each digit's ink box, owner map)."""
    height = int(rng.integers(32, 110))  # a typical digit height for the whole number, in px
    slant = math.tan(math.radians(rng.uniform(-12, 12)))
    glyphs = [
        render_digit(
            d,
            max(12, round(height * rng.uniform(0.85, 1.15))),
            slant + math.tan(math.radians(rng.uniform(-4, 4))),
            rng.uniform(0.85, 1.15),
        )
        for d in digits
    ]
    margin = round(height * rng.uniform(0.25, 0.8))
    total_w = sum(g.shape[1] for g in glyphs) + len(glyphs) * height + 2 * margin
    canvas = np.zeros((height * 2 + 2 * margin, total_w), dtype=np.float32)
    owner = np.zeros(canvas.shape, dtype=np.uint8)
    boxes, cursor = [], margin  # cursor = right edge (exclusive) of the ink so far
    mid = canvas.shape[0] // 2
    for i, glyph in enumerate(glyphs):
        h, w = glyph.shape
        top = mid - h // 2 + round(height * rng.uniform(-0.1, 0.1))  # vertical jitter
        kind = gap if gap != "mixed" else GAP_TYPES[int(rng.integers(len(GAP_TYPES)))]
        if i == 0:
            x = margin
        elif kind == "separated":
            x = cursor + max(2, round(height * rng.uniform(0.12, 0.6)))
        elif kind == "touching":
            touch = _touch_offset(canvas, glyph, top, int(rng.integers(0, 2)))
            x = cursor if touch is None else touch
        elif kind == "overlapping":
            # Boxes overlap by 1-4 MNIST pixels (a digit is ~20 px tall there), but never so far that the
            # new digit's strokes sink deep into its neighbour's: that would be unreadable to people too.
            overlap = max(1, round(height * rng.uniform(0.05, 0.2)))
            x = cursor - min(overlap, w // 3 + 1, (cursor - boxes[-1][0]) // 3 + 1)
            touch = _touch_offset(canvas, glyph, top, round(0.06 * height))
            if touch is not None:
                x = max(x, touch)
        else:
            raise ValueError(f"unknown gap type {gap!r}; expected one of {GAP_TYPES} or 'mixed'")
        gx0, gy0, gx1, gy1 = _ink_bbox(glyph > INK)
        if i and x + gx0 < boxes[-1][0]:
            # The strokes would meet only with this digit's ink reaching left of its neighbour's (a 7's bar
            # over a short 1): unreadable, and it can run off the canvas. Set it beside the neighbour instead.
            x = cursor
        region = canvas[top : top + h, x : x + w]
        owner[top : top + h, x : x + w][(glyph > 0.05) & (glyph >= region)] = i + 1
        canvas[top : top + h, x : x + w] = np.maximum(region, glyph)
        boxes.append((x + gx0, top + gy0, x + gx1, top + gy1))
        cursor = max(cursor, x + w)
    # Trim to the ink plus a margin, shifting the boxes along.
    x0, y0, x1, y1 = _ink_bbox(canvas > 0.05)
    x0, y0 = max(0, x0 - margin), max(0, y0 - margin)
    canvas, owner = canvas[y0 : y1 + margin, x0 : x1 + margin], owner[y0 : y1 + margin, x0 : x1 + margin]
    return canvas, [(a - x0, b - y0, c - x0, d - y0) for a, b, c, d in boxes], owner


def compose_cells(
    rng: np.random.Generator, digits: list[np.ndarray], gap: str
) -> tuple[np.ndarray, list[tuple[int, int, int, int]], np.ndarray]:
    """MNIST's own 28x28 cells side by side, as multi-digit MNIST sets are usually built -> as compose.

    Each digit keeps MNIST's size and margins (a 20 px box: a wide 2 is shorter than a 1), so the gaps
    are uneven (a 1 stands far from its neighbours) and the ink may run to the picture's edge. `gap`
    says how neighbours' ink meets, as in compose ("separated": cells 4 px closer to 8 px further apart
    than side by side, the inks at least 2 px apart). The line is kept at MNIST's size or enlarged up to 4x.
    """
    pad = int(rng.integers(0, 5))
    canvas = np.zeros((28 + 2 * pad, len(digits) * 36 + 2 * pad), dtype=np.float32)
    owner = np.zeros(canvas.shape, dtype=np.uint8)
    boxes, x = [], pad
    for i, digit in enumerate(digits):
        cell = digit.astype(np.float32) / 255.0
        gx0, gy0, gx1, gy1 = _ink_bbox(cell > INK)
        kind = gap if gap != "mixed" else GAP_TYPES[int(rng.integers(len(GAP_TYPES)))]
        if kind not in GAP_TYPES:
            raise ValueError(f"unknown gap type {gap!r}; expected one of {GAP_TYPES} or 'mixed'")
        if i and kind == "separated":
            touch = _touch_offset(canvas, cell, pad, -2)  # the inks at least 2 px apart
            x = max(x + 28 + int(rng.integers(-4, 9)), touch or 0)
        elif i:
            # Touching: the strokes meet. Overlapping, as in compose: the ink boxes overlap by 1-4 px, the
            # strokes by at most 1. Where that would take the ink left of its neighbour's, the cells sit side by side.
            touch = _touch_offset(canvas, cell, pad, int(rng.integers(0, 2)) if kind == "touching" else 1)
            want = touch if kind == "touching" else max(boxes[-1][2] - int(rng.integers(1, 5)) - gx0, touch or 0)
            x = x + 28 if want is None or want + gx0 < boxes[-1][0] else want
        region = canvas[pad : pad + 28, x : x + 28]
        owner[pad : pad + 28, x : x + 28][(cell > 0.05) & (cell >= region)] = i + 1
        canvas[pad : pad + 28, x : x + 28] = np.maximum(region, cell)
        boxes.append((x + gx0, pad + gy0, x + gx1, pad + gy1))
    canvas, owner = canvas[:, : x + 28 + pad], owner[:, : x + 28 + pad]
    factor = 1.0 if rng.random() < 0.5 else float(rng.uniform(1.0, 4.0))
    if factor > 1.0:
        size = (round(canvas.shape[1] * factor), round(canvas.shape[0] * factor))
        canvas = np.asarray(Image.fromarray(canvas, "F").resize(size, Image.Resampling.BILINEAR)).clip(0, 1)
        owner = np.asarray(Image.fromarray(owner).resize(size, Image.Resampling.NEAREST))
        boxes = [tuple(round(v * factor) for v in box) for box in boxes]
    return canvas, boxes, owner


# How the digits of a number are laid out: drawn (each digit re-drawn at the number's size, slanted and
# jittered like handwriting) or cells (MNIST's 28x28 cells side by side).
LAYOUTS = {"drawn": compose, "cells": compose_cells}


def render(rng: np.random.Generator, ink: np.ndarray, style: str) -> Image.Image:
    """Float ink -> an image as a user would hand it to us in the given style."""
    if style in ("canvas", "canvas_rgba"):
        # Canvas strokes are crisp: steepen MNIST's soft edges a little.
        crisp = np.clip((ink - 0.5) * rng.uniform(1.0, 2.5) + 0.5, 0, 1) * (ink > 0.02)
        value = (crisp * 255).round().astype(np.uint8)
        if style == "canvas":
            return Image.fromarray(np.stack([value] * 3, axis=-1), "RGB")
        colour = rng.integers(0, 256, size=3) if rng.random() < 0.5 else np.zeros(3, dtype=np.int64)
        rgba = np.zeros((*ink.shape, 4), dtype=np.uint8)
        rgba[..., :3] = colour
        rgba[..., 3] = value
        return Image.fromarray(rgba, "RGBA")
    if style not in ("paper", "paper_inverted"):
        raise ValueError(f"unknown style {style!r}; expected one of {STYLES}")
    h, w = ink.shape
    if style == "paper":
        background, ink_level = rng.uniform(170, 245), rng.uniform(10, 90)
    else:
        background, ink_level = rng.uniform(10, 70), rng.uniform(180, 250)
    # Uneven lighting across the sheet, sensor noise, a few specks of dirt, a slight blur, then JPEG.
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    light = rng.uniform(-20, 20) * (xx / w - 0.5) + rng.uniform(-20, 20) * (yy / h - 0.5)
    page = background + light
    specks = np.zeros_like(ink)
    for _ in range(int(rng.integers(0, 6))):
        sy, sx = int(rng.integers(0, h)), int(rng.integers(0, w))
        specks[sy : sy + 2, sx : sx + 2] = rng.uniform(0.4, 0.9)
    alpha = np.maximum(ink * rng.uniform(0.8, 1.0), specks)
    grey = page * (1 - alpha) + ink_level * alpha + rng.normal(0, rng.uniform(3, 12), size=ink.shape)
    tint = rng.uniform(0.9, 1.0, size=3)
    rgb = np.clip(grey[..., None] * tint, 0, 255).astype(np.uint8)
    image = Image.fromarray(rgb, "RGB").filter(ImageFilter.GaussianBlur(rng.uniform(0.0, 1.0)))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=int(rng.integers(50, 91)))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
