"""A seeded family of the ways a digit image gets spoiled before it reaches us: training data and benchmark.

Every degradation takes float ink in [0, 1] (1 = ink, white on black, like MNIST) and a numpy Generator,
and returns float ink again, maybe at another size. `degrade(rng, digit, family, severity)` applies one
family at severity 1 (mild) to 3 (harsh); `random_degradation` combines up to three, each at a random
severity, for training; `to_photo` finally turns the ink into what a person hands in: a grey image with
either polarity, any paper and ink levels. The robustness benchmark measures the engine family by family
on MNIST test digits; training only ever sees MNIST training digits through it.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

SEVERITIES = (1, 2, 3)


def _line(shape: tuple[int, int], points, width: float, dotted: bool = False) -> np.ndarray:
    """A polyline through `points` (x, y), `width` px, drawn 4x larger and reduced (anti-aliased)."""
    h, w = shape
    big = Image.new("L", (w * 4, h * 4), 0)
    draw = ImageDraw.Draw(big)
    pts = [(x * 4, y * 4) for x, y in points]
    pen = max(1, round(width * 4))
    if dotted:
        for (x0, y0), (x1, y1) in zip(pts, pts[1:], strict=False):
            n = max(2, int(math.hypot(x1 - x0, y1 - y0) / (pen * 2.5)))
            for t in np.linspace(0, 1, n):
                cx, cy = x0 + (x1 - x0) * t, y0 + (y1 - y0) * t
                draw.ellipse((cx - pen / 2, cy - pen / 2, cx + pen / 2, cy + pen / 2), fill=255)
    else:
        draw.line(pts, fill=255, width=pen, joint="curve")
    return np.asarray(big.reduce(4), np.float32) / 255.0


def _across(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[tuple[float, float], tuple[float, float]]:
    """Two points on opposite sides of the picture: a line that crosses it (and usually the digit)."""
    h, w = shape
    angle = rng.uniform(0, math.pi)
    cx, cy = w / 2 + rng.uniform(-0.2, 0.2) * w, h / 2 + rng.uniform(-0.2, 0.2) * h
    r = max(h, w)
    return (cx - r * math.cos(angle), cy - r * math.sin(angle)), (cx + r * math.cos(angle), cy + r * math.sin(angle))


def _scale(shape: tuple[int, int]) -> float:
    """Pixels per MNIST pixel: marks and blurs grow with the picture."""
    return max(shape) / 28.0


# --------------------------------------------------------------------------- noise


def gaussian_noise(rng, x, s):
    return x + rng.normal(0, (0.12, 0.22, 0.35)[s - 1], x.shape)


def shot_noise(rng, x, s):
    lam = (40, 15, 6)[s - 1]
    base = 0.08 * s  # photon noise needs light: a dim, not black, background
    return rng.poisson((x * (1 - base) + base) * lam) / lam - base


def impulse_noise(rng, x, s):
    amount = (0.06, 0.15, 0.28)[s - 1]
    u = rng.random(x.shape)
    out = x.copy()
    out[u < amount / 2] = 0.0
    out[(u >= amount / 2) & (u < amount)] = 1.0
    return out


def spatter(rng, x, s):
    """Blobs and drops of ink or paint beside and over the digit."""
    h, w = x.shape
    k = _scale(x.shape)
    out = x.copy()
    for _ in range(int(rng.integers(2, 4 + 4 * s))):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        r = rng.uniform(0.4, 0.8 + 0.5 * s) * k
        yy, xx = np.ogrid[:h, :w]
        blob = np.clip(r + 0.5 - np.hypot(yy - cy, xx - cx), 0, 1)
        out = np.maximum(out, blob * rng.uniform(0.5, 1.0))
    return out


# --------------------------------------------------------------------------- blur


def gaussian_blur(rng, x, s):
    return ndimage.gaussian_filter(x, (0.7, 1.2, 1.8)[s - 1] * _scale(x.shape) * rng.uniform(0.8, 1.2))


def motion_blur(rng, x, s):
    length = (3, 5, 8)[s - 1] * _scale(x.shape)
    n = max(2, round(length))
    kernel = _line((n + 2, n + 2), [(1, 1 + rng.uniform(0, n)), (1 + n, 1 + rng.uniform(0, n))], 1.0)
    kernel /= max(kernel.sum(), 1e-6)
    return ndimage.convolve(x, kernel, mode="constant")


def glass_blur(rng, x, s):
    """Frosted glass: blur, then swap each pixel with a random neighbour, a few rounds."""
    sigma, delta, rounds = ((0.5, 1, 1), (0.6, 1, 2), (0.8, 2, 2))[s - 1]
    out = ndimage.gaussian_filter(x, sigma)
    h, w = x.shape
    for _ in range(rounds):
        dy = rng.integers(-delta, delta + 1, x.shape)
        dx = rng.integers(-delta, delta + 1, x.shape)
        yy, xx = np.mgrid[:h, :w]
        out = out[np.clip(yy + dy, 0, h - 1), np.clip(xx + dx, 0, w - 1)]
    return ndimage.gaussian_filter(out, sigma)


# --------------------------------------------------------------------------- lines and marks


def line(rng, x, s):
    a, b = _across(rng, x.shape)
    return np.maximum(x, _line(x.shape, [a, b], (0.8, 1.5, 2.5)[s - 1] * _scale(x.shape)) * rng.uniform(0.6, 1))


def zigzag(rng, x, s):
    h, w = x.shape
    n = int(rng.integers(3, 5 + s))
    if rng.random() < 0.5:
        pts = [(t * w, rng.uniform(0.1, 0.9) * h) for t in np.linspace(-0.05, 1.05, n)]
    else:
        pts = [(rng.uniform(0.1, 0.9) * w, t * h) for t in np.linspace(-0.05, 1.05, n)]
    return np.maximum(x, _line(x.shape, pts, (0.8, 1.3, 2.0)[s - 1] * _scale(x.shape)) * rng.uniform(0.6, 1))


def dotted_line(rng, x, s):
    a, b = _across(rng, x.shape)
    width = (1.0, 1.6, 2.4)[s - 1] * _scale(x.shape)
    return np.maximum(x, _line(x.shape, [a, b], width, dotted=True) * rng.uniform(0.7, 1))


def strike(rng, x, s):
    """A pen stroke through the digit's middle, as thick as its own strokes (a crossed-out digit)."""
    h, w = x.shape
    rows, cols = np.flatnonzero(x.max(axis=1) > 0.5), np.flatnonzero(x.max(axis=0) > 0.5)
    if rows.size == 0:
        return x
    y = rng.uniform(rows[0], rows[-1] + 1)
    tilt = rng.uniform(-0.3, 0.3) * (cols[-1] - cols[0])
    reach = (0.5, 0.8, 1.2)[s - 1] * (cols[-1] - cols[0] + 1)
    mid = (cols[0] + cols[-1]) / 2
    pts = [(mid - reach, y - tilt), (mid + reach, y + tilt)]
    return np.maximum(x, _line(x.shape, pts, rng.uniform(1.5, 2.5) * _scale(x.shape)))


