"""Re-draw real MNIST digits the ways people hand them in: canvases, photos, paper, thumbnails.

Each variant takes a 28x28 MNIST digit and a seeded numpy Generator and returns
what a user would give the app (a numpy array like the drawing canvas sends, or
encoded PNG/JPEG bytes like an upload). The digit's shape is the real MNIST
stroke pattern, upsampled smoothly (bicubic, then a soft threshold) so strokes
look drawn rather than blocky. Everything is deterministic given the seed:
`redraw(name, digit, seed, index)`.

The tests check the engine reads every variant (tests/test_redrawn.py), benchmarks/robustness.py measures
it, and a fine-tune is evaluated on them (mnist.finetune): one copy, here in the engine.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# --------------------------------------------------------------------------- strokes


def strokes(digit: np.ndarray, height: int, *, angle: float = 0.0, pen: float | None = None) -> np.ndarray:
    """MNIST digit -> float32 ink (1 = ink) about `height` px tall, cropped to the ink.

    pen=None keeps MNIST's own varying stroke width (a drawing brush); pen=w redraws
    the digit's skeleton with a round pen w px wide (fine pens, fat markers).
    """
    ys, xs = np.nonzero(digit > 0)
    crop = digit[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.float32) / 255.0
    crop = np.pad(crop, 2)
    f = height / (crop.shape[0] - 4)
    size = (max(3, round(crop.shape[1] * f)), max(3, round(crop.shape[0] * f)))
    up = Image.fromarray(crop, "F").resize(size, Image.Resampling.BICUBIC)
    if angle:
        up = up.rotate(angle, Image.Resampling.BICUBIC, expand=True)
    u = np.asarray(up)
    if pen is None:
        ink = np.clip((u - 0.3) / 0.3, 0, 1)  # soft threshold: ~f/3 px anti-aliased edge
    else:
        pad = int(pen) + 4
        skeleton = np.pad(_centreline(u > 0.45), pad)
        ink = _pen(skeleton, pen)
    rows, cols = np.flatnonzero(ink.max(axis=1) > 0.05), np.flatnonzero(ink.max(axis=0) > 0.05)
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(np.float32)


def _thin(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning, vectorised: the one-pixel skeleton a pen would trace."""
    m = np.pad(mask, 1).astype(np.uint8)
    while True:
        changed = False
        for step in (0, 1):
            p = [m[1:-1, 1:-1]]
            # Neighbours P2..P9, clockwise from north.
            for dy, dx in ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1)):
                p.append(m[1 + dy : m.shape[0] - 1 + dy, 1 + dx : m.shape[1] - 1 + dx])
            n = sum(p[1:])
            ring = p[1:] + [p[1]]
            transitions = sum(((ring[i] == 0) & (ring[i + 1] == 1)).astype(np.uint8) for i in range(8))
            if step == 0:
                c = (p[1] * p[3] * p[5] == 0) & (p[3] * p[5] * p[7] == 0)
            else:
                c = (p[1] * p[3] * p[7] == 0) & (p[1] * p[5] * p[7] == 0)
            remove = (p[0] == 1) & (n >= 2) & (n <= 6) & (transitions == 1) & c
            if remove.any():
                m[1:-1, 1:-1][remove] = 0
                changed = True
        if not changed:
            return m[1:-1, 1:-1].astype(bool)


def _centreline(mask: np.ndarray) -> np.ndarray:
    """The line a pen would trace: the skeleton, but blobs (filled loops of bold MNIST digits) become rings.

    A skeleton alone turns a filled-in loop into a dot or a stub (an 8 becomes a 1); a person
    with a pen draws the loop, so areas thicker than ~1.25 typical stroke widths are hollowed first.
    """
    depth = _distance(~mask, max(mask.shape))
    half = float(np.median(depth[_thin(mask)]))  # typical half stroke width, measured on the centreline
    return _thin(mask & ~(depth > 1.25 * half + 1))


