"""Any image -> the 28x28 uint8 white-on-black array an MNIST model expects (pure Pillow/NumPy).

MNIST was made by cropping each digit to its ink, scaling the long side to 20 px
with anti-aliasing, and centring the result by centre of mass in a 28x28 field.
Models trained on it only work on inputs made the same way, so this module
reproduces that recipe after first turning whatever people hand in (canvas
RGBA, phone photos, scans, thumbnails) into a clean ink map.

The pipeline: load_image (validated decode) -> ink_map (alpha, polarity,
lighting, noise, ruled lines, dust) -> component selection (the digit, not the
specks) -> to_model_input (crop, stroke width, 20 px, centre of mass).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pillow_heif
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

from mnist.config import get_settings
from mnist.errors import ImageTooLarge, InvalidImage, NoDigitFound, UnsupportedImageType

ImageInput = Image.Image | np.ndarray | bytes | str | os.PathLike

# HEIC/HEIF is what phones photograph in (iPhones by default): pillow-heif teaches Pillow to read it.
pillow_heif.register_heif_opener()
ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF", "HEIF")

# Working resolution of the ink map. Big photos are reduced (box filter) so the
# long side is at most WORK_MAX: a digit worth reading still spans tens of
# pixels there, and the cost stays bounded. Thumbnails are enlarged to at least
# WORK_MIN so thresholds and components have pixels to work with.
WORK_MAX = 800
WORK_MIN = 64
# Components are labelled on a copy max-pooled to at most this long side (fast, and
# it bridges the 1-2 px breaks that blur and JPEG leave in thin strokes).
LABEL_MAX = 160
# Centre of mass of MNIST's training digits, in pixel-index coordinates (measured: 14.00 +- 0.29).
MNIST_CENTRE = 14.0
# Intermediate size for stroke-width normalisation: 4x the 20 px box, so widths
# can be adjusted in quarter-pixel steps before the final 4:1 anti-aliasing.
STROKE_SIDE = 80
# A ruled line is erased only if at most this fraction as thick as the other ink (a pen stroke is not).
LINE_THINNER = 0.6


class Preprocessed(NamedTuple):
    """What the model sees, and where in the input it came from."""

    model_input: np.ndarray  # (28, 28) uint8, white ink on black
    box: tuple[int, int, int, int]  # (x0, y0, x1, y1) ink crop in input pixels, x1/y1 exclusive


# --------------------------------------------------------------------------- loading


def load_image(image: ImageInput, *, max_bytes: int | None = None) -> Image.Image:
    """Validated decode of any accepted input: limits, allowed formats, EXIF orientation, first frame.

    Raises ImageTooLarge (bytes or pixels over the limits), UnsupportedImageType (a format
    outside PNG/JPEG/GIF/BMP/WEBP/TIFF/HEIF) or InvalidImage (anything else undecodable).
    """
    settings = get_settings()
    max_bytes = settings.max_image_bytes if max_bytes is None else max_bytes
    if isinstance(image, Image.Image):
        _check_pixels(image.width, image.height, settings.max_image_pixels)
        try:
            image.load()
        except Exception as exc:  # Pillow raises many types for broken lazy images
            raise InvalidImage(f"could not decode the image: {exc}") from exc
        return image
    if isinstance(image, np.ndarray):
        return _from_array(image, settings.max_image_pixels)
    if isinstance(image, bytes | bytearray | memoryview):
        data = bytes(image)
    elif isinstance(image, str | os.PathLike):
        data = _read_file(os.fspath(image), max_bytes)
    else:
        raise InvalidImage(f"unsupported input type {type(image).__name__}")
    return _decode(data, max_bytes, settings.max_image_pixels)


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width < 1 or height < 1:
        raise InvalidImage("the image has no pixels")
    if width * height > max_pixels:
        raise ImageTooLarge(f"{width}x{height} pixels is over the limit of {max_pixels:,}")


def _read_file(path: str, max_bytes: int) -> bytes:
    try:
        size = os.stat(path).st_size
        if size > max_bytes:
            raise ImageTooLarge(f"{size:,} bytes is over the limit of {max_bytes:,}")
        with open(path, "rb") as f:
            return f.read(max_bytes + 1)
    except OSError as exc:
        raise InvalidImage(f"could not read {os.path.basename(path)!r}: {exc.strerror}") from exc


def _decode(data: bytes, max_bytes: int, max_pixels: int) -> Image.Image:
    if len(data) > max_bytes:
        raise ImageTooLarge(f"{len(data):,} bytes is over the limit of {max_bytes:,}")
    too_many_pixels = f"the image has more pixels than the limit of {max_pixels:,}"
    try:
        # Only the header is read here; the size check below runs before any pixel is decoded.
        img = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError:  # Pillow's own, higher ceiling: our limit is the one to name
        raise ImageTooLarge(too_many_pixels) from None
    except UnidentifiedImageError:
        raise _unsupported_or_invalid(data) from None
    except Exception as exc:  # malformed headers surface as OSError, ValueError, SyntaxError...
        raise InvalidImage(f"not a readable image: {exc}") from exc
    _check_pixels(img.width, img.height, max_pixels)
    try:
        img.load()  # first frame only: animated GIF/WEBP/PNG and multi-page TIFF start at frame 0
    except Image.DecompressionBombError:
        raise ImageTooLarge(too_many_pixels) from None
    except Exception as exc:  # truncated or corrupt data: decoders raise OSError, ValueError, EOFError...
        raise InvalidImage(f"the image data is truncated or corrupt: {exc}") from exc
    # A malformed EXIF block only loses the orientation hint, never the image.
    with contextlib.suppress(Exception):
        img = ImageOps.exif_transpose(img)
    return img


def _unsupported_or_invalid(data: bytes) -> InvalidImage:
    # Identify (header only, never decode) whether Pillow knows the bytes: 415 rather than 400.
    try:
        fmt = Image.open(io.BytesIO(data)).format
    except Exception:
        return InvalidImage("not an image (or a format we cannot read)")
    return UnsupportedImageType(f"{fmt} images are not accepted; send PNG, JPEG, GIF, BMP, WEBP, TIFF or HEIC")


def _from_array(array: np.ndarray, max_pixels: int) -> Image.Image:
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (2, 3, 4)):
        raise InvalidImage(f"expected an HxW, HxWx3 or HxWx4 array, got shape {a.shape}")
    _check_pixels(a.shape[1], a.shape[0], max_pixels)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise InvalidImage("the array holds NaN or infinite values")
        # Floats are read as 0..1 unless they obviously use the 0..255 scale.
        a = np.clip(a * 255.0 if a.max(initial=0.0) <= 1.0 else a, 0, 255).round().astype(np.uint8)
    elif a.dtype.kind in "iu" and a.dtype != np.uint8:
        if a.min(initial=0) < 0 or a.max(initial=0) > 255:
            a = _stretch(a.astype(np.float64))  # 16-bit or signed data: use its own range
        a = a.astype(np.uint8)
    elif a.dtype != np.uint8:
        raise InvalidImage(f"unsupported array dtype {a.dtype}")
    mode = {2: "L"}.get(a.ndim) or {2: "LA", 3: "RGB", 4: "RGBA"}[a.shape[2]]
    return Image.fromarray(np.ascontiguousarray(a), mode=mode)


def _stretch(values: np.ndarray) -> np.ndarray:
    """Any numeric range -> 0..255 by min/max (high-bit scans, float TIFFs)."""
    values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(values.min(initial=0.0)), float(values.max(initial=0.0))
    if hi - lo < 1e-12:
        return np.zeros(values.shape, np.uint8)
    return ((values - lo) * (255.0 / (hi - lo))).round().astype(np.uint8)


def _canonical(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> L, LA, RGB or RGBA (8 bits per channel)."""
    mode = img.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        return img
    if mode == "1":
        return img.convert("L")
    if mode in ("P", "PA"):
        return img.convert("RGBA" if mode == "PA" or "transparency" in img.info else "RGB")
    if mode == "La":
        return img.convert("LA")
    if mode == "RGBa":
        return img.convert("RGBA")
    if mode.startswith("I") or mode == "F":
        return Image.fromarray(_stretch(np.asarray(img, dtype=np.float64)), mode="L")
    try:
        return img.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX
    except (ValueError, OSError) as exc:
        raise InvalidImage(f"cannot read images of mode {mode}") from exc


