"""read_number: whole numbers, on held-back MNIST digits composed by tests/number_gen.py.

The accuracy tests read a fixed sample of the HELD_BACK split (digits 500-999 of the committed
MNIST sample); the segmentation was tuned on the TUNE split (digits 0-499) only.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mnist import NoDigitFound, NumberReading, TooManyDigits, read_number
from mnist.predict import Predictor, get_predictor
from tests.number_gen import GAP_TYPES, HELD_BACK, TUNE, compose, make_number, mnist_sample, render, sample_set

# Numbers per gap type in the accuracy sample (2-8 digits, the four styles in turn), and the bar each must clear.
SAMPLE = 80
# Issue 6 asks for 97% (apart) and 85% (touching, overlapping). Reached so far on this sample:
# separated 77/80, touching 61/80, overlapping 36/80 (benchmarks/numbers_bench.py: 98.0 / 68.5 / 49.5%).
# The issue stays open; these floors guard what works against regressions, they are not the goal.
TARGETS = {"separated": 0.97, "touching": 0.85, "overlapping": 0.85}
FLOORS = {"separated": 0.95, "touching": 0.70, "overlapping": 0.40}
SEED = 2024


def _canvas(draw_strokes, size=(280, 280)) -> Image.Image:
    """White strokes on a black canvas, drawn by `draw_strokes(ImageDraw, x_offset)`."""
    img = Image.new("L", size)
    draw_strokes(ImageDraw.Draw(img))
    return img


def _five_with_floating_bar(d: ImageDraw.ImageDraw, ox: int = 0) -> None:
    # The top bar is lifted clear of the body: two separate strokes, as people often write a 5.
    d.line([(ox + 100, 60), (ox + 190, 60)], fill=255, width=18)
    d.line([(ox + 100, 86), (ox + 95, 140)], fill=255, width=18)
    d.arc([ox + 80, 110, ox + 200, 240], start=-150, end=130, fill=255, width=18)


def _four_in_two_strokes(d: ImageDraw.ImageDraw, ox: int = 0) -> None:
    # The down-and-across stroke stops just short of the upright: two separate strokes.
    d.line([(ox + 120, 40), (ox + 80, 160), (ox + 172, 160)], fill=255, width=18, joint="curve")
    d.line([(ox + 190, 70), (ox + 190, 245)], fill=255, width=18)


def _components(img: Image.Image) -> int:
    from mnist.preprocess import label_components

    return label_components(np.asarray(img) > 127)[1]


@pytest.mark.slow
@pytest.mark.parametrize("gap", GAP_TYPES)
def test_sequence_accuracy_on_held_back_numbers(gap: str) -> None:
    samples = sample_set(SEED, SAMPLE, gap, indices=HELD_BACK)
    right = sum(read_number(s.image).text == s.text for s in samples)
    assert right / SAMPLE >= FLOORS[gap], f"{gap}: {right}/{SAMPLE} read exactly (target {TARGETS[gap]:.0%})"


def test_five_with_a_floating_bar_is_one_digit() -> None:
    img = _canvas(_five_with_floating_bar)
    assert _components(img) == 2  # the drawing really is in two pieces
    reading = read_number(img)
    assert reading.text == "5"
    assert len(reading.digits) == len(reading.boxes) == 1


def test_four_in_two_strokes_is_one_digit() -> None:
    img = _canvas(_four_in_two_strokes)
    assert _components(img) == 2
    assert read_number(img).text == "4"


def test_loose_pieces_merge_inside_a_number() -> None:
    img = _canvas(lambda d: (_four_in_two_strokes(d), _five_with_floating_bar(d, 280)), size=(560, 280))
    assert read_number(img).text == "45"


def test_a_single_digit_is_a_one_digit_number() -> None:
    images, labels = mnist_sample()
    index = HELD_BACK[3]
    reading = read_number(Image.fromarray(images[index]).resize((140, 140)))
    assert reading.text == str(labels[index])
    assert len(reading.digits) == 1


def _digits_read_alone(count: int, seed: int) -> list[int]:
    """Held-back digits the model reads right on their own: a wrong reading of the number is then segmentation's."""
    images, labels = mnist_sample()
    candidates = np.random.default_rng(seed).permutation(np.asarray(HELD_BACK))[: 3 * count]
    read = get_predictor().classify([images[i] for i in candidates])
    return [int(i) for i, p in zip(candidates, read, strict=True) if p.digit == labels[i]][:count]


