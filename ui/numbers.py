"""A whole number read from an image, as Draw and Upload show it: boxes over the image, the text, each digit."""

from __future__ import annotations

import io

import streamlit as st
from PIL import Image, ImageDraw, ImageFont

from mnist.preprocess import ImageInput, load_image, thumbnail_png
from mnist.results import NumberReading
from ui import views

OVERLAY_SIDE = 900  # px: the Draw page's wide canvas, shown at its own size
BOX_COLOUR = (255, 176, 0)  # amber: visible on a black canvas and on white paper alike
DIGITS_PER_ROW = 6  # each digit's 28x28 input stays large enough to see its pixels


def overlay_png(image: ImageInput, reading: NumberReading, max_side: int = OVERLAY_SIDE) -> bytes:
    """The image (at most `max_side` px) with each digit's box and what it was read as drawn over a copy."""
    loaded = load_image(image)
    # thumbnail_png flattens transparency onto black, so a transparent canvas shows as drawn.
    picture = Image.open(io.BytesIO(thumbnail_png(loaded, max_side=max_side, max_bytes=4_000_000)))
    picture = picture.convert("RGB")
    scale = picture.width / loaded.width
    line = max(2, round(picture.height / 90))
    font = ImageFont.load_default(size=max(12, round(picture.height / 10)))
    pen = ImageDraw.Draw(picture)
    for (x0, y0, x1, y1), digit in zip(reading.boxes, reading.digits, strict=True):
        box = (x0 * scale - line, y0 * scale - line, x1 * scale + line, y1 * scale + line)
        pen.rectangle(box, outline=BOX_COLOUR, width=line)
        # The digit above its box, or inside it when the box touches the top edge.
        top = box[1] - font.size - line if box[1] - font.size - line >= 0 else box[1] + line
        pen.text((box[0] + line, top), str(digit.digit), fill=BOX_COLOUR, font=font)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def big_number(text: str, confidence: float) -> None:
    """The number read, large, with the weakest digit's confidence underneath."""
    digits = "".join(c for c in text if c.isdigit())  # only digits ever reach this HTML
    st.markdown(
        f'<div class="predicted-number" aria-label="Predicted number">{digits}</div>'
        f'<div class="predicted-confidence">{confidence:.1%} confident (its least certain digit)</div>',
        unsafe_allow_html=True,
    )


def verdict(reading: NumberReading) -> None:
    """Say which digits the model is unsure of."""
    unsure = [(i, d) for i, d in enumerate(reading.digits, start=1) if d.confidence < views.LOW_CONFIDENCE]
    if unsure:
        listed = ", ".join(f"digit {i} (**{d.digit}** at {d.confidence:.0%})" for i, d in unsure)
        st.warning(
            f"Not sure about {listed}. Leave a clear gap between digits and write each one large.",
            icon=":material/help:",
        )


def digit_inputs(reading: NumberReading) -> None:
    """Each digit's 28x28 model input, enlarged, with what it was read as."""
    for start in range(0, len(reading.digits), DIGITS_PER_ROW):
        columns = st.columns(DIGITS_PER_ROW)
        for column, (i, digit) in zip(columns, enumerate(reading.digits[start:], start=start + 1), strict=False):
            with column:
                views.model_input(digit.model_input, caption=f"#{i}: {digit.digit} · {digit.confidence:.0%}")


def number_headline(reading: NumberReading) -> None:
    """The number, large, its confidence, and which digits the model is unsure of."""
    big_number(reading.text, reading.confidence)
    verdict(reading)


def number_details(reading: NumberReading, overlay: bytes | None) -> None:
    """Each digit's box over the picture, each digit's probabilities, and what the model saw of each."""
    from ui import charts  # altair and pandas load here, after the canvas has painted

    if overlay is not None:
        st.image(overlay, caption="Each box is one digit, read left to right")
    rows = [(f"#{i} · {d.digit}", d.probabilities) for i, d in enumerate(reading.digits, start=1)]
    st.altair_chart(charts.digit_probabilities(rows), width="stretch")
    st.caption("What the model saw, digit by digit (28×28 pixels each):")
    digit_inputs(reading)


def reading_view(reading: NumberReading, overlay: bytes | None) -> None:
    """A number in full: headline, then details."""
    number_headline(reading)
    number_details(reading, overlay)