# --------------------------------------------------------------------------- ink map


class _Components(NamedTuple):
    """Connected components of the ink, labelled on a max-pooled grid."""

    labels: np.ndarray  # int32 grid, 0 = no ink, 1..n the components
    areas: np.ndarray  # (n + 1,) grid pixels per component (index 0 unused)
    boxes: np.ndarray  # (n + 1, 4) x0, y0, x1, y1 per component on the grid
    pool: int  # working pixels per grid pixel


class _Ink(NamedTuple):
    ink: np.ndarray  # float32 (h, w) in [0, 1], 1 = ink, at working resolution
    scale: float  # input pixels per ink-map pixel
    parts: _Components
    dark: bool | None  # the polarity read: dark ink on light paper; None for ink in a transparency
    certain: bool  # whether that polarity is beyond doubt (a transparency or an exact background)


def ink_map(image: ImageInput) -> np.ndarray:
    """float32 (h, w) in [0, 1], 1 = ink: alpha, polarity, lighting, noise, ruled lines and specks handled.

    The map has the input's size, except that inputs longer than WORK_MAX px are
    reduced by an integer factor and inputs shorter than WORK_MIN px enlarged by
    one; `ink_scale(image.size, ink.shape)` gives input pixels per map pixel.
    A blank image gives an all-zero map (preprocess turns that into NoDigitFound).
    """
    return _analyse(load_image(image)).ink


def ink_scale(image_size: tuple[int, int], ink_shape: tuple[int, ...]) -> float:
    """Input pixels per ink-map pixel, for mapping boxes found on an ink map back to the input."""
    return image_size[0] / ink_shape[1]


def _analyse(img: Image.Image, dark: bool | None = None) -> _Ink:
    """The whole front end: working size, ink signal, background, lines, specks, components.

    `dark` forces the polarity (True: dark ink on light paper); None lets the picture decide."""
    img = _canonical(img)
    img, scale = _working_size(img)
    signal, other, paper, dark_ink = _signal(img, dark)
    if other is not None:
        signal = _choose_channel(signal, other)
    ink = _normalise(signal, paper)
    if ink.any():
        _remove_lines(ink)
    parts = _components(ink)
    if len(parts.areas) > 1:
        # Dust and JPEG specks: far smaller than the biggest stroke (1% of it; a digit
        # next to another is never that small, so multi-digit readers keep every digit).
        _drop(ink, parts, parts.areas < 0.01 * parts.areas[1:].max())
    # The polarity is certain for ink in a transparency or on an exactly known background.
    return _Ink(ink, scale, parts, dark_ink, dark_ink is None or paper is not None)


def _working_size(img: Image.Image) -> tuple[Image.Image, float]:
    """The image at working resolution, and input pixels per working pixel."""
    long_side = max(img.size)
    if long_side > WORK_MAX:
        reduced = img.reduce(math.ceil(long_side / WORK_MAX))  # box filter: every input pixel counts
        return reduced, img.width / reduced.width
    if long_side < WORK_MIN:
        factor = math.ceil(WORK_MIN / long_side)
        return img.resize((img.width * factor, img.height * factor), Image.Resampling.BICUBIC), 1.0 / factor
    return img, 1.0


def _signal(
    img: Image.Image, dark: bool | None = None
) -> tuple[np.ndarray, np.ndarray | None, float | None, bool | None]:
    """-> (ink-bright signal in [0, 1], line-blind alternative or None, paper level or None, dark ink?).

    The paper level is known for digital images (one exact background value); the
    alternative exists only for colourful photos and scans (see _choose_channel).
    `dark` forces the polarity of pictures without transparency (a candidate view); the last
    value says which polarity was used, None for ink in a transparency (it has only one).
    """
    if img.mode in ("LA", "RGBA"):
        drawn = _alpha_drawing(img)
        if isinstance(drawn, np.ndarray):
            return drawn, None, _flat_level(drawn), None
        img = drawn
    gray = np.asarray(img.convert("L"), np.float32) * np.float32(1 / 255)
    paper = _flat_level(gray)
    if paper is not None:
        # A digital canvas: whatever differs from the exact background is ink; see which side.
        sample = gray[::2, ::2]
        dark_ink = int((sample < paper - 0.1).sum()) > int((sample > paper + 0.1).sum())
    else:
        levels = _two_levels(gray)
        if levels is not None:
            paper, ink = levels
            dark_ink = ink < paper
        else:
            dark_ink = _dark_ink(gray)
    if dark is not None and dark != dark_ink:
        dark_ink, paper = dark, None  # the other polarity: its paper level is unknown
    signal = 1.0 - gray if dark_ink else gray
    if paper is not None:
        return signal, None, (1.0 - paper if dark_ink else paper), dark_ink
    if img.mode != "RGB":
        return signal, None, None, dark_ink
    rgb = np.asarray(img)
    sample = rgb[::4, ::4].astype(np.int16)
    if np.percentile(sample.max(axis=2) - sample.min(axis=2), 99) <= 38:  # 15% saturation: a grey image
        return signal, None, None, dark_ink
    # Coloured ruled lines are light in their own channel: max(RGB) hides them under dark ink,
    # min(RGB) under light ink. _choose_channel keeps that view only if the digit survives it.
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    if dark_ink:
        other = 1.0 - np.maximum(np.maximum(r, g), b).astype(np.float32) * np.float32(1 / 255)
    else:
        other = np.minimum(np.minimum(r, g), b).astype(np.float32) * np.float32(1 / 255)
    return signal, other, None, dark_ink


