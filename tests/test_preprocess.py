"""Preprocessing: every input type and Pillow mode, alpha, polarity, MNIST geometry, and bad input."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist.errors import ImageTooLarge, InvalidImage, NoDigitFound, UnsupportedImageType
from mnist.preprocess import (
    candidate_views,
    crop_to_ink,
    ink_map,
    ink_scale,
    label_components,
    load_image,
    number_thumbnail_png,
    pad_to_aspect,
    percentiles_u8,
    preprocess,
    thumbnail_png,
    to_model_input,
)
from tests.redraw import place, strokes
from tests.support.sample import mnist_sample

IMAGES, LABELS = mnist_sample()


def drawing(index: int = 0, size=(280, 280), height: int = 180, at=(40, 60)) -> np.ndarray:
    """A real MNIST digit drawn as float ink (1 = ink) on an empty canvas at (top, left)."""
    canvas = np.zeros(size, np.float32)
    place(canvas, strokes(IMAGES[index], height), *at)
    return canvas


def black_on_white(ink: np.ndarray) -> np.ndarray:
    return (255 - ink * 255).round().astype(np.uint8)


def png(img: Image.Image, fmt: str = "PNG", **params) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **params)
    return out.getvalue()


def similar(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two 28x28 model inputs, best over +-1 px shifts (centring rounds to whole pixels)."""
    b = b.astype(float).ravel()
    shifts = [np.roll(a, (dy, dx), axis=(0, 1)) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    return max(float(np.corrcoef(s.astype(float).ravel(), b)[0, 1]) for s in shifts)


REFERENCE_INK = drawing()
REFERENCE = preprocess(black_on_white(REFERENCE_INK)).model_input


# --------------------------------------------------------------------------- geometry


def test_output_is_mnist_shaped_white_on_black_centred_by_mass():
    out = preprocess(black_on_white(drawing(3, at=(5, 10)))).model_input
    assert out.shape == (28, 28) and out.dtype == np.uint8
    assert out.max() == 255 and out[0].max() == 0 and out[:, 0].max() == 0  # white ink, black border
    rows, cols = np.flatnonzero(out.any(axis=1)), np.flatnonzero(out.any(axis=0))
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 in (20, 21)  # long side scaled to 20 px
    mass = out.astype(float) / out.sum()
    cy, cx = (mass.sum(axis=1) * np.arange(28)).sum(), (mass.sum(axis=0) * np.arange(28)).sum()
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


def test_position_and_size_on_the_canvas_do_not_matter():
    small_corner = preprocess(black_on_white(drawing(height=60, at=(200, 190)))).model_input
    big_centre = preprocess(black_on_white(drawing(height=250, at=(15, 40)))).model_input
    assert similar(small_corner, REFERENCE) > 0.9
    assert similar(big_centre, REFERENCE) > 0.9


def test_box_is_the_ink_in_input_pixels():
    ink = drawing(5, size=(300, 400), at=(70, 150))
    ys, xs = np.nonzero(ink > 0.5)
    box = preprocess(black_on_white(ink)).box
    assert abs(box[0] - xs.min()) <= 2 and abs(box[1] - ys.min()) <= 2
    assert abs(box[2] - (xs.max() + 1)) <= 2 and abs(box[3] - (ys.max() + 1)) <= 2


def test_box_of_a_big_photo_is_mapped_back_to_input_pixels():
    canvas = np.zeros((1200, 2000), np.float32)
    place(canvas, strokes(IMAGES[7], 500), 400, 1300)
    ys, xs = np.nonzero(canvas > 0.5)
    x0, y0, x1, y1 = preprocess(black_on_white(canvas)).box
    assert abs(x0 - xs.min()) <= 6 and abs(y0 - ys.min()) <= 6 and abs(x1 - xs.max()) <= 6 and abs(y1 - ys.max()) <= 6


def test_box_of_a_tiny_thumbnail_is_in_thumbnail_pixels():
    thumb = Image.fromarray(black_on_white(drawing(2))).resize((20, 20), Image.Resampling.LANCZOS)
    x0, y0, x1, y1 = preprocess(thumb).box
    assert 0 <= x0 < x1 <= 20 and 0 <= y0 < y1 <= 20 and (y1 - y0) >= 10


def test_a_genuine_mnist_digit_is_only_recentred():
    for digit in IMAGES[:50]:
        out = preprocess(digit).model_input
        ys, xs = np.nonzero(digit)
        # Same pixels, possibly shifted: compare on the digit's own crop.
        crop = digit[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        oy, ox = np.nonzero(out)
        assert np.array_equal(out[oy.min() : oy.max() + 1, ox.min() : ox.max() + 1], crop)


def test_to_model_input_reads_one_digit_of_several_by_box():
    canvas = np.zeros((200, 500), np.float32)
    place(canvas, strokes(IMAGES[0], 150), 20, 20)  # left digit
    place(canvas, strokes(IMAGES[1], 150), 20, 300)  # right digit
    left = to_model_input(canvas, (0, 0, 250, 200))
    right = to_model_input(canvas, (250, 0, 500, 200))
    alone = preprocess(black_on_white(drawing(0, height=150))).model_input
    assert similar(left, alone) > 0.95
    assert similar(right, alone) < 0.8


def test_ink_map_has_the_input_size_or_a_reported_scale():
    ink = ink_map(black_on_white(drawing()))
    assert ink.shape == (280, 280) and ink.dtype == np.float32 and ink.min() >= 0 and ink.max() <= 1
    big = np.full((1000, 1700), 255, np.uint8)
    ink_big = ink_map(big)
    assert max(ink_big.shape) <= 800 and ink_big.max() == 0  # blank -> all zero, never an exception
    assert ink_scale((1700, 1000), ink_big.shape) == pytest.approx(1700 / ink_big.shape[1])


def test_label_components_8_connected():
    mask = np.zeros((8, 10), bool)
    mask[1, 1] = mask[2, 2] = True  # diagonal neighbours: one component
    mask[5:7, 5:9] = True
    mask[4, 8] = True  # touches the block from above
    mask[0, 9] = True  # alone
    labels, n = label_components(mask)
    assert n == 3
    assert labels[1, 1] == labels[2, 2] != labels[5, 5]
    assert labels[4, 8] == labels[6, 5] and labels[0, 9] not in (labels[1, 1], labels[5, 5], 0)
    u = np.zeros((5, 5), bool)
    u[:, 0] = u[:, 4] = u[4, :] = True  # a U merges two runs through the bottom row
    assert label_components(u)[1] == 1


# --------------------------------------------------------------------------- ruled lines


def test_ruled_lines_are_erased_and_the_digit_kept():
    # Grey printed lines a pixel thick across a sheet, and a pen digit written over two of them.
    paper = np.full((240, 320), 240, np.float32)
    paper[12::24] = 150
    paper[:, 40] = 150  # the margin
    ink = np.zeros_like(paper)
    place(ink, strokes(IMAGES[0], 110), 60, 140)
    photo = (paper * (1 - ink) + 30 * ink).astype(np.uint8)
    found = ink_map(photo)
    assert found[12::24, :120].max() < 0.3 and found[:, 40].max() < 0.3  # the lines, away from the digit
    assert (found > 0.3).sum() > 0.8 * (ink > 0.5).sum()  # the digit


def test_a_stem_running_off_a_tight_crop_is_ink_not_a_ruled_line():
    # MNIST cells side by side, cut down to the ink: the 1s' and 7s' stems span the picture's height and
    # reach its edges, as thin as the digits' other strokes. They are the number, not lines to erase.
    chosen = [int(np.flatnonzero(digit == LABELS)[k]) for digit, k in ((7, 0), (1, 0), (4, 0), (1, 1), (7, 1))]
    tight, _, _ = crop_to_ink(np.hstack([IMAGES[i] for i in chosen]), "blank")
    found = ink_map(tight)
    f = found.shape[0] // tight.shape[0]  # small pictures are enlarged by a whole factor
    strong = np.repeat(np.repeat(tight > 200, f, axis=0), f, axis=1)
    assert found[strong].min() > 0.3


# --------------------------------------------------------------------------- input types


@pytest.mark.parametrize(
    "make",
    [
        lambda ink: Image.fromarray(black_on_white(ink)),
        lambda ink: black_on_white(ink),
        lambda ink: np.dstack([black_on_white(ink)] * 3),
        lambda ink: np.dstack([black_on_white(ink)] * 3 + [np.full(ink.shape, 255, np.uint8)]),
        lambda ink: 1.0 - ink,  # float 0..1
        lambda ink: 255.0 - ink * 255.0,  # float 0..255
        lambda ink: ink > 0.5,  # bool, True = ink (white on black)
        lambda ink: png(Image.fromarray(black_on_white(ink))),
        lambda ink: bytearray(png(Image.fromarray(black_on_white(ink)))),
    ],
    ids=["pil", "array-HxW", "array-HxWx3", "array-HxWx4", "float01", "float255", "bool", "bytes", "bytearray"],
)
def test_every_input_type(make):
    image = make(REFERENCE_INK)
    threshold = 0.93 if getattr(image, "dtype", None) == np.bool_ else 0.97  # bool has no anti-aliasing to keep
    assert similar(preprocess(image).model_input, REFERENCE) > threshold


def test_a_path_str_and_pathlike(tmp_path: Path):
    path = tmp_path / "digit.png"
    path.write_bytes(png(Image.fromarray(black_on_white(REFERENCE_INK))))
    assert similar(preprocess(str(path)).model_input, REFERENCE) > 0.97
    assert similar(preprocess(path).model_input, REFERENCE) > 0.97


def _mode(mode: str) -> Image.Image:
    gray = Image.fromarray(black_on_white(REFERENCE_INK))
    if mode == "P-transparent":
        img = gray.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE)
        img.info["transparency"] = img.getpixel((0, 0))  # the paper colour becomes transparent
        return img
    if mode in ("I;16", "I", "F"):
        # High-bit-depth scans with their own range: 12-bit data here.
        return Image.fromarray(
            (np.asarray(gray, np.float64) * 16 + 100).astype({"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode])
        )
    if mode == "LA":
        return Image.merge("LA", (gray, Image.new("L", gray.size, 255)))
    return gray.convert(mode)


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "P-transparent", "RGB", "RGBA", "I;16", "I", "F", "CMYK"])
def test_every_pillow_mode(mode):
    img = _mode(mode)
    assert img.mode == mode.split("-")[0]
    threshold = 0.85 if mode == "1" else 0.97  # mode 1 has no anti-aliasing to keep
    assert similar(preprocess(img).model_input, REFERENCE) > threshold


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"])
def test_every_allowed_format_decodes(fmt):
    data = png(Image.fromarray(black_on_white(REFERENCE_INK)).convert("RGB"), fmt)
    assert similar(preprocess(data).model_input, REFERENCE) > 0.95


def test_exif_orientation_is_applied():
    upright = Image.fromarray(black_on_white(drawing(4, size=(200, 300), at=(10, 20))))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # as a phone stores a portrait shot
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": undoes the stored rotation
    data = png(stored.convert("RGB"), "JPEG", quality=95, exif=exif.tobytes())
    expected = preprocess(upright).model_input
    assert similar(preprocess(data).model_input, expected) > 0.95
    assert similar(preprocess(stored).model_input, expected) < 0.8  # the tag really mattered


def test_animated_gif_reads_the_first_frame():
    first = Image.fromarray(black_on_white(drawing(0))).convert("P")
    second = Image.fromarray(black_on_white(drawing(1))).convert("P")
    data = png(first, "GIF", save_all=True, append_images=[second], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    assert similar(preprocess(data).model_input, REFERENCE) > 0.95


# --------------------------------------------------------------------------- alpha and polarity


@pytest.mark.parametrize("rgb", [0, 255], ids=["rgb-black", "rgb-white"])
def test_drawing_only_in_alpha_is_read(rgb):
    alpha = (REFERENCE_INK * 255).round().astype(np.uint8)
    rgba = np.dstack([np.full((*alpha.shape, 3), rgb, np.uint8), alpha])
    assert similar(preprocess(rgba).model_input, REFERENCE) > 0.97


def test_white_strokes_on_a_transparent_black_canvas():
    alpha = (REFERENCE_INK * 255).round().astype(np.uint8)
    rgb = np.where(alpha[..., None] > 0, 255, 0).astype(np.uint8).repeat(3, axis=2)
    assert similar(preprocess(png(Image.fromarray(np.dstack([rgb, alpha])))).model_input, REFERENCE) > 0.97


def test_opaque_picture_with_transparent_edges_is_flattened_on_its_paper():
    rgba = np.dstack([np.dstack([black_on_white(REFERENCE_INK)] * 3), np.full((280, 280), 255, np.uint8)])
    rgba[:12, :, 3] = 0  # a transparent strip; its RGB is black garbage
    rgba[:12, :, :3] = 0
    assert similar(preprocess(rgba).model_input, REFERENCE) > 0.97


def test_polarity_light_on_dark_equals_dark_on_light():
    dark_on_light = preprocess(black_on_white(REFERENCE_INK)).model_input
    light_on_dark = preprocess((REFERENCE_INK * 255).astype(np.uint8)).model_input
    grey_on_grey = preprocess((90 + REFERENCE_INK * 60).astype(np.uint8)).model_input  # low contrast
    assert similar(light_on_dark, dark_on_light) > 0.97
    assert similar(grey_on_grey, dark_on_light) > 0.95


def test_dark_ink_under_a_lighting_gradient():
    ink = drawing(6)
    light = np.linspace(0.45, 1.0, 280, dtype=np.float32)[None, :]
    photo = ((235 * (1 - ink) + 30 * ink) * light).astype(np.uint8)
    assert similar(preprocess(photo).model_input, preprocess(black_on_white(ink)).model_input) > 0.93


@pytest.mark.parametrize("dark", [True, False], ids=["dark-ink", "light-ink"])
def test_a_fat_marker_under_a_lighting_gradient_keeps_its_polarity_and_its_body(dark):
    # Strokes a fifth of the digit wide covering much of the picture, under a gradient that makes the
    # border uneven: the ink must neither be taken for paper nor hollowed out as background.
    canvas = np.zeros((200, 200), np.float32)
    place(canvas, strokes(IMAGES[3], 150, pen=32), 25, 40)
    light = np.linspace(0.8, 1.15, 200, dtype=np.float32)[None, :]
    paper, pen = (215, 40) if dark else (45, 215)
    noise = np.random.default_rng(0).normal(0, 6, canvas.shape)
    photo = np.clip((paper * (1 - canvas) + pen * canvas) * light + noise, 0, 255).astype(np.uint8)
    clean = preprocess((canvas * 255).astype(np.uint8)).model_input
    assert similar(preprocess(photo).model_input, clean) > 0.93


# --------------------------------------------------------------------------- no digit, bad input


@pytest.mark.parametrize(
    "image",
    [
        np.full((280, 280, 3), 255, np.uint8),  # blank white canvas
        np.zeros((280, 280, 4), np.uint8),  # blank transparent canvas
        np.full((280, 280), 128, np.uint8),  # uniform grey
        np.full((1, 1), 0, np.uint8),  # 1x1 image
        (np.random.default_rng(0).normal(128, 2, (280, 280))).clip(0, 255).astype(np.uint8),  # sensor noise
    ],
    ids=["blank-white", "blank-transparent", "uniform-grey", "1x1", "faint-noise"],
)
def test_no_digit_raises_no_digit_found(image):
    with pytest.raises(NoDigitFound):
        preprocess(image)


def test_random_noise_is_no_digit():
    """Documented behaviour: uniform random noise has no stroke above its own noise level."""
    noise = np.random.default_rng(1).integers(0, 256, (280, 280, 3), dtype=np.uint8)
    with pytest.raises(NoDigitFound):
        preprocess(noise)
    with pytest.raises(NoDigitFound):
        preprocess(png(Image.fromarray(noise), "JPEG", quality=30))


def test_a_text_file_is_invalid(tmp_path: Path):
    text = b"hello, this is not an image\n" * 10
    with pytest.raises(InvalidImage) as info:
        preprocess(text)
    assert not isinstance(info.value, UnsupportedImageType)
    path = tmp_path / "notes.txt"
    path.write_bytes(text)
    with pytest.raises(InvalidImage):
        preprocess(path)


def test_a_missing_path_is_invalid(tmp_path: Path):
    with pytest.raises(InvalidImage):
        preprocess(tmp_path / "nope.png")


@pytest.mark.timeout(10)
def test_a_truncated_png_is_invalid():
    data = png(Image.fromarray(black_on_white(REFERENCE_INK)))
    with pytest.raises(InvalidImage):
        preprocess(data[: len(data) // 2])


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _png_header(width: int, height: int) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))


@pytest.mark.timeout(10)
def test_a_png_header_claiming_20000x20000_fails_fast():
    data = _png_header(20000, 20000) + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + _png_chunk(b"IEND", b"")
    with pytest.raises(ImageTooLarge):
        preprocess(data)


@pytest.mark.timeout(10)
def test_a_decompression_bomb_is_refused_before_decoding():
    # 5000 x 5000 grey zeros (25 Mpx, over the 4096 x 4096 limit) compress to ~25 KB.
    side = 5000
    packer = zlib.compressobj(9)
    row = b"\x00" * (side + 1)
    body = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    data = _png_header(side, side) + _png_chunk(b"IDAT", body) + _png_chunk(b"IEND", b"")
    assert len(data) < 100_000
    with pytest.raises(ImageTooLarge):
        preprocess(data)


def test_pixel_limit_applies_to_arrays_and_pil_images(monkeypatch):
    monkeypatch.setenv("MNIST_MAX_IMAGE_PIXELS", str(100 * 100))
    with pytest.raises(ImageTooLarge):
        preprocess(np.zeros((101, 100), np.uint8))
    with pytest.raises(ImageTooLarge):
        preprocess(Image.new("L", (200, 60)))


@pytest.mark.parametrize("fmt", ["ICO", "PPM"])
def test_a_disallowed_format_is_unsupported(fmt):
    data = png(Image.fromarray(black_on_white(REFERENCE_INK)).resize((64, 64)).convert("RGB"), fmt)
    with pytest.raises(UnsupportedImageType):
        preprocess(data)


def test_bytes_over_the_limit_are_too_large(monkeypatch, tmp_path: Path):
    data = png(Image.fromarray(black_on_white(REFERENCE_INK)))
    with pytest.raises(ImageTooLarge):
        load_image(data, max_bytes=len(data) - 1)
    monkeypatch.setenv("MNIST_MAX_IMAGE_BYTES", str(len(data) - 1))
    with pytest.raises(ImageTooLarge):
        preprocess(data)
    path = tmp_path / "big.png"
    path.write_bytes(data)
    with pytest.raises(ImageTooLarge):
        preprocess(path)


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((10, 10, 5), np.uint8),
        np.zeros((2, 3, 4, 5), np.uint8),
        np.full((20, 20), np.nan),
        np.zeros((5, 5), complex),
    ],
    ids=["5-channels", "4-d", "nan", "complex"],
)
def test_malformed_arrays_are_invalid(array):
    with pytest.raises(InvalidImage):
        preprocess(array)