def ruled_paper(rng, x, s):
    """Lined or squared paper behind the digit: thin, regular, fainter than the ink."""
    h, w = x.shape
    spacing = rng.uniform((10, 7, 5)[s - 1], (14, 10, 7)[s - 1]) * _scale(x.shape)
    width = rng.uniform(0.6, 1.2) * _scale(x.shape)
    level = rng.uniform(0.25, (0.5, 0.65, 0.8)[s - 1])
    paper = np.zeros_like(x)
    offset = rng.uniform(0, spacing)
    for y in np.arange(offset, h, spacing):
        paper = np.maximum(paper, _line(x.shape, [(-1, y), (w + 1, y)], width))
    if s == 3 or rng.random() < 0.3:  # squared paper
        for xx in np.arange(rng.uniform(0, spacing), w, spacing):
            paper = np.maximum(paper, _line(x.shape, [(xx, -1), (xx, h + 1)], width))
    return np.maximum(x, paper * level)


# --------------------------------------------------------------------------- light


def band(rng, x, s):
    """A bright stripe down (or across) the picture: added light, or an inverted strip of it."""
    h, w = x.shape
    vertical = rng.random() < 0.7
    length = w if vertical else h
    width = max(1, round(rng.uniform(0.1, (0.2, 0.3, 0.45)[s - 1]) * length))
    start = int(rng.integers(0, max(1, length - width)))
    out = x.copy()
    region = (slice(None), slice(start, start + width)) if vertical else (slice(start, start + width), slice(None))
    if rng.random() < 0.5:
        out[region] = 1.0 - out[region]
    else:
        out[region] = out[region] + rng.uniform(0.4, 1.0)
    return out


def _plasma(rng, shape, roughness: float) -> np.ndarray:
    """Fractal cloud in [0, 1]: octaves of smoothed noise, coarse ones strongest."""
    h, w = shape
    out = np.zeros(shape, np.float32)
    for octave in range(4):
        cells = 2 ** (octave + 1)
        grid = rng.random((cells + 1, cells + 1)).astype(np.float32)
        up = np.asarray(Image.fromarray(grid, "F").resize((w, h), Image.Resampling.BICUBIC))
        out += up * roughness**octave
    out -= out.min()
    return out / max(float(out.max()), 1e-6)


