"""Material that is not one digit, for teaching the classifier to say so and for measuring that it does.

Families (each returns float ink in [0, 1], 1 = ink, on a 28x28 field like an MNIST digit):
  letters    letters and signs drawn by hand: jittered strokes, slanted, any pen
  scribbles  smooth random pen paths, loops and hatching
  shapes     polygons, stars, arrows, crosses, spirals, filled or outlined
  textures   photo-like material: object silhouettes with texture, clouds, stripes, checks
  fonts      letters and signs typeset in Pillow's bundled font; never trained on, so the benchmark can
             measure how the "not a digit" verdict generalises to a family it has not seen
Glyphs that people also write as digits (O, I, l, Z, S, B, G, b, g, q, !) are left out: an O is a 0.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

# Hand-drawn letters as strokes in a unit box (x right, y down). Curves are sampled arcs.


def _arc(cx, cy, rx, ry, start, end, n=9):
    return [
        (cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a))) for a in np.linspace(start, end, n)
    ]


GLYPHS: dict[str, list[list[tuple[float, float]]]] = {
    "A": [[(0, 1), (0.5, 0), (1, 1)], [(0.22, 0.6), (0.78, 0.6)]],
    "E": [[(1, 0), (0, 0), (0, 1), (1, 1)], [(0, 0.5), (0.7, 0.5)]],
    "F": [[(1, 0), (0, 0), (0, 1)], [(0, 0.5), (0.7, 0.5)]],
    "H": [[(0, 0), (0, 1)], [(1, 0), (1, 1)], [(0, 0.5), (1, 0.5)]],
    "K": [[(0, 0), (0, 1)], [(1, 0), (0.05, 0.55), (1, 1)]],
    "M": [[(0, 1), (0, 0), (0.5, 0.6), (1, 0), (1, 1)]],
    "N": [[(0, 1), (0, 0), (1, 1), (1, 0)]],
    "P": [[(0, 1), (0, 0)], [(0, 0), *_arc(0.45, 0.25, 0.5, 0.25, -90, 90), (0, 0.5)]],
    "R": [[(0, 1), (0, 0)], [(0, 0), *_arc(0.45, 0.25, 0.5, 0.25, -90, 90), (0, 0.5)], [(0.4, 0.5), (1, 1)]],
    "U": [[(0, 0), *_arc(0.5, 0.6, 0.5, 0.4, 180, 0), (1, 0)]],
    "V": [[(0, 0), (0.5, 1), (1, 0)]],
    "W": [[(0, 0), (0.25, 1), (0.5, 0.35), (0.75, 1), (1, 0)]],
    "X": [[(0, 0), (1, 1)], [(1, 0), (0, 1)]],
    "Y": [[(0, 0), (0.5, 0.5), (1, 0)], [(0.5, 0.5), (0.5, 1)]],
    "T": [[(0, 0), (1, 0)], [(0.5, 0), (0.5, 1)]],
    "L": [[(0, 0), (0, 1), (1, 1)]],
    "C": [_arc(0.55, 0.5, 0.5, 0.5, 50, 310)],
    "D": [[(0, 0), (0, 1)], [(0, 0), *_arc(0.35, 0.5, 0.65, 0.5, -90, 90), (0, 1)]],
    "h": [[(0, 0), (0, 1)], [(0, 0.6), *_arc(0.5, 0.6, 0.5, 0.25, 180, 360), (1, 1)]],
    "n": [[(0, 0.35), (0, 1)], [(0, 0.6), *_arc(0.5, 0.6, 0.5, 0.25, 180, 360), (1, 1)]],
    "m": [
        [(0, 0.35), (0, 1)],
        [(0, 0.6), *_arc(0.25, 0.6, 0.25, 0.25, 180, 360), (0.5, 1)],
        [(0.5, 0.6), *_arc(0.75, 0.6, 0.25, 0.25, 180, 360), (1, 1)],
    ],  # fmt: skip
    "r": [[(0, 0.35), (0, 1)], [(0, 0.65), *_arc(0.45, 0.6, 0.45, 0.25, 180, 300)]],
    "k": [[(0, 0), (0, 1)], [(0.8, 0.35), (0.05, 0.7), (0.9, 1)]],
    "w": [[(0, 0.35), (0.25, 1), (0.5, 0.5), (0.75, 1), (1, 0.35)]],
    "x": [[(0, 0.35), (1, 1)], [(1, 0.35), (0, 1)]],
    "y": [[(0, 0.3), (0.5, 0.75)], [(1, 0.3), (0.3, 1.2)]],
    "e": [[(0.05, 0.62), (0.95, 0.62), *_arc(0.5, 0.62, 0.45, 0.35, 0, -300)]],
    "a": [_arc(0.45, 0.68, 0.4, 0.3, 0, 360, 13), [(0.85, 0.35), (0.85, 1)]],
    "#": [[(0.35, 0), (0.25, 1)], [(0.75, 0), (0.65, 1)], [(0, 0.33), (1, 0.33)], [(0, 0.67), (1, 0.67)]],
    "+": [[(0.5, 0), (0.5, 1)], [(0, 0.5), (1, 0.5)]],
    "=": [[(0, 0.35), (1, 0.35)], [(0, 0.7), (1, 0.7)]],
    "*": [[(0.5, 0), (0.5, 1)], [(0.07, 0.25), (0.93, 0.75)], [(0.93, 0.25), (0.07, 0.75)]],
    "%": [_arc(0.2, 0.2, 0.18, 0.18, 0, 360, 11), _arc(0.8, 0.8, 0.18, 0.18, 0, 360, 11), [(1, 0), (0, 1)]],
    "?": [[*_arc(0.5, 0.3, 0.4, 0.3, 190, 420), (0.5, 0.7)], [(0.5, 0.9), (0.5, 0.95)]],
    "&": [[(1, 1), (0.2, 0.35), *_arc(0.4, 0.2, 0.2, 0.2, 180, 360), (0.1, 0.8), *_arc(0.35, 0.8, 0.3, 0.2, 180, 40)]],
    "@": [_arc(0.5, 0.5, 0.2, 0.2, 0, 360, 11), [(0.7, 0.3), (0.7, 0.7), *_arc(0.5, 0.5, 0.5, 0.5, 20, 340, 15)]],
    "<": [[(1, 0), (0, 0.5), (1, 1)]],
    ">": [[(0, 0), (1, 0.5), (0, 1)]],
    "π": [[(0, 0.1), (1, 0.1)], [(0.3, 0.1), (0.25, 1)], [(0.7, 0.1), (0.75, 1)]],
    "Σ": [[(1, 0), (0, 0), (0.5, 0.5), (0, 1), (1, 1)]],
    "Δ": [[(0.5, 0), (1, 1), (0, 1), (0.5, 0)]],
    "λ": [[(0.1, 0), (0.9, 1)], [(0.5, 0.45), (0, 1)]],
    "Ω": [[(0, 1), (0.3, 1), *_arc(0.5, 0.45, 0.45, 0.45, 120, -300), (0.7, 1), (1, 1)]],
    "✓": [[(0, 0.6), (0.35, 1), (1, 0)]],
    "c": [_arc(0.55, 0.65, 0.45, 0.35, 40, 320)],
    "d": [_arc(0.45, 0.68, 0.4, 0.3, 0, 360, 13), [(0.85, 0), (0.85, 1)]],
    "f": [[*_arc(0.7, 0.15, 0.3, 0.15, 0, -180), (0.4, 1)], [(0.1, 0.4), (0.75, 0.4)]],
    "t": [[(0.45, 0), (0.45, 0.85), *_arc(0.7, 0.85, 0.25, 0.15, 180, 90)], [(0.1, 0.3), (0.85, 0.3)]],
    "u": [[(0, 0.35), *_arc(0.45, 0.75, 0.45, 0.25, 180, 0), (0.9, 0.35)], [(0.9, 0.35), (0.95, 1)]],
    "v": [[(0, 0.35), (0.5, 1), (1, 0.35)]],
    "p": [[(0, 0.35), (0, 1.3)], [*_arc(0.45, 0.6, 0.45, 0.25, 0, 360, 13)]],
    "$": [[*_arc(0.5, 0.3, 0.4, 0.2, 340, 90), *_arc(0.5, 0.7, 0.4, 0.2, 270, 160)], [(0.5, -0.05), (0.5, 1.05)]],
    "€": [_arc(0.6, 0.5, 0.45, 0.5, 45, 315), [(0, 0.4), (0.6, 0.4)], [(0, 0.6), (0.6, 0.6)]],
    "£": [[*_arc(0.6, 0.25, 0.25, 0.25, 0, -180), (0.35, 0.6), (0.15, 1), (1, 1)], [(0.05, 0.55), (0.7, 0.55)]],
    "¥": [[(0, 0), (0.5, 0.5), (1, 0)], [(0.5, 0.5), (0.5, 1)], [(0.15, 0.6), (0.85, 0.6)], [(0.15, 0.8), (0.85, 0.8)]],
    "¶": [[*_arc(0.4, 0.3, 0.35, 0.3, 90, 270), (0.7, 0), (0.7, 1)], [(0.95, 0), (0.95, 1)]],
    "÷": [[(0, 0.5), (1, 0.5)], [(0.5, 0.15), (0.5, 0.2)], [(0.5, 0.8), (0.5, 0.85)]],
    "→": [[(0, 0.5), (1, 0.5)], [(0.65, 0.2), (1, 0.5), (0.65, 0.8)]],
    "♡": [[(0.5, 1), *_arc(0.27, 0.3, 0.25, 0.25, 140, -90), *_arc(0.73, 0.3, 0.25, 0.25, 270, 400), (0.5, 1)]],
}
FONT_TEXT = "ACDEFHKLMNPRTUVWXYacdefhkmnprtuvwxy#+=*%?&@<>$€£¥§¶"


def _field(strokes, rng, box: float = 20.0) -> np.ndarray:
    """Strokes in a unit box -> 28x28 float ink: scaled into a ~20 px box, slanted, pen of random width."""
    slant = math.tan(math.radians(rng.uniform(-15, 15)))
    aspect = rng.uniform(0.6, 1.1)
    pen = rng.uniform(1.3, 3.2)
    pts_all = np.concatenate([np.asarray(s, float) for s in strokes])
    lo, hi = pts_all.min(axis=0), pts_all.max(axis=0)
    span = max(hi - lo)
    big = Image.new("L", (112, 112), 0)
    draw = ImageDraw.Draw(big)
    for stroke in strokes:
        p = (np.asarray(stroke, float) - lo) / span
        p[:, 0] = p[:, 0] * aspect + slant * (1 - p[:, 1])
        p = p + rng.normal(0, 0.025, p.shape)
        p = (p * box + (28 - box) / 2) * 4
        draw.line([tuple(q) for q in p], fill=255, width=max(1, round(pen * 4)), joint="curve")
    return np.asarray(big.reduce(4), np.float32) / 255.0


def letters(rng: np.random.Generator) -> np.ndarray:
    name = list(GLYPHS)[int(rng.integers(len(GLYPHS)))]
    return _field(GLYPHS[name], rng, box=rng.uniform(14, 21))


def scribbles(rng: np.random.Generator) -> np.ndarray:
    kind = rng.random()
    if kind < 0.6:  # a pen wandering with momentum
        n = int(rng.integers(12, 40))
        heading, pos, pts = rng.uniform(0, 2 * math.pi), np.zeros(2), []
        turn = rng.uniform(0.3, 1.2)
        for _ in range(n):
            heading += rng.normal(0, turn)
            pos = pos + [math.cos(heading), math.sin(heading)]
            pts.append(tuple(pos))
        strokes = [pts]
    elif kind < 0.8:  # hatching: parallel strokes
        angle, k = rng.uniform(0, math.pi), int(rng.integers(3, 8))
        d = np.array([math.cos(angle), math.sin(angle)])
        nrm = np.array([-d[1], d[0]])
        strokes = [[tuple(nrm * i / k - d * 0.5), tuple(nrm * i / k + d * 0.5)] for i in range(k)]
    else:  # a loop of loops (a coil)
        turns = rng.uniform(2, 5)
        t = np.linspace(0, 2 * math.pi * turns, 60)
        strokes = [[(0.3 * math.cos(a) + a / (2 * math.pi * turns), 0.4 * math.sin(a)) for a in t]]
    return _field(strokes, rng, box=rng.uniform(14, 22))


def shapes(rng: np.random.Generator) -> np.ndarray:
    kind = int(rng.integers(6))
    if kind == 0:  # polygon: triangle to hexagon
        k = int(rng.integers(3, 7))
        a0 = rng.uniform(0, 2 * math.pi)
        pts = [(math.cos(a0 + 2 * math.pi * i / k), math.sin(a0 + 2 * math.pi * i / k)) for i in range(k + 1)]
    elif kind == 1:  # star
        k = int(rng.integers(4, 7))
        radius = [1 if i % 2 == 0 else 0.45 for i in range(2 * k + 1)]
        pts = [(r * math.cos(math.pi * i / k), r * math.sin(math.pi * i / k)) for i, r in enumerate(radius)]
    elif kind == 2:  # rectangle
        w = rng.uniform(0.4, 1)
        pts = [(0, 0), (w, 0), (w, 1), (0, 1), (0, 0)]
    elif kind == 3:  # arrow
        pts = [(0, 0.5), (1, 0.5), (0.7, 0.2), (1, 0.5), (0.7, 0.8)]
    elif kind == 4:  # spiral
        t = np.linspace(0, rng.uniform(3, 6) * math.pi, 50)
        pts = [(a * math.cos(a), a * math.sin(a)) for a in t]
    else:  # a cross in a box, a grid
        return _field([[(0, 0), (1, 0), (1, 1), (0, 1), (0, 0)], [(0, 0), (1, 1)], [(1, 0), (0, 1)]], rng)
    ink = _field([pts], rng, box=rng.uniform(14, 22))
    if kind in (0, 1, 2) and rng.random() < 0.5:
        ink = np.maximum(ink, ndimage.binary_fill_holes(ink > 0.3).astype(np.float32))
    return ink


def _blob(rng: np.random.Generator, size: int = 28) -> np.ndarray:
    """A smooth random star-convex silhouette filling much of the field (a garment, a shoe, a bag...)."""
    k = 24
    radii = ndimage.gaussian_filter1d(rng.uniform(0.5, 1.0, k), 1.5, mode="wrap")
    angles = np.linspace(0, 2 * math.pi, k, endpoint=False)
    rx, ry = rng.uniform(8, 13), rng.uniform(8, 13)
    pts = [(14 + rx * r * math.cos(a), 14 + ry * r * math.sin(a)) for r, a in zip(radii, angles, strict=True)]
    img = Image.new("L", (size * 4, size * 4), 0)
    ImageDraw.Draw(img).polygon([(x * 4, y * 4) for x, y in pts], fill=255)
    return np.asarray(img.reduce(4), np.float32) / 255.0


def textures(rng: np.random.Generator) -> np.ndarray:
    kind = int(rng.integers(5))
    yy, xx = np.mgrid[:28, :28].astype(np.float32)
    if kind == 0:  # a textured object silhouette
        shape = _blob(rng)
        texture = ndimage.gaussian_filter(rng.random((28, 28)), rng.uniform(0.5, 2))
        texture = (texture - texture.min()) / max(float(np.ptp(texture)), 1e-6)
        return shape * (rng.uniform(0.3, 0.7) + rng.uniform(0.2, 0.6) * texture)
    if kind == 1:  # clouds
        field = ndimage.gaussian_filter(rng.random((28, 28)), rng.uniform(1.5, 4))
        field = (field - field.min()) / max(float(np.ptp(field)), 1e-6)
        return field if rng.random() < 0.5 else (field > rng.uniform(0.4, 0.7)).astype(np.float32)
    if kind == 2:  # stripes
        angle, period = rng.uniform(0, math.pi), rng.uniform(3, 9)
        return (np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / period) > 0).astype(np.float32)
    if kind == 3:  # checks
        p = int(rng.integers(3, 8))
        return (((xx // p) + (yy // p)) % 2).astype(np.float32)
    # a filled object with a few parts (a face-like arrangement, a wheel...)
    out = _blob(rng) * rng.uniform(0.4, 1.0)
    for _ in range(int(rng.integers(1, 4))):
        cy, cx, r = rng.uniform(6, 22), rng.uniform(6, 22), rng.uniform(1.5, 4)
        out = np.where(np.hypot(yy - cy, xx - cx) < r, rng.uniform(0, 1), out)
    return out.astype(np.float32)


def fonts(rng: np.random.Generator) -> np.ndarray:
    """A letter or sign in Pillow's bundled font (needs no font on the machine)."""
    char = FONT_TEXT[int(rng.integers(len(FONT_TEXT)))]
    font = ImageFont.load_default(size=int(rng.integers(60, 90)))
    img = Image.new("L", (160, 160), 0)
    ImageDraw.Draw(img).text((20, 10), char, fill=255, font=font)
    a = np.asarray(img, np.float32) / 255.0
    rows, cols = np.flatnonzero(a.max(axis=1) > 0.1), np.flatnonzero(a.max(axis=0) > 0.1)
    crop = a[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    f = rng.uniform(14, 20) / max(crop.shape)
    size = (max(1, round(crop.shape[1] * f)), max(1, round(crop.shape[0] * f)))
    small = np.asarray(Image.fromarray(crop, "F").resize(size, Image.Resampling.BOX))
    out = np.zeros((28, 28), np.float32)
    top, left = (28 - size[1]) // 2, (28 - size[0]) // 2
    out[top : top + size[1], left : left + size[0]] = small
    return np.clip(out / max(float(out.max()), 1e-6), 0, 1)


FAMILIES = {"letters": letters, "scribbles": scribbles, "shapes": shapes, "textures": textures, "fonts": fonts}
TRAINED = ("letters", "scribbles", "shapes", "textures")  # "fonts" is held out of training on purpose


def sample(rng: np.random.Generator, family: str) -> np.ndarray:
    """One 28x28 float ink field of the family."""
    return np.clip(FAMILIES[family](rng), 0, 1).astype(np.float32)