def test_unsupported_python_objects_are_invalid():
    with pytest.raises(InvalidImage):
        preprocess(12345)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- thumbnails


def test_thumbnail_is_a_small_png():
    data = thumbnail_png(black_on_white(drawing(size=(600, 900))))
    img = Image.open(io.BytesIO(data))
    assert img.format == "PNG" and max(img.size) == 280 and len(data) <= 200_000


def test_thumbnail_of_noise_still_fits_the_byte_budget():
    noise = np.random.default_rng(2).integers(0, 256, (1000, 1000, 3), dtype=np.uint8)
    data = thumbnail_png(noise, max_bytes=50_000)
    assert len(data) <= 50_000 and Image.open(io.BytesIO(data)).format == "PNG"


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_an_opaque_picture_with_alpha_is_thumbnailed_like_the_same_picture_without(mode):
    rng = np.random.default_rng(5)
    for size in [(28, 28), (300, 170)]:
        pixels = rng.integers(0, 256, (size[1], size[0], len(mode)), dtype=np.uint8)
        pixels[..., -1] = 255
        img = Image.fromarray(pixels, mode)
        assert thumbnail_png(img) == thumbnail_png(img.convert(mode[:-1]))
    pixels[5, 7] = 0  # one black pixel, fully transparent: composited on white, not passed through
    translucent = Image.fromarray(pixels, mode)
    assert thumbnail_png(translucent) != thumbnail_png(translucent.convert(mode[:-1]))