def fog(rng, x, s):
    return x + _plasma(rng, x.shape, 0.6) * (0.35, 0.55, 0.8)[s - 1]


def gradient(rng, x, s):
    h, w = x.shape
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    ramp = (math.cos(angle) * xx / w + math.sin(angle) * yy / h) + 1.0
    return x + (ramp / 2) * (0.3, 0.5, 0.75)[s - 1]


def contrast(rng, x, s):
    c = (0.5, 0.3, 0.15)[s - 1] * rng.uniform(0.8, 1.2)
    return x * c + rng.uniform(0, 1 - c) * rng.uniform(0.2, 1)


def brightness(rng, x, s):
    return x + (0.3, 0.5, 0.7)[s - 1]


def jpeg(rng, x, s):
    quality = int(rng.integers(*((20, 35), (10, 18), (4, 9))[s - 1]))
    buffer = io.BytesIO()
    Image.fromarray((np.clip(x, 0, 1) * 255).astype(np.uint8)).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer), np.float32) / 255.0


# --------------------------------------------------------------------------- stroke shape


def outline(rng, x, s):
    """Edges only, as an edge detector draws them: the strokes become their two borders."""
    mask = x > 0.4
    if s >= 2:
        mask = ndimage.binary_dilation(mask, iterations=s - 1)
    edge = mask & ~ndimage.binary_erosion(mask)
    out = edge.astype(np.float32)
    return ndimage.gaussian_filter(out, 0.4) if s == 1 else out


def hollow(rng, x, s):
    """Bubble letters: fat strokes drawn as an outline with an empty inside."""
    k = max(1, round(_scale(x.shape)))
    mask = ndimage.binary_dilation(x > 0.4, iterations=s * k)
    inner = ndimage.binary_erosion(mask, iterations=max(1, round(rng.uniform(0.8, 1.5) * k)))
    return (mask & ~inner).astype(np.float32)


def thickness(rng, x, s):
    """Marker-fat or hairline strokes."""
    if rng.random() < 0.5:
        return ndimage.grey_dilation(x, size=(1 + 2 * s, 1 + 2 * s))
    return ndimage.grey_erosion(x, size=(1 + s, 1 + s)) if s < 3 else x * (x > 0.85)


# --------------------------------------------------------------------------- geometry and resolution


def _resample(x: np.ndarray, size: tuple[int, int], nearest: bool) -> np.ndarray:
    method = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(x.astype(np.float32), "F").resize(size, method))


def low_res(rng, x, s):
    """Scanned or sent small, then enlarged: the digit stays where it was."""
    small = int(rng.integers(*((18, 22), (12, 16), (8, 11))[s - 1]))
    h, w = x.shape
    tiny = np.asarray(Image.fromarray(x.astype(np.float32), "F").resize((small, small), Image.Resampling.BOX))
    out = int(rng.integers(28, 65))
    return _resample(tiny, (out, out), rng.random() < 0.5)


def frame_fill(rng, x, s):
    """A digit cut out to fill its frame (ink touching one to four edges), at low resolution, enlarged.

    Like digit collections made from scanned forms: the box around each digit is stretched to a small square
    (16 or 8 px), strokes go soft, and whoever reads it enlarges it with nearest or bilinear resampling.
    """
    rows, cols = np.flatnonzero(x.max(axis=1) > 0.2), np.flatnonzero(x.max(axis=0) > 0.2)
    if rows.size == 0:
        return x
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    h, w = x.shape
    # Severity 1 leaves a margin on some sides; 3 cuts into the ink on all four.
    cut = (-1, 0, 1)[s - 1]
    sides = rng.random(4) < (0.5, 0.8, 1.0)[s - 1]
    m = [int(rng.integers(1, 4)) if not side else -cut * int(rng.integers(0, 2)) for side in sides]
    y0, y1 = max(0, y0 - m[0]), min(h, y1 + m[1])
    x0, x1 = max(0, x0 - m[2]), min(w, x1 + m[3])
    crop = x[y0:y1, x0:x1]
    small = int(rng.choice((16, 16, 12, 8)) if s > 1 else rng.integers(16, 29))
    if rng.random() < 0.6:  # stretched to the square, as most collections do
        size = (small, small)
    else:
        f = small / max(crop.shape)
        size = (max(1, round(crop.shape[1] * f)), max(1, round(crop.shape[0] * f)))
    tiny = np.asarray(Image.fromarray(crop.astype(np.float32), "F").resize(size, Image.Resampling.BOX))
    if rng.random() < 0.5:
        tiny = ndimage.gaussian_filter(tiny, rng.uniform(0.3, 0.7))
    tiny = tiny / max(float(tiny.max()), 1e-6)
    out = int(rng.integers(28, 65))
    scale = out / max(size)
    return _resample(tiny, (max(1, round(size[0] * scale)), max(1, round(size[1] * scale))), rng.random() < 0.5)