def _two_levels(gray: np.ndarray) -> tuple[float, float] | None:
    """(paper, ink) of a digital two-tone image whose ink reaches the border (tight crops), else None.

    Digital two-tone: >= 60% of pixels at two exact levels >= 20 apart, and almost
    nothing (< 1%) outside them (anti-aliasing lies between). Shadowed photos fail
    that: their ink lies outside the two paper tones. Paper is the level holding more
    of the border (ink only touches it); on a tie, the lighter one.
    """
    q = (gray * 255).round().astype(np.intp)
    counts = np.bincount(q.ravel(), minlength=256)
    a = int(counts.argmax())
    rest = counts.copy()
    rest[max(0, a - 20) : a + 21] = 0
    b = int(rest.argmax())
    if counts[b] < 10:
        return None
    n = q.size
    cover = counts[max(0, a - 2) : a + 3].sum() + counts[max(0, b - 2) : b + 3].sum()
    lo, hi = min(a, b), max(a, b)
    outside = counts[: max(0, lo - 12)].sum() + counts[hi + 13 :].sum()
    if cover < 0.6 * n or outside > 0.01 * n:
        return None
    border = np.concatenate([q[0], q[-1], q[:, 0], q[:, -1]])
    on_a = float((np.abs(border - a) <= 2).mean())
    on_b = float((np.abs(border - b) <= 2).mean())
    paper = a if on_a > on_b else b if on_b > on_a else hi
    return paper / 255, (lo if paper == hi else hi) / 255


def _alpha_drawing(img: Image.Image) -> np.ndarray | Image.Image:
    """Ink signal from transparency, or the picture with its alpha flattened when alpha holds no drawing."""
    alpha8 = np.asarray(img.getchannel("A"))
    lo, hi = percentiles_u8(alpha8[::3, ::3], [1, 99.9]) / 255
    colour_mode = "L" if img.mode == "LA" else "RGB"
    if hi < 0.1:
        return np.zeros(alpha8.shape, np.float32)  # fully transparent: nothing is visible
    if hi - lo < 0.2:
        return img.convert(colour_mode)  # (nearly) constant alpha: the picture is in the colour channels
    border = np.concatenate([alpha8[0], alpha8[-1], alpha8[:, 0], alpha8[:, -1]])
    opaque = alpha8 > 127
    alpha = alpha8.astype(np.float32) * np.float32(1 / 255)
    if np.median(border) < 128:
        # Transparent background: strokes live in alpha (the canvas sends RGB all black or
        # all white there). Exception: an opaque cut-out holding paper AND ink (wide spread).
        fraction = float(opaque[::3, ::3].mean())
        if fraction < 0.35:
            return alpha
        values = np.asarray(img.convert("L"))[opaque]
        low, high = percentiles_u8(values, [5, 95])
        if high - low < 0.35 * 255:
            return alpha
    # An opaque picture with transparent edges: fill them with its own paper colour.
    arr = np.asarray(img.convert(colour_mode), np.float32)
    paper = np.median(arr[opaque], axis=0)
    a = alpha[..., None] if arr.ndim == 3 else alpha
    flattened = arr * a + paper * (1 - a)
    return Image.fromarray(np.clip(flattened, 0, 255).round().astype(np.uint8), colour_mode)


def percentiles_u8(values: np.ndarray, percents: list[float]) -> np.ndarray:
    """np.percentile(values, percents) of uint8 values, bit for bit (its linear method: the same virtual index
    and interpolation), from a histogram: ~4x quicker than np.percentile on a few thousand values."""
    counts = np.cumsum(np.bincount(values.ravel(), minlength=256))
    n = int(counts[-1])
    out = []
    for q in np.true_divide(np.asarray(percents, dtype=np.float64), 100):
        virtual = (n - 1) * q
        lo = int(np.floor(virtual))
        t = virtual - lo
        a = float(np.searchsorted(counts, lo, side="right"))  # the lo-th smallest value
        b = float(np.searchsorted(counts, min(lo + 1, n - 1), side="right"))
        out.append(b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t)
    return np.array(out)


def _dark_ink(gray: np.ndarray) -> bool:
    """True for dark ink on light paper, decided on a ~128 px copy."""
    small = gray[:: max(1, gray.shape[0] // 128), :: max(1, gray.shape[1] // 128)]
    lo, hi = np.percentile(small, [1, 99])
    t = max(0.25 * float(hi - lo), 0.04)
    plane = _border_plane(small, t)
    # An even border (once a lighting gradient is taken out) is paper: ink only touches it
    # here and there, even in tight crops. When everything that differs clearly from it
    # lies on one side, that side is the ink.
    off = small - plane
    b25, b75 = np.percentile(_border(off), [25, 75])
    darker, lighter = int((off < -t).sum()), int((off > t).sum())
    one_sided = max(darker, lighter) >= 0.9 * (darker + lighter) >= 0.002 * small.size
    if b75 - b25 < 0.4 * t and one_sided:
        return darker > lighter
    # Otherwise ink is the minority: strokes darker (or lighter) than the paper on BOTH sides
    # at some distance d. A pixel-pair "line detector" at scales from fine pens to fat markers
    # (1.5-12% of the picture) measures that; shadow edges and lighting gradients are
    # one-sided steps and score nothing either way.
    sigma = _noise(small)
    dark = np.zeros_like(small)
    light = np.zeros_like(small)
    for d in {max(1, round(max(small.shape) * f)) for f in (0.015, 0.03, 0.06, 0.12)}:
        for axis in (0, 1):
            pad = [(d, d) if ax == axis else (0, 0) for ax in (0, 1)]
            p = np.pad(small, pad, mode="edge")
            n = small.shape[axis]
            before = p[:n] if axis == 0 else p[:, :n]
            after = p[2 * d :] if axis == 0 else p[:, 2 * d :]
            np.maximum(dark, np.minimum(before, after) - small, out=dark)
            np.maximum(light, small - np.maximum(before, after), out=light)
    below = np.clip(dark - 3 * sigma, 0, None).sum()
    above = np.clip(light - 3 * sigma, 0, None).sum()
    if above == below:
        return float(np.median(_border(small))) > 0.5  # no evidence either way: light paper, dark ink
    return bool(below > above)


def _border(a: np.ndarray) -> np.ndarray:
    """The outermost ring of pixels (corners twice), where the paper shows."""
    return np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])