def test_thumbnail_of_white_ink_in_alpha_stays_visible():
    alpha = (REFERENCE_INK * 255).astype(np.uint8)
    rgba = np.dstack([np.full((280, 280, 3), 255, np.uint8), alpha])
    shown = np.asarray(Image.open(io.BytesIO(thumbnail_png(rgba))).convert("L"))
    assert shown.min() < 50 and shown.max() > 200  # the strokes contrast with what is behind them


def test_a_number_in_a_big_photo_is_thumbnailed_as_the_number():
    photo = np.full((900, 1200, 3), 200, np.uint8)  # grey wall, and the number's three digits on it
    boxes = [(500, 400, 540, 460), (550, 400, 590, 460), (600, 400, 640, 460)]
    for x0, y0, x1, y1 in boxes:
        photo[y0:y1, x0:x1] = 20
    thumb = np.asarray(Image.open(io.BytesIO(number_thumbnail_png(photo, boxes))).convert("L"))
    # The digits and a margin of a quarter of their height: 140 + 2 * 15 wide, 60 + 2 * 15 tall (never enlarged).
    assert thumb.shape == (90, 170)
    assert (thumb < 100).mean() > 0.4  # mostly the digits, not the wall


def test_a_long_number_thumbnail_is_at_most_three_times_as_wide_as_tall_and_whole():
    strip = np.full((40, 900), 255, np.uint8)  # a tight scan of a long number: the picture has no more above
    boxes = [(10 + 75 * i, 5, 70 + 75 * i, 35) for i in range(12)]
    for x0, y0, x1, y1 in boxes:
        strip[y0:y1, x0:x1] = 0
    thumb = np.asarray(Image.open(io.BytesIO(number_thumbnail_png(strip, boxes))).convert("L"))
    height, width = thumb.shape
    assert width == 280 and abs(width - 3 * height) <= 3  # 3:1, but for the rounding of its height
    ink_columns = np.flatnonzero((thumb < 128).any(axis=0))
    assert ink_columns[0] < 20 and ink_columns[-1] > 260  # the first digit and the last are both in it
    assert thumb[0].min() == thumb[-1].min() == 255  # padded with the paper's colour, not black bars
    # A wide canvas with the number somewhere in it: the 3:1 crop takes more of the canvas (720 x 240 of it).
    canvas = np.zeros((280, 900), np.uint8)
    canvas[120:160, 100:800] = 255
    wide = np.asarray(Image.open(io.BytesIO(number_thumbnail_png(canvas, [(100, 120, 800, 160)]))))
    assert wide.shape == (93, 280) and wide[:, 0].max() == 0 and wide[46, 8:272].min() > 200