def rotate(rng, x, s):
    angle = rng.choice((-1, 1)) * rng.uniform(*((10, 20), (20, 30), (30, 40))[s - 1])
    return ndimage.rotate(x, angle, reshape=True, order=1)


def shear(rng, x, s):
    k = rng.choice((-1, 1)) * (0.25, 0.45, 0.65)[s - 1]
    h, w = x.shape
    pad = int(abs(k) * h) + 1
    big = np.pad(x, ((0, 0), (pad, pad)))
    matrix = np.array([[1, 0], [k, 1]])
    return ndimage.affine_transform(big, matrix, offset=(0, -k * h / 2), order=1)


def translate(rng, x, s):
    """Off-centre, even partly off the frame's middle, in a larger picture."""
    h, w = x.shape
    pad = (4, 10, 20)[s - 1]
    big = np.pad(x, pad)
    dy, dx = rng.integers(-pad, pad + 1, 2)
    return np.roll(np.roll(big, dy, axis=0), dx, axis=1)


def scale(rng, x, s):
    """Much smaller or larger than MNIST's 20 px within the same frame."""
    f = rng.choice(((0.6, 1.3), (0.45, 1.5), (0.3, 1.7))[s - 1])
    h, w = x.shape
    size = (max(2, round(w * f)), max(2, round(h * f)))
    resized = _resample(x, size, False)
    out = np.zeros_like(x)
    if f < 1:
        top, left = (h - size[1]) // 2, (w - size[0]) // 2
        out[top : top + size[1], left : left + size[0]] = resized
    else:
        top, left = (size[1] - h) // 2, (size[0] - w) // 2
        out = resized[top : top + h, left : left + w]
    return out


FAMILIES = {
    "gaussian_noise": gaussian_noise,
    "shot_noise": shot_noise,
    "impulse_noise": impulse_noise,
    "spatter": spatter,
    "gaussian_blur": gaussian_blur,
    "motion_blur": motion_blur,
    "glass_blur": glass_blur,
    "line": line,
    "zigzag": zigzag,
    "dotted_line": dotted_line,
    "strike": strike,
    "ruled_paper": ruled_paper,
    "band": band,
    "fog": fog,
    "gradient": gradient,
    "contrast": contrast,
    "brightness": brightness,
    "jpeg": jpeg,
    "outline": outline,
    "hollow": hollow,
    "thickness": thickness,
    "low_res": low_res,
    "frame_fill": frame_fill,
    "rotate": rotate,
    "shear": shear,
    "translate": translate,
    "scale": scale,
}
# Applied last when combined: they change the size or the pixel statistics everything else works on.
_LAST = ("low_res", "frame_fill", "jpeg")


def degrade(rng: np.random.Generator, ink: np.ndarray, family: str, severity: int) -> np.ndarray:
    """Float ink (1 = ink) -> the same digit spoiled by one family at severity 1-3, clipped to [0, 1]."""
    out = FAMILIES[family](rng, np.asarray(ink, np.float32), severity)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def random_degradation(
    rng: np.random.Generator, ink: np.ndarray, most: int = 3, weights: dict[str, float] | None = None
) -> tuple[np.ndarray, list[str]]:
    """Up to `most` families at random severities, the size-changing ones last -> (ink, names applied).

    `weights` (default 1 each) makes some families likelier: training leans on the ones it finds hardest."""
    count = int(rng.integers(1, most + 1))
    odds = None if weights is None else np.array([weights.get(name, 1.0) for name in FAMILIES])
    names = list(rng.choice(list(FAMILIES), size=count, replace=False, p=None if odds is None else odds / odds.sum()))
    names.sort(key=lambda n: n in _LAST)
    for name in names:
        ink = degrade(rng, ink, name, int(rng.integers(1, 4)))
    return ink, names


def to_photo(rng: np.random.Generator, ink: np.ndarray, invert: bool | None = None) -> Image.Image:
    """Float ink -> a grey picture: light ink on a dark ground or (as on paper) dark ink on a light one."""
    if invert is None:
        invert = bool(rng.random() < 0.5)
    ground, level = rng.uniform(0, 0.25), rng.uniform(0.7, 1.0)
    grey = ground + (level - ground) * np.clip(ink, 0, 1)
    if invert:
        grey = 1.0 - grey
    return Image.fromarray((grey * 255).round().astype(np.uint8), "L")


def as_image(ink: np.ndarray) -> Image.Image:
    """Float ink -> the uint8 white-on-black picture as is (the benchmark's standard presentation)."""
    return Image.fromarray((np.clip(ink, 0, 1) * 255).round().astype(np.uint8), "L")