def test_twelve_digits_are_read() -> None:
    images, labels = mnist_sample()
    chosen = _digits_read_alone(12, seed=12)
    rng = np.random.default_rng(12)
    ink, _, _ = compose(rng, [images[i] for i in chosen], "separated")
    reading = read_number(render(rng, ink, "canvas"))
    assert len(reading.digits) == 12
    assert reading.text == "".join(str(labels[i]) for i in chosen)


def test_thirteen_digits_are_too_many() -> None:
    sample = make_number(np.random.default_rng(13), 13, "separated", "paper")
    with pytest.raises(TooManyDigits, match="at most 12"):
        read_number(sample.image)


@pytest.mark.parametrize(
    "blank",
    [
        Image.new("L", (300, 100), 0),
        Image.new("RGB", (300, 100), (255, 255, 255)),
        Image.new("RGBA", (900, 280), (0, 0, 0, 0)),
    ],
    ids=["black canvas", "white paper", "transparent canvas"],
)
def test_blank_image_has_no_digit(blank: Image.Image) -> None:
    with pytest.raises(NoDigitFound, match="no digit found"):
        read_number(blank)


def test_boxes_are_in_input_pixels_left_to_right() -> None:
    # 2,400 px wide: preprocess works on a reduced copy, so boxes must be scaled back up.
    rng = np.random.default_rng(5)
    images, labels = mnist_sample()
    chosen = [HELD_BACK[i] for i in (0, 1, 2, 5)]
    ink, truth, _ = compose(rng, [images[i] for i in chosen], "separated")
    img = render(rng, ink, "paper")
    factor = 2400 / img.width
    big = img.resize((2400, round(img.height * factor)), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    big.save(buffer, "PNG")
    reading = read_number(buffer.getvalue())
    assert reading.text == "".join(str(labels[i]) for i in chosen)
    assert [b[0] for b in reading.boxes] == sorted(b[0] for b in reading.boxes)
    for got, want in zip(reading.boxes, truth, strict=True):
        want = [round(v * factor) for v in want]
        assert all(0 <= v <= s for v, s in zip(got, big.size * 2, strict=True))
        # The ink box the reader found lies on the digit's true box, within a few percent of the height.
        tolerance = 0.08 * (want[3] - want[1])
        assert all(abs(g - w) <= tolerance for g, w in zip(got, want, strict=True)), (got, want)
    assert [d.box for d in reading.digits] == reading.boxes


def test_confidence_is_the_weakest_digit() -> None:
    sample = make_number(np.random.default_rng(7), 5, "touching", "canvas_rgba", TUNE)
    reading = read_number(sample.image)
    assert isinstance(reading, NumberReading)
    assert reading.confidence == min(d.confidence for d in reading.digits)
    assert reading.text == "".join(str(d.digit) for d in reading.digits)


def test_final_reading_is_one_forward_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    batches: list[int] = []
    original = Predictor.classify

    def counting(self, model_inputs, boxes=None):
        batches.append(len(model_inputs))
        return original(self, model_inputs, boxes)

    monkeypatch.setattr(Predictor, "classify", counting)
    sample = make_number(np.random.default_rng(3), 6, "separated", "paper")
    reading = read_number(sample.image)
    # Scoring candidates may take other batches; the digits themselves come from the last one, all at once.
    assert batches[-1] == len(reading.digits) == 6
    assert [d.model_input.shape for d in reading.digits] == [(28, 28)] * 6


def test_generator_is_deterministic_and_splits_digits() -> None:
    a, b = sample_set(9, 3, "touching"), sample_set(9, 3, "touching")
    assert [s.text for s in a] == [s.text for s in b]
    assert all(np.array_equal(np.asarray(x.image), np.asarray(y.image)) for x, y in zip(a, b, strict=True))
    assert set(TUNE).isdisjoint(HELD_BACK)
