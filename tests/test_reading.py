"""mnist.service.read / read_many: one digit or a whole number, as the engine decides, with no mode to pick."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageDraw

from mnist.errors import InvalidImage
from mnist.results import NumberReading, Prediction
from mnist.service import read, read_many
from tests.support.api import number_png
from tests.support.browser import SEVEN, number_strokes
from tests.test_app import ROOT, digit_png

# Canvas sizes the Draw page gives a phone upright, a phone on its side, a desktop column and a wide one.
CANVASES = [(352, 211), (560, 220), (456, 274), (900, 540)]


def canvas_png(strokes: list[list[tuple[float, float]]], size: tuple[int, int]) -> bytes:
    """What the canvas sends for these strokes (in canvas heights) at this size, with the page's medium pen."""
    width, height = size
    picture = Image.new("RGBA", size, (0, 0, 0, 255))
    pen = ImageDraw.Draw(picture)
    line_width = round(0.07 * height)
    for line in strokes:
        points = [(x * height, y * height) for x, y in line]
        pen.line(points, fill=(255, 255, 255, 255), width=line_width, joint="curve")
        for x, y in points:  # round caps and joins, as the canvas's brush draws them
            r = line_width / 2
            pen.ellipse((x - r, y - r, x + r, y + r), fill=(255, 255, 255, 255))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("size", CANVASES)
def test_a_drawing_reads_the_same_whatever_the_canvas_size(size):
    seven = read(canvas_png(SEVEN, size))
    assert isinstance(seven, Prediction) and seven.digit == 7 and seven.verdict == "digit"
    number = read(canvas_png(number_strokes("147"), size))
    assert isinstance(number, NumberReading) and number.text == "147"


@pytest.mark.parametrize("text", ["98", "305", "2024", "4096", "31415926"])
def test_numbers_are_read_whole_without_being_asked(text):
    """Long numbers too: squeezed into 28x28 pixels, four digits or more no longer look like several digits
    to the classifier, so ink more than twice as wide as tall goes to the number reader as well."""
    for paper in (False, True):
        reading = read(number_png(text, paper=paper))
        assert isinstance(reading, NumberReading), (text, paper, reading)
        assert reading.text == text


def test_a_single_digit_stays_a_digit():
    for digit in range(10):
        for paper in (False, True):
            reading = read(digit_png(digit, paper=paper))
            assert isinstance(reading, Prediction) and reading.digit == digit


def test_what_is_not_a_digit_is_said_so():
    letter = (ROOT / "tests/data/engine/letter_A_0.png").read_bytes()
    reading = read(letter)
    assert isinstance(reading, Prediction) and reading.verdict == "not_a_digit"


def test_a_bad_picture_among_many_fails_alone():
    readings = read_many([digit_png(3), b"not a picture", number_png("42")])
    assert isinstance(readings[0], Prediction) and readings[0].digit == 3
    assert isinstance(readings[1], InvalidImage)
    assert isinstance(readings[2], NumberReading) and readings[2].text == "42"
    with pytest.raises(InvalidImage):
        read(b"not a picture")