def _distance(seed: np.ndarray, reach: float) -> np.ndarray:
    """Octagonal distance to the nearest seed pixel, grown ring by ring up to `reach` (inf beyond)."""
    dist = np.where(seed, 0.0, np.inf)
    frontier = seed.copy()
    step = 0
    while step < reach:
        step += 1
        p = np.pad(frontier, 1)
        grown = p[:-2, 1:-1] | p[2:, 1:-1] | p[1:-1, :-2] | p[1:-1, 2:]
        diag = p[:-2, :-2] | p[:-2, 2:] | p[2:, :-2] | p[2:, 2:]
        new = (grown | diag) & np.isinf(dist)
        if not new.any():
            break
        dist[new & grown] = step
        dist[new & ~grown] = step + 0.41  # diagonal-only growth is sqrt(2) further
        frontier = new | frontier
    return dist


def _box_blur(a: np.ndarray, r: int) -> np.ndarray:
    """Separable box blur of radius r (cumulative sums, edges extended); repeated, it approximates a Gaussian."""
    for axis in (0, 1):
        p = np.pad(a, [(r + 1, r) if ax == axis else (0, 0) for ax in (0, 1)], mode="edge")
        c = np.cumsum(p, axis=axis)
        a = (
            np.take(c, range(2 * r + 1, c.shape[axis]), axis=axis)
            - np.take(c, range(0, c.shape[axis] - 2 * r - 1), axis=axis)
        ) / (2 * r + 1)
    return a


def _pen(skeleton: np.ndarray, width: float) -> np.ndarray:
    """A round pen `width` px wide along the skeleton, with a ~1 px anti-aliased edge."""
    dist = _distance(skeleton, width / 2 + 1.5)
    return np.clip(width / 2 + 0.5 - dist, 0, 1).astype(np.float32)


# --------------------------------------------------------------------------- composing


def place(canvas: np.ndarray, ink: np.ndarray, top: int, left: int) -> None:
    """Max-composite ink onto a float canvas at (top, left), clipped at the canvas edges."""
    h, w = ink.shape
    H, W = canvas.shape
    y0, x0 = max(0, top), max(0, left)
    y1, x1 = min(H, top + h), min(W, left + w)
    if y1 > y0 and x1 > x0:
        region = canvas[y0:y1, x0:x1]
        np.maximum(region, ink[y0 - top : y1 - top, x0 - left : x1 - left], out=region)


def random_place(rng: np.random.Generator, canvas_hw: tuple[int, int], ink_hw: tuple[int, int]) -> tuple[int, int]:
    """A uniformly random position that keeps the whole digit on the canvas (off-centre on purpose)."""
    return int(rng.integers(0, max(1, canvas_hw[0] - ink_hw[0] + 1))), int(
        rng.integers(0, max(1, canvas_hw[1] - ink_hw[1] + 1))
    )


def paint(ink: np.ndarray, paper, colour) -> np.ndarray:
    """Float ink -> uint8 RGB: paper colour where there is no ink, ink colour where there is."""
    paper = np.broadcast_to(np.asarray(paper, np.float32), (*ink.shape, 3)) if np.ndim(paper) < 3 else paper
    colour = np.asarray(colour, np.float32)
    out = paper * (1 - ink[..., None]) + colour * ink[..., None]
    return np.clip(out, 0, 255).round().astype(np.uint8)


def encode(array: np.ndarray, fmt: str = "PNG", **params) -> bytes:
    """uint8 array -> encoded image bytes, as an upload would arrive."""
    out = io.BytesIO()
    Image.fromarray(array).save(out, fmt, **params)
    return out.getvalue()