def _border_plane(small: np.ndarray, t: float) -> np.ndarray:
    """The paper under a linear lighting gradient: a plane fitted to the border, twice, the second
    time without border pixels over t/2 from the first fit (ink reaching the border)."""
    h, w = small.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ring = np.zeros((h, w), bool)
    ring[[0, -1], :] = ring[:, [0, -1]] = True
    design = np.stack([np.ones(h * w, np.float32), xx.ravel() / w, yy.ravel() / h], axis=1)
    use = ring.ravel()
    for _ in range(2):
        coef = np.linalg.lstsq(design[use], small.ravel()[use], rcond=None)[0]
        fit = design @ coef
        keep = use & (np.abs(small.ravel() - fit) <= 0.5 * t)
        if keep.sum() < 0.5 * ring.sum():
            break
        use = keep
    return fit.reshape(h, w).astype(np.float32)


def _block_background(signal: np.ndarray, percentile: float) -> np.ndarray:
    """Slowly varying background: a percentile per block (~8 along the long side), 3x3-median-cleaned."""
    h, w = signal.shape
    block = max(2, math.ceil(max(h, w) / 8))
    gh, gw = math.ceil(h / block), math.ceil(w / block)
    padded = np.pad(signal, ((0, gh * block - h), (0, gw * block - w)), mode="edge")
    blocks = padded.reshape(gh, block, gw, block).transpose(0, 2, 1, 3).reshape(gh, gw, -1)
    step = max(1, blocks.shape[2] // 256)  # a few hundred samples per block are plenty
    grid = np.percentile(blocks[:, :, ::step], percentile, axis=2).astype(np.float32)
    # A block filled with a fat stroke reads as background; its neighbours outvote it.
    p = np.pad(grid, 1, mode="edge")
    grid = np.median(np.stack([p[i : i + gh, j : j + gw] for i in range(3) for j in range(3)]), axis=0)
    if gh == 1 and gw == 1:
        return np.full(signal.shape, grid[0, 0], np.float32)
    up = Image.fromarray(grid.astype(np.float32), "F").resize((gw * block, gh * block), Image.Resampling.BILINEAR)
    return np.asarray(up)[:h, :w]


def _choose_channel(signal: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Prefer the channel blind to coloured lines only when the digit keeps nearly all its contrast there.

    Black ink is dark in every channel, so max(RGB) loses nothing; blue or red pens
    are bright in their own channel and would fade (or invert), so they keep the grey.
    """
    c_gray, c_other = _contrast(signal), _contrast(other)
    return other if c_other >= 0.75 * c_gray else signal


def _contrast(signal: np.ndarray) -> float:
    small = signal[::2, ::2]
    residual = small - _block_background(small, 25)
    return float(np.percentile(residual, 99.5))


def _normalise(signal: np.ndarray, paper: float | None) -> np.ndarray:
    """Ink-bright signal -> ink in [0, 1]: subtract the background, ramp from noise level to ink level."""
    sigma = _noise(signal)
    if paper is not None:
        residual = signal - np.float32(paper)  # a digital image: one exact background value
        estimate = _ink_level(residual, sigma)
    else:
        residual, estimate = _paper_residual(signal, sigma)
    if estimate is None:
        return np.zeros_like(signal)
    floor, level = estimate
    # A steep ramp (25% -> 60% of the ink level) makes strokes nearly binary with soft
    # edges, like MNIST's binary NIST sources before their anti-aliased downscaling.
    lo = max(floor, 0.25 * level)
    hi = max(lo + 1e-3, 0.6 * level)
    ink = (residual - lo) * np.float32(1 / (hi - lo))
    return np.clip(ink, 0, 1, out=ink)


def _flat_level(signal: np.ndarray) -> float | None:
    """The background value of a digital canvas, else None.

    Digital: >= 90% of the image border sits at one exact grey level (+-2), that level
    covers >= 15% of the image, and few pixels lie 3-12 levels from it. Paper photos
    don't qualify: noise and light spread the paper over many levels, and a shadow
    or a lit patch reaching the border breaks its uniformity (even where heavy JPEG
    flattens the paper into uniform 8x8 blocks).
    """
    border = np.concatenate([signal[0], signal[-1], signal[:, 0], signal[:, -1]])
    ring = np.bincount(np.clip((border * 255).round().astype(np.intp), 0, 255), minlength=256)
    level = int(ring.argmax())
    if ring[max(0, level - 2) : level + 3].sum() < 0.9 * border.size:
        return None
    sample = np.clip((signal[::3, ::3] * 255).round().astype(np.intp), 0, 255).ravel()
    counts = np.bincount(sample, minlength=256)
    exact = counts[max(0, level - 2) : level + 3].sum()
    near = counts[max(0, level - 12) : level + 13].sum() - exact
    return level / 255 if exact >= 0.15 * sample.size and near < 0.25 * exact else None


def _noise(signal: np.ndarray) -> float:
    """Pixel noise sigma from neighbour differences (MAD), blind to lighting; floored at one grey level."""
    sample = signal[:: max(1, signal.size // 10000)]  # ~10k pixels of rows are plenty
    diff = np.abs(np.diff(sample, axis=1))
    return max(1.4826 * float(np.median(diff)) / math.sqrt(2), 1 / 255)


def _paper_residual(signal: np.ndarray, sigma: float) -> tuple[np.ndarray, tuple[float, float] | None]:
    """Background-free signal of a photo or scan, and its (noise floor, ink level) estimate."""
    residual = signal - _block_background(signal, 25)
    estimate = _ink_level(residual, sigma)
    if estimate is None:
        return residual, None  # nothing stands out even against the coarse background
    # Redo the background with a grey opening wider than the strokes: it follows shadow
    # edges and gradients that the blocks only approximate.
    first = residual > 0.5 * estimate[1]
    h, w = first.shape
    rows, cols = np.flatnonzero(first.any(axis=1)), np.flatnonzero(first.any(axis=0))
    # A tight crop (ink spanning the picture, covering much of it) has strokes that are
    # wide relative to the image: let the window grow with them.
    # Thumbnails (enlarged to <= 2 x WORK_MIN) are in effect tight crops too.
    tight = max(h, w) <= 2 * WORK_MIN or (
        (rows[-1] - rows[0]) >= 0.9 * h and (cols[-1] - cols[0]) >= 0.9 * w and first.mean() > 0.15
    )
    residual = signal - _opening_background(signal, _stroke_estimate(first), tight)
    # The opening sits a little below noisy paper: re-centre the paper on zero, and measure
    # its noise directly (JPEG smoothing hides noise from neighbour differences).
    paper = residual[~first][::3]
    if paper.size > 100:
        residual -= np.float32(np.median(paper))
        sigma = max(sigma, _mad_sigma(paper))
    return residual, _ink_level(residual, sigma)


def _mad_sigma(paper: np.ndarray) -> float:
    """Noise sigma of background pixels: median absolute deviation, robust to stray ink."""
    return 1.4826 * float(np.median(np.abs(paper - np.median(paper))))


def _ink_level(residual: np.ndarray, sigma: float) -> tuple[float, float] | None:
    """(noise floor, typical ink contrast) of a background-free residual, or None if nothing stands out."""
    # Candidates: clearly above the noise (4 sigma) and above 4% contrast (10 grey levels,
    # below which nothing on paper or screen reads as a stroke).
    floor = max(4 * sigma, 0.04)
    candidates = residual[residual > floor]
    if candidates.size < 8:
        return None
    level = float(np.percentile(candidates, 90))
    if level < 6 * sigma or level < 0.06:
        return None  # too faint to be anything but texture or noise
    return floor, level


def _stroke_estimate(mask: np.ndarray) -> float:
    """A generous stroke width: 90th percentile over ink pixels of the shorter of their row/column runs.

    Thin printed lines and specks sit in the low percentiles; runs longer than a
    third of the image are shadows or lit areas, not strokes, and are ignored.
    """
    across = np.minimum(_run_lengths(mask), _run_lengths(mask.T).T)[mask]
    across = across[across < max(mask.shape) / 3]
    return float(np.percentile(across, 90)) if across.size else 0.0


def _opening_background(signal: np.ndarray, stroke: float, tight: bool = False) -> np.ndarray:
    """Grey opening (min then max filter) wider than any stroke: removes the ink, keeps the light.

    An opening reproduces steps and ramps exactly, so sharp shadow edges and
    gradients stay in the background instead of leaking into the ink. The window
    follows the strokes (1.5 x the generous stroke width), within 6-33% of the image (up
    to half in tight crops): wider than strokes on paper, fat marker strokes included,
    narrower than shadows. (A window capped lower let fat strokes through as background
    and hollowed them out.)
    """
    long_side = max(signal.shape)
    cap = (0.5 if tight else 1 / 3) * long_side
    window = int(np.clip(1.5 * stroke + 4, max(9, 0.06 * long_side), max(9, cap))) | 1
    opened = ndimage.grey_opening(signal, window, mode="nearest")
    # Where light changes along a diagonal, a square opening leaves rectangular pits below
    # the paper; a closing of the same size fills them (the strokes are already gone).
    return ndimage.grey_closing(opened, window, mode="nearest")


def _remove_lines(ink: np.ndarray) -> None:
    """Erase ruled/squared-paper lines: thin structures running across most of the picture.

    A row (column) holds a line when its thin pixels cover >= 25% of it and stretch
    over >= 80% of it: under uneven light a line fades and breaks, so neither full
    coverage nor one unbroken run is required. A digit's bar is thicker, or shorter.
    Where the digits fill the picture (a tight crop, MNIST cells side by side) a 1's or
    a 7's stem spans it too: lines are erased only when they are clearly thinner than
    the rest of the ink (a printed line is, a pen stroke is not), or when there is
    hardly any other ink to compare with.
    """
    mask = ink > 0.1
    h, w = mask.shape
    if not (_spanning(mask, 1, w).any() or _spanning(mask, 0, h).any()):
        return  # not even the ink covers and spans a row or column as a line would (a line's pixels are ink)
    d = max(2, round(0.01 * max(h, w))) + 1  # a printed line is ~1% of the page thick, a stroke far more
    found = []
    for axis, length in ((1, w), (0, h)):
        # Thin across the line direction: no ink d pixels to either side (inside a stroke there is).
        pad = ((d, d), (0, 0)) if axis == 1 else ((0, 0), (d, d))
        p = np.pad(mask, pad)
        before, after = (p[: -2 * d], p[2 * d :]) if axis == 1 else (p[:, : -2 * d], p[:, 2 * d :])
        thin_px = mask & ~before & ~after
        # Allow a slight tilt: a line's pixels may spread over neighbouring rows (columns).
        lines = _spanning(thin_px, axis, length)
        lines = lines | np.roll(lines, 1) | np.roll(lines, -1)
        if lines.any():
            line_px = (lines[:, None] if axis == 1 else lines[None, :]) & thin_px
            across = _run_lengths(mask.T).T if axis == 1 else _run_lengths(mask)
            found.append((line_px, float(np.median(across[line_px]))))
    if not found:
        return
    rest = mask.copy()
    for line_px, _ in found:
        rest &= ~line_px
    if rest.sum() >= 0.05 * mask.sum():
        stroke = float(np.median(np.minimum(_run_lengths(rest), _run_lengths(rest.T).T)[rest]))
        found = [(px, t) for px, t in found if t <= LINE_THINNER * stroke]
    for line_px, _ in found:
        ink[line_px] = 0.0


def _spanning(mask: np.ndarray, axis: int, length: int) -> np.ndarray:
    """Per row (axis=1) or column (axis=0): covered >= 25% and spanning >= 80%."""
    covered = mask.sum(axis=axis) >= 0.25 * length
    index = np.flatnonzero(covered)
    if index.size:  # the span only of the rows (columns) covered enough
        lines = mask[index] if axis == 1 else mask[:, index].T
        first, last = lines.argmax(axis=1), length - 1 - lines[:, ::-1].argmax(axis=1)
        covered[index] = last - first >= 0.8 * length
    return covered


def _run_lengths(mask: np.ndarray) -> np.ndarray:
    """Length of the horizontal run of True each pixel belongs to (0 outside the mask)."""
    runs, _ = ndimage.label(mask, structure=HORIZONTAL)
    lengths = np.bincount(runs.ravel())
    lengths[0] = 0
    return lengths[runs]


HORIZONTAL = np.array([[0, 0, 0], [1, 1, 1], [0, 0, 0]], bool)
SQUARE = np.ones((3, 3), bool)  # 8-connected neighbourhoods
CROSS = ndimage.generate_binary_structure(2, 1)  # 4-connected


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of a boolean mask -> (int32 labels, 0 = background, numbered in reading order;
    count)."""
    labels, count = ndimage.label(mask, structure=SQUARE)
    return labels.astype(np.int32, copy=False), int(count)


def _components(ink: np.ndarray) -> _Components:
    """Components of ink > 0.3 on a copy max-pooled to <= LABEL_MAX px, with their areas and boxes."""
    h, w = ink.shape
    pool = max(1, math.ceil(max(h, w) / LABEL_MAX))
    mask = ink > 0.3
    if pool > 1:
        gh, gw = math.ceil(h / pool), math.ceil(w / pool)
        padded = np.zeros((gh * pool, gw * pool), bool)
        padded[:h, :w] = mask
        # Max-pool by OR-ing the pool x pool phases (much faster than a reshaped any()).
        mask = np.zeros((gh, gw), bool)
        for i in range(pool):
            for j in range(pool):
                mask |= padded[i::pool, j::pool]
    labels, n = label_components(mask)
    areas = np.bincount(labels.ravel(), minlength=n + 1).astype(np.int64)
    areas[0] = 0
    boxes = np.zeros((n + 1, 4), np.int64)
    boxes[0] = mask.shape[1], mask.shape[0], 0, 0
    for index, (rows, cols) in enumerate(ndimage.find_objects(labels), start=1):
        boxes[index] = cols.start, rows.start, cols.stop, rows.stop
    return _Components(labels, areas, boxes, pool)


def _drop(ink: np.ndarray, parts: _Components, drop: np.ndarray) -> None:
    """Zero the ink of the components flagged in `drop` (indexed by label; 0 is ignored)."""
    drop = drop.copy()
    drop[0] = False
    if not drop.any():
        return
    # Grown by one grid pixel so the faint anti-aliased rim of a speck goes too.
    gone = ndimage.binary_dilation(drop[parts.labels], CROSS)
    if parts.pool > 1:
        gone = np.repeat(np.repeat(gone, parts.pool, axis=0), parts.pool, axis=1)
    ink[gone[: ink.shape[0], : ink.shape[1]]] = 0.0


# --------------------------------------------------------------------------- the digit


def preprocess(image: ImageInput) -> Preprocessed:
    """Any accepted image -> (28x28 uint8 MNIST-style input, ink box in input pixels).

    Raises InvalidImage for bad input and NoDigitFound when there is no ink (a blank
    canvas, a uniform or noise-only image): an empty canvas is never guessed at.
    Random noise (uniform or Gaussian) raises NoDigitFound: nothing rises above its own
    noise level. Sparse impulse noise on a clean canvas may still yield a prediction.
    """
    img = load_image(image)
    fast = _already_mnist(img)
    if fast is not None:
        return fast
    found = _analyse(img)
    box = _digit_box(found)
    if box is None:
        raise NoDigitFound("no digit found: the image looks blank")
    return Preprocessed(to_model_input(found.ink, box), to_input_box(box, found.scale, img.size))


class View(NamedTuple):
    """One candidate reading of a picture: what the model would see, from where, and how it was made."""

    model_input: np.ndarray  # (28, 28) uint8, white ink on black
    box: tuple[int, int, int, int]  # ink crop in input pixels
    kind: str  # "mnist" (already MNIST-style), "digit" (the main ink), "all_ink", "frame"
    dark: bool | None  # polarity assumed: dark ink on light paper; None for ink in a transparency


# The frame view is made from a copy at most this long: enough pixels for a 20 px digit.
FRAME_SIDE = 112
# Pictures at most this long (digit collections, thumbnails) are also read as they are, squashed to 28x28:
# they usually frame one digit already, and marks crossing it are then no reason to crop differently.
RAW_SIDE = 64


def candidate_views(image: ImageInput) -> list[View]:
    """The few ways a picture may hold its digit, for the model to choose between in one batch.

    Where the front end's decisions are sure (ink in a transparency or on an exact background, a digit
    already MNIST-style) that is one or two views: the main ink and, when something else was kept
    apart from it, all the ink. Where they are not (photos, scans, frame-filling crops, noise), both
    polarities, each with the main ink, all the ink and the whole frame stretched: a rule that picks the
    wrong polarity or the wrong ink can no longer throw the digit away. Raises NoDigitFound only when no
    view has any ink: an image with real contrast always gets a reading.
    """
    img = load_image(image)
    fast = _already_mnist(img)
    if fast is not None:
        return [View(fast.model_input, fast.box, "mnist", bool(np.median(_border(_opaque_grey(img))) > 127))]
    found = _analyse(img)
    views = _ink_views(found, img.size)
    small = max(img.size) <= RAW_SIDE and img.mode in ("L", "RGB")
    if small:
        polarities = [found.dark] if found.certain else [found.dark, not found.dark]
        views += _raw_views(img, polarities)
        views += _denoised_views(img, polarities)
    if not found.certain:
        views += _ink_views(_analyse(img, dark=not found.dark), img.size)
        small = _canonical(img)
        if max(small.size) > FRAME_SIDE:
            small = small.reduce(math.ceil(max(small.size) / FRAME_SIDE))
        gray = np.asarray(small.convert("L"), np.float32) * np.float32(1 / 255)
        views += [v for v in (_frame_view(gray, img.size, dark) for dark in (found.dark, not found.dark)) if v]
    unique: list[View] = []
    for view in views:
        if not any(np.array_equal(view.model_input, u.model_input) for u in unique):
            unique.append(view)
    if not unique:
        raise NoDigitFound("no digit found: the image looks blank")
    return unique


def _ink_views(found: _Ink, size: tuple[int, int]) -> list[View]:
    """The main ink (the digit and its pieces) and, when something was left out, all the ink."""
    views = []
    parts = found.parts
    if int((parts.areas[1:] > 0).sum()) > 1:
        rows = np.flatnonzero((found.ink > 0.1).any(axis=1))
        cols = np.flatnonzero((found.ink > 0.1).any(axis=0))
        with contextlib.suppress(NoDigitFound, IndexError):
            box = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
            views.append(View(to_model_input(found.ink), to_input_box(box, found.scale, size), "all_ink", found.dark))
    ink = found.ink.copy() if views else found.ink
    box = _digit_box(found._replace(ink=ink))
    if box is not None:
        with contextlib.suppress(NoDigitFound):
            views.insert(0, View(to_model_input(ink, box), to_input_box(box, found.scale, size), "digit", found.dark))
    return views


def _raw_views(img: Image.Image, polarities: list[bool | None]) -> list[View]:
    """The whole small picture padded square and squashed to 28x28, as it is, in each polarity asked."""
    gray = img.convert("L")
    pixels = np.asarray(gray)
    if not _has_contrast(pixels / 255.0):
        return []  # a blank picture stays blank
    side = max(gray.size)
    border = np.median(_border(pixels))
    square = Image.new("L", (side, side), int(border))
    square.paste(gray, ((side - gray.width) // 2, (side - gray.height) // 2))
    a = np.asarray(square.resize((28, 28), Image.Resampling.LANCZOS))
    return [View(255 - a if dark else a, (0, 0, img.width, img.height), "raw", dark) for dark in polarities]


SPECKLED = 0.03  # share of pixels far from their neighbourhood's median: salt-and-pepper or frosted glass


def _denoised_views(img: Image.Image, polarities: list[bool | None]) -> list[View]:
    """For a speckled small picture, the same views again after a 3x3 median filter.

    Isolated dots of noise widen the ink's box and read as strokes; the median removes them and keeps
    strokes two or more pixels wide. Offered beside the unfiltered views, never instead of them: the network
    chooses, so a thin clean stroke the filter would erode costs nothing."""
    gray = np.asarray(img.convert("L"))
    smooth = ndimage.median_filter(gray, 3)
    if np.mean(np.abs(gray.astype(np.int16) - smooth) > 90) < SPECKLED:
        return []
    clean = Image.fromarray(smooth)
    views = []
    for dark in polarities:
        with contextlib.suppress(NoDigitFound):
            views += _ink_views(_analyse(clean, dark=dark), img.size)
    return [v._replace(kind="denoised") for v in views + _raw_views(clean, polarities)]


def _has_contrast(values: np.ndarray) -> bool:
    """Whether the strongest and faintest values (0..1) of a picture differ by any contrast worth the name."""
    lo, hi = np.percentile(values, [1, 99.5])
    return hi - lo >= 0.08


def _frame_view(gray: np.ndarray, size: tuple[int, int], dark: bool | None) -> View | None:
    """The whole picture as one digit: stretched from its faintest to its strongest ink, nothing dropped.

    What reads a digit cut out to fill its frame (ink on every edge, so no border shows the paper)."""
    signal = 1.0 - gray if dark else gray
    if not _has_contrast(signal):
        return None
    lo, hi = np.percentile(signal, [1, 99.5])
    ink = np.clip((signal - np.float32(lo)) / np.float32(hi - lo), 0, 1)
    try:
        return View(to_model_input(ink), (0, 0, size[0], size[1]), "frame", dark)
    except NoDigitFound:
        return None


def to_input_box(box: tuple[int, int, int, int], scale: float, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """A box at working resolution (an ink-map box) -> input pixels (outward rounding, clipped to the picture)."""
    x0, y0, x1, y1 = box
    w, h = size
    return (
        max(0, math.floor(x0 * scale)),
        max(0, math.floor(y0 * scale)),
        min(w, math.ceil(x1 * scale)),
        min(h, math.ceil(y1 * scale)),
    )


def _digit_box(found: _Ink) -> tuple[int, int, int, int] | None:
    """Keep the main component and the pieces that belong to it; -> its box at working resolution."""
    parts = found.parts
    areas, boxes, pool = parts.areas, parts.boxes, parts.pool
    if len(areas) < 2 or areas[1:].max() == 0:
        return None
    order = np.argsort(areas[1:])[::-1] + 1
    order = order[areas[order] > 0]
    main = order[0]
    keep = np.zeros(len(areas), bool)
    keep[main] = True
    gx0, gy0, gx1, gy1 = boxes[main]
    for lab in order[1:]:
        x0, y0, x1, y1 = boxes[lab]
        size = max(gx1 - gx0, gy1 - gy0)
        gap = max(gx0 - x1, x0 - gx1, gy0 - y1, y0 - gy1, 0)
        ratio = areas[lab] / areas[main]
        # Pieces of one digit (a 5's loose bar, a 4 in two strokes, a stroke broken by blur)
        # sit close; dust and stray dots are small and away from it.
        if (ratio >= 0.3 and gap <= 0.5 * size) or (ratio >= 0.02 and gap <= 0.2 * size):
            keep[lab] = True
            gx0, gy0, gx1, gy1 = min(gx0, x0), min(gy0, y0), max(gx1, x1), max(gy1, y1)
    _drop(found.ink, parts, ~keep)
    h, w = found.ink.shape
    x0, y0, x1, y1 = gx0 * pool, gy0 * pool, min(w, gx1 * pool), min(h, gy1 * pool)
    # Refine the pooled box to exact working pixels.
    window = found.ink[y0:y1, x0:x1] > 0.1
    rows, cols = np.flatnonzero(window.any(axis=1)), np.flatnonzero(window.any(axis=0))
    if rows.size == 0:
        return None
    return x0 + int(cols[0]), y0 + int(rows[0]), x0 + int(cols[-1]) + 1, y0 + int(rows[-1]) + 1


def to_model_input(ink: np.ndarray, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Ink map (within box) -> 28x28 uint8: crop, normalise stroke width, long side 20 px, centre by mass."""
    ink = np.asarray(ink, dtype=np.float32)
    if box is not None:
        x0, y0, x1, y1 = box
        ink = ink[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)]
    # Tighten to the ink inside the box: the digit's own extent is what gets scaled to 20 px.
    crop, _, _ = crop_to_ink(ink, "no digit found: no ink in the box")
    h, w = crop.shape
    f = STROKE_SIDE / max(h, w)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    small_size = (max(1, round(size[0] / 4)), max(1, round(size[1] / 4)))
    return _centre(resize_ink(crop, size, small_size, shrink=f < 1))


def crop_to_ink(ink: np.ndarray, blank: str) -> tuple[np.ndarray, int, int]:
    """The part of an ink map that holds its ink (> 0.1), and that part's top-left (x0, y0).
    Raises NoDigitFound(blank) when there is no ink."""
    strong = ink > 0.1
    rows, cols = np.flatnonzero(strong.any(axis=1)), np.flatnonzero(strong.any(axis=0))
    if rows.size == 0:
        raise NoDigitFound(blank)
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1], int(cols[0]), int(rows[0])


def resize_ink(crop: np.ndarray, mid: tuple[int, int], small: tuple[int, int], shrink: bool) -> np.ndarray:
    """Ink -> float (h, w) = `small`, peak 1: resized to `mid` (4x `small`), where the stroke width is
    normalised into MNIST's range, then box-reduced. (`shrink`: box filter on the way to `mid`.)

    One recipe for a single digit (to_model_input) and a whole line (reader.to_strip), so the
    classifier and the line reader see strokes of the same weight."""
    resample = Image.Resampling.BOX if shrink else Image.Resampling.BICUBIC
    crop = np.ascontiguousarray(crop, dtype=np.float32)
    big = normalise_stroke(np.clip(np.asarray(Image.fromarray(crop, "F").resize(mid, resample)), 0, 1))
    out = np.asarray(Image.fromarray(big, "F").resize(small, Image.Resampling.BOX))
    peak = float(out.max())
    if peak <= 0:
        raise NoDigitFound("no digit found: the ink vanished when scaled down")
    return out / peak


# Stroke width at STROKE_SIDE px of MNIST training digits (2*area/perimeter of ink > 0.5).
STROKE_MIN, STROKE_MAX = 9.0, 16.0


def normalise_stroke(mid: np.ndarray) -> np.ndarray:
    """Thicken pen-thin strokes and thin marker-fat ones into MNIST's range (3x3 max/min steps)."""
    for _ in range(8):
        width = stroke_width(mid > 0.5)
        if width == 0 or STROKE_MIN <= width <= STROKE_MAX:
            break
        grow = ndimage.maximum_filter if width < STROKE_MIN else ndimage.minimum_filter
        mid = grow(mid, 3, mode="nearest")
        if width > STROKE_MAX and stroke_width(mid > 0.5) < STROKE_MIN:
            break
    return mid


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width in pixels: 2 x area / boundary length (a long stroke has two edges)."""
    area = int(mask.sum())
    if area == 0:
        return 0.0
    inner = ndimage.binary_erosion(mask, CROSS)
    return 2.0 * area / max(1, int((mask & ~inner).sum()))


def _centre(digit: np.ndarray) -> np.ndarray:
    """Place a (<=20)x(<=20) digit in 28x28 so its centre of mass lands on MNIST's, nothing cut off."""
    h, w = digit.shape
    total = float(digit.sum())
    cy = float((digit.sum(axis=1) * np.arange(h)).sum()) / total
    cx = float((digit.sum(axis=0) * np.arange(w)).sum()) / total
    top = min(max(round(MNIST_CENTRE - cy), 0), 28 - h)
    left = min(max(round(MNIST_CENTRE - cx), 0), 28 - w)
    out = np.zeros((28, 28), np.float32)
    out[top : top + h, left : left + w] = digit
    return (np.clip(out, 0, 1) * 255).round().astype(np.uint8)


def _opaque_grey(img: Image.Image) -> np.ndarray | None:
    """The pixels of a grey picture as (h, w) uint8: an L image, or an RGB/RGBA/LA one whose colour channels
    are equal and whose alpha is fully opaque (as matplotlib and many tools save MNIST digits); else None."""
    if img.mode == "L":
        return np.asarray(img)
    if img.mode not in ("LA", "RGB", "RGBA"):
        return None
    a = np.asarray(img)
    if img.mode in ("LA", "RGBA") and not (a[..., -1] == 255).all():
        return None
    if img.mode != "LA" and not ((a[..., 0] == a[..., 1]) & (a[..., 1] == a[..., 2])).all():
        return None
    return np.ascontiguousarray(a[..., 0])


def _already_mnist(img: Image.Image) -> Preprocessed | None:
    """A 28x28 grey digit already cropped, scaled and centred MNIST-style is only re-centred (in whichever
    pixel format it comes: the original service's own sample is an opaque RGBA one)."""
    a = _opaque_grey(img) if img.size == (28, 28) else None
    if a is None:
        return None
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    if np.median(border) > 127:
        a = 255 - a  # the same digit as dark ink on white
        border = 255 - border
    if np.median(border) > 0:
        return None  # MNIST's background is exactly 0: anything else takes the full pipeline
    if int((a > 32).sum()) < 10:
        return None  # too little ink to trust the shortcut: let the full pipeline decide
    ink = a > 0
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 > 20:
        return None
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    digit = a[y0:y1, x0:x1].astype(np.float32) / 255.0
    return Preprocessed(_centre(digit), (x0, y0, x1, y1))


# --------------------------------------------------------------------------- thumbnails


def thumbnail_png(image: ImageInput, max_side: int = 280, max_bytes: int = 200_000) -> bytes:
    """PNG of the input for history thumbnails: long side <= max_side, <= max_bytes, transparency flattened."""
    img = _canonical(load_image(image))
    if img.mode in ("LA", "RGBA"):
        img = _flatten(img)
    img = img.copy()
    img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    while True:
        png = _png(img)  # a palette only when the colours are too big
        if len(png) > max_bytes and img.mode == "RGB":
            png = _png(img.quantize(256))
        if len(png) <= max_bytes or max(img.size) <= 8:
            return png
        img = img.resize((max(1, img.width * 3 // 4), max(1, img.height * 3 // 4)), Image.Resampling.LANCZOS)


# The History table draws a thumbnail at its row's height and crops whatever is wider than its column: a
# number's thumbnail is at most this many times as wide as tall (ui/history.py sizes the column for it).
MAX_THUMBNAIL_ASPECT = 3.0
NUMBER_MARGIN = 0.25  # around a number's digits, as a share of their height


def number_thumbnail_png(
    image: ImageInput, boxes: Sequence[tuple[int, int, int, int]], max_aspect: float = MAX_THUMBNAIL_ASPECT
) -> bytes:
    """thumbnail_png of a number: its digits' boxes and a margin, at most max_aspect times as wide as tall.

    A photo of a house number keeps the number, not the house. A long number takes more of the picture
    above and below it, and where the picture has none, rows of its border's colour.
    """
    img = _canonical(load_image(image))
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    margin = math.ceil(NUMBER_MARGIN * (y1 - y0))
    left, right = max(0, x0 - margin), min(img.width, x1 + margin)
    height = max(y1 - y0 + 2 * margin, math.ceil((right - left) / max_aspect))
    top = max(0, min((y0 + y1 - height) // 2, img.height - height))
    crop = img.crop((left, top, right, min(img.height, top + height)))
    return thumbnail_png(Image.fromarray(pad_to_aspect(np.asarray(crop), max_aspect)))


def pad_to_aspect(pixels: np.ndarray, max_aspect: float) -> np.ndarray:
    """Rows of the border's median colour added above and below, until width <= max_aspect * height."""
    height, width = pixels.shape[:2]
    wanted = math.ceil(width / max_aspect)
    if height >= wanted:
        return pixels
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    padded = np.empty((wanted, *pixels.shape[1:]), pixels.dtype)
    padded[...] = np.median(border, axis=0).astype(pixels.dtype)
    top = (wanted - height) // 2
    padded[top : top + height] = pixels
    return padded


def _png(img: Image.Image) -> bytes:
    """PNG bytes, compressed fast: ~2x quicker than Pillow's default level and ~10% bigger."""
    out = io.BytesIO()
    img.save(out, "PNG", compress_level=1)
    return out.getvalue()


def _flatten(img: Image.Image) -> Image.Image:
    """Composite on white, or on black when the drawing is light ink in alpha (it would vanish on white)."""
    if img.getchannel("A").getextrema() == (255, 255):  # opaque: the same pixels, without the arithmetic
        return img.convert("RGB" if img.mode == "RGBA" else "L")
    rgba = img.convert("RGBA")
    arr = np.asarray(rgba, dtype=np.float32) / 255.0
    alpha = arr[..., 3]
    gray = arr[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
    weight = float(alpha.sum())
    ink_lightness = float((gray * alpha).sum() / weight) if weight else 0.0
    background = (0, 0, 0) if ink_lightness > 0.5 and np.median(alpha) < 0.5 else (255, 255, 255)
    canvas = Image.new("RGB", rgba.size, background)
    canvas.paste(rgba, mask=rgba.getchannel("A"))
    return canvas if img.mode == "RGBA" else canvas.convert("L")