def test_pad_to_aspect_adds_border_coloured_rows_above_and_below_only_when_too_wide():
    grey = np.full((10, 60), 7, np.uint8)
    padded = pad_to_aspect(grey, 3.0)
    assert padded.shape == (20, 60) and np.array_equal(padded[5:15], grey) and set(np.unique(padded)) == {7}
    rgb = np.zeros((10, 20, 3), np.uint8)
    assert pad_to_aspect(rgb, 3.0) is rgb  # already narrow enough: untouched


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "LA"])
def test_an_mnist_style_digit_reads_alike_in_any_grey_pixel_format(mode: str) -> None:
    # The original service's own sample is an opaque RGBA 28x28 MNIST digit: the same picture as its L version.
    for index in range(20):
        grey = Image.fromarray(IMAGES[index])
        views = candidate_views(grey.convert(mode))
        assert [(v.kind, v.box, v.dark) for v in views] == [(v.kind, v.box, v.dark) for v in candidate_views(grey)]
        assert np.array_equal(views[0].model_input, preprocess(grey).model_input)
    translucent = Image.fromarray(IMAGES[0]).convert("RGBA")
    translucent.putalpha(200)
    assert candidate_views(translucent)[0].kind != "mnist"  # not opaque: the full front end reads it


def test_uint8_percentiles_are_numpys_bit_for_bit() -> None:
    rng = np.random.default_rng(3)
    for trial in range(2000):
        n = int(rng.integers(1, 2000))
        values = [
            rng.integers(0, 256, n),
            np.where(rng.random(n) < 0.95, 0, 255),  # a transparent canvas's alpha: mostly 0, strokes 255
            np.where(rng.random(n) < 0.9, 255, rng.integers(0, 256, n)),
            rng.integers(0, 3, n) * 127,
        ][trial % 4].astype(np.uint8)
        percents = [[1, 99.9], [5, 95], [0, 50, 100]][trial % 3]
        expected, got = np.percentile(values, percents), percentiles_u8(values, percents)
        assert got.dtype == expected.dtype and np.array_equal(got, expected), (values, percents)