def canvas_digit(digit, rng, size=(280, 280), heights=(90, 230), **kw) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A digit drawn off-centre on an empty float canvas; -> (canvas, ink box x0, y0, x1, y1)."""
    ink = strokes(digit, int(rng.integers(*heights)), **kw)
    canvas = np.zeros(size, np.float32)
    top, left = random_place(rng, size, ink.shape)
    place(canvas, ink, top, left)
    return canvas, (left, top, left + ink.shape[1], top + ink.shape[0])


# --------------------------------------------------------------------------- paper and phones


def _lighting(rng, shape, *, low=0.55, shadow_depth=(0.2, 0.4)) -> np.ndarray:
    """Multiplicative illumination: a linear gradient in a random direction and a soft shadow."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    theta = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(theta) * xx / w + np.sin(theta) * yy / h
    ramp = (ramp - ramp.min()) / max(1e-6, np.ptp(ramp))
    light = low + (1 - low) * ramp
    # A shadow (hand or phone) across one side, its edge blurred like a real penumbra.
    shadow = np.zeros(shape, np.float32)
    phi = rng.uniform(0, 2 * np.pi)
    offset = rng.uniform(0.25, 0.6)
    side = np.cos(phi) * (xx / w - 0.5) + np.sin(phi) * (yy / h - 0.5) > offset - 0.5
    shadow[side] = 1.0
    shadow = _box_blur(_box_blur(shadow, max(2, h // 20)), max(2, h // 20))
    return light * (1 - rng.uniform(*shadow_depth) * shadow)


def photo(
    ink,
    rng,
    *,
    paper=(225, 245),
    ink_level=(20, 70),
    low=0.55,
    shadow=(0.2, 0.4),
    noise=(2, 6),
    blur=(0.5, 1.2),
    quality=(20, 40),
) -> bytes:
    """Ink on paper under uneven light, through a phone camera: noise, blur, JPEG."""
    base = rng.uniform(*paper)
    paper_rgb = base * np.array([1.0, rng.uniform(0.97, 1.0), rng.uniform(0.9, 1.0)])  # slightly warm
    ink_rgb = rng.uniform(*ink_level) * np.array([1.0, 1.0, rng.uniform(1.0, 1.8)])  # black or blue pen
    rgb = paint(ink, paper_rgb, ink_rgb).astype(np.float32)
    rgb *= _lighting(rng, ink.shape, low=low, shadow_depth=shadow)[..., None]
    img = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(*blur)))
    arr = np.asarray(img, np.float32) + rng.normal(0, rng.uniform(*noise), (*ink.shape, 1))
    return encode(np.clip(arr, 0, 255).astype(np.uint8), "JPEG", quality=int(rng.integers(*quality)))


# --------------------------------------------------------------------------- the variants


def black_on_white(digit, rng):
    canvas, _ = canvas_digit(digit, rng)
    return paint(canvas, 255, 0)


def white_on_black(digit, rng):
    canvas, _ = canvas_digit(digit, rng)
    return paint(canvas, 0, 255)


def white_on_transparent(digit, rng):
    """The drawing canvas: RGB black where nothing was drawn, white strokes, ink in alpha."""
    canvas, _ = canvas_digit(digit, rng)
    rgb = paint((canvas > 0).astype(np.float32), 0, 255)
    return np.dstack([rgb, (canvas * 255).round().astype(np.uint8)])


def black_on_transparent(digit, rng):
    """Black strokes on a transparent canvas: RGB is black everywhere, the drawing is only in alpha."""
    canvas, _ = canvas_digit(digit, rng)
    return np.dstack([np.zeros((*canvas.shape, 3), np.uint8), (canvas * 255).round().astype(np.uint8)])


def alpha_only_white_rgb(digit, rng):
    """RGB white everywhere, the drawing only in alpha (another canvas export), as PNG bytes."""
    canvas, _ = canvas_digit(digit, rng)
    rgba = np.dstack([np.full((*canvas.shape, 3), 255, np.uint8), (canvas * 255).round().astype(np.uint8)])
    return encode(rgba)


def photo_uneven(digit, rng):
    h, w = (240, 320) if rng.random() < 0.5 else (320, 240)
    canvas, _ = canvas_digit(digit, rng, size=(h, w), heights=(90, 200))
    return photo(canvas, rng)


def thin_pen(digit, rng):
    canvas, _ = canvas_digit(digit, rng, heights=(110, 240), pen=float(rng.uniform(2, 4.5)))
    return paint(canvas, 255, 0)


def fat_marker(digit, rng):
    height = int(rng.integers(150, 240))
    pen = height * float(rng.uniform(0.15, 0.22))
    ink = strokes(digit, height, pen=pen)
    canvas = np.zeros((280, 280), np.float32)
    place(canvas, ink, *random_place(rng, canvas.shape, ink.shape))
    return paint(canvas, 255, 0) if rng.random() < 0.5 else paint(canvas, 0, 255)


def marker_photo(digit, rng):
    """A fat marker on paper, photographed: strokes as wide as a fifth of the digit, under uneven light."""
    height = int(rng.integers(130, 200))
    ink = strokes(digit, height, pen=height * float(rng.uniform(0.15, 0.22)))
    h, w = (240, 320) if rng.random() < 0.5 else (320, 240)
    canvas = np.zeros((h, w), np.float32)
    place(canvas, ink, *random_place(rng, canvas.shape, ink.shape))
    return photo(canvas, rng)


def tiny_corner(digit, rng):
    """A 12-20 px digit in a corner of a big canvas."""
    side = int(rng.integers(280, 420))
    ink = strokes(digit, int(rng.integers(12, 21)))
    canvas = np.zeros((side, side), np.float32)
    h, w = ink.shape
    top = int(rng.integers(2, 12)) if rng.random() < 0.5 else side - h - int(rng.integers(2, 12))
    left = int(rng.integers(2, 12)) if rng.random() < 0.5 else side - w - int(rng.integers(2, 12))
    place(canvas, ink, top, left)
    return paint(canvas, 255, 0) if rng.random() < 0.5 else paint(canvas, 0, 255)


def tiny_thumbnail(digit, rng):
    """The whole upload is 16-24 px: a drawing shrunk to a thumbnail."""
    canvas, _ = canvas_digit(digit, rng, heights=(170, 240))
    rgb = paint(canvas, 255, 0) if rng.random() < 0.5 else paint(canvas, 0, 255)
    side = int(rng.integers(16, 25))
    return encode(np.asarray(Image.fromarray(rgb).resize((side, side), Image.Resampling.LANCZOS)))


def ruled_lines(digit, rng):
    """Notebook paper: light blue ruled lines and a red margin, the digit across a line or two."""
    h, w = 300, 300
    spacing = int(rng.integers(22, 34))
    canvas, _ = canvas_digit(digit, rng, size=(h, w), heights=(int(spacing * 1.5), int(spacing * 3.5)))
    paper = np.empty((h, w, 3), np.float32)
    paper[:] = rng.uniform(235, 252)
    first = int(rng.integers(0, spacing))
    thick = int(rng.integers(1, 3))
    blue = np.array([rng.uniform(120, 170), rng.uniform(170, 200), rng.uniform(215, 240)])
    for y in range(first, h, spacing):
        paper[y : y + thick] = blue
    margin = int(rng.integers(20, 60))
    paper[:, margin : margin + thick] = np.array([rng.uniform(210, 240), rng.uniform(90, 140), rng.uniform(100, 150)])
    rgb = paint(canvas, paper, rng.uniform(10, 60) * np.array([1, 1, rng.uniform(1, 2.5)]))
    noisy = rgb.astype(np.float32) + rng.normal(0, 2.0, rgb.shape)
    return encode(np.clip(noisy, 0, 255).astype(np.uint8), "JPEG", quality=int(rng.integers(60, 90)))


def squared_paper(digit, rng):
    """Squared (graph) paper: a grey or light-blue grid every 14-24 px under the digit."""
    h, w = 280, 280
    spacing = int(rng.integers(14, 25))
    canvas, _ = canvas_digit(digit, rng, size=(h, w), heights=(100, 220))
    paper = np.empty((h, w, 3), np.float32)
    paper[:] = rng.uniform(235, 252)
    grey = rng.uniform(150, 200)
    grid = np.array([grey, grey, grey]) if rng.random() < 0.5 else np.array([140, 185, 230])
    x0, y0 = int(rng.integers(0, spacing)), int(rng.integers(0, spacing))
    paper[y0::spacing] = grid
    paper[:, x0::spacing] = grid
    rgb = paint(canvas, paper, rng.uniform(10, 60))
    return encode(rgb, "PNG")


def dust_specks(digit, rng):
    """Specks of dust and a few stray pen dots, away from the digit."""
    canvas, (x0, y0, x1, y1) = canvas_digit(digit, rng, heights=(90, 200))
    h, w = canvas.shape
    margin = int(0.15 * max(x1 - x0, y1 - y0))
    img = Image.fromarray((canvas * 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    placed = 0
    for _ in range(400):
        if placed >= int(rng.integers(8, 30)):
            break
        r = float(rng.uniform(0.6, 2.5)) if rng.random() < 0.85 else float(rng.uniform(3, 5))
        cx, cy = float(rng.uniform(0, w)), float(rng.uniform(0, h))
        if x0 - margin - r < cx < x1 + margin + r and y0 - margin - r < cy < y1 + margin + r:
            continue
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=int(rng.integers(120, 256)))
        placed += 1
    ink = np.asarray(img, np.float32) / 255.0
    return paint(ink, 255, 0) if rng.random() < 0.7 else paint(ink, 0, 255)


def dim_photo(digit, rng):
    """A dim, low-contrast, blurred photo saved with heavy JPEG compression."""
    canvas, _ = canvas_digit(digit, rng, size=(240, 320), heights=(100, 210))
    return photo(
        canvas,
        rng,
        paper=(110, 150),
        ink_level=(40, 75),
        low=0.75,
        shadow=(0.05, 0.2),
        noise=(1.5, 3.5),
        blur=(1.0, 2.0),
        quality=(10, 20),
    )


def tilted(digit, rng):
    canvas, _ = canvas_digit(digit, rng, angle=float(rng.uniform(-25, 25)))
    return paint(canvas, 255, 0) if rng.random() < 0.5 else paint(canvas, 0, 255)


def tight_crop(digit, rng):
    """Cropped right to the digit: ink touches the image edges (sometimes a pixel is cut off)."""
    ink = strokes(digit, int(rng.integers(60, 200)))
    cut = rng.integers(-1, 3, size=4)  # per side: <0 cuts into the ink, >0 leaves a thin margin
    canvas = np.zeros((ink.shape[0] + 6, ink.shape[1] + 6), np.float32)
    place(canvas, ink, 3, 3)
    top, left = 3 - cut[0], 3 - cut[1]
    bottom, right = 3 + ink.shape[0] + cut[2], 3 + ink.shape[1] + cut[3]
    canvas = canvas[top:bottom, left:right]
    return paint(canvas, 255, 0) if rng.random() < 0.6 else paint(canvas, 0, 255)


VARIANTS: dict[str, Callable[[np.ndarray, np.random.Generator], object]] = {
    "black_on_white": black_on_white,
    "white_on_black": white_on_black,
    "white_on_transparent": white_on_transparent,
    "black_on_transparent": black_on_transparent,
    "alpha_only_white_rgb": alpha_only_white_rgb,
    "photo_uneven": photo_uneven,
    "thin_pen": thin_pen,
    "fat_marker": fat_marker,
    "marker_photo": marker_photo,
    "tiny_corner": tiny_corner,
    "tiny_thumbnail": tiny_thumbnail,
    "ruled_lines": ruled_lines,
    "squared_paper": squared_paper,
    "dust_specks": dust_specks,
    "dim_photo": dim_photo,
    "tilted": tilted,
    "tight_crop": tight_crop,
}


def redraw(variant: str, digit: np.ndarray, seed: int, index: int):
    """Deterministic: the same (variant, digit, seed, index) always gives the same image."""
    rng = np.random.default_rng([seed, list(VARIANTS).index(variant), index])
    return VARIANTS[variant](digit, rng)
