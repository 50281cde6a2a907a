"""Pieces of page shared by Draw, Upload and History: a prediction, the model's input, safe text."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import streamlit as st
from PIL import Image

from mnist.results import Prediction

LOW_CONFIDENCE = 0.6  # below this the page says the model is unsure instead of just showing a number
GRID_COLOUR = (72, 72, 96)  # between the black background and white ink, visible on both
MISSING = "—"  # what a table shows in an empty cell (a file that could not be read, no label yet), not "None"
# How every table of rows looks: room for the thumbnails, no index column, a dash in empty cells.
TABLE = {"hide_index": True, "row_height": 64, "placeholder": MISSING}

# Every character Streamlit's Markdown gives a meaning to: CommonMark syntax, HTML tags,
# :emoji:/:color[...]: directives and $LaTeX$.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&])")


def plain(text: object) -> str:
    """User text (a filename, say) escaped so Markdown shows it literally and never as HTML."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))


def pixel_grid(model_input: np.ndarray, cell: int = 10, *, grid: bool = True) -> np.ndarray:
    """28x28 uint8 -> RGB image, each pixel a cell x cell square, with a grid line between cells."""
    big = np.repeat(np.repeat(np.asarray(model_input, dtype=np.uint8), cell, axis=0), cell, axis=1)
    if not grid:
        return np.stack([big] * 3, axis=-1)
    size = model_input.shape[0] * cell + 1
    rgb = np.empty((size, size, 3), dtype=np.uint8)
    rgb[:-1, :-1] = big[..., None]
    rgb[::cell, :] = GRID_COLOUR
    rgb[:, ::cell] = GRID_COLOUR
    return rgb


def png_bytes(image: np.ndarray) -> bytes:
    """An 8-bit array (grey or RGB) -> PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def data_url(png: bytes | None) -> str | None:
    """PNG bytes -> a data: URL for an image column (None stays None)."""
    if png is None:
        return None
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def input_thumbnail(model_input: np.ndarray, scale: int = 3) -> str:
    """The 28x28 input as a data: URL, upscaled without smoothing so pixels stay sharp in a table."""
    big = np.repeat(np.repeat(np.asarray(model_input, dtype=np.uint8), scale, axis=0), scale, axis=1)
    return data_url(png_bytes(big))  # type: ignore[return-value]


def verdict(prediction: Prediction) -> None:
    """Say plainly when the picture is not one digit, or the model is unsure of it."""
    if prediction.verdict == "not_a_digit":
        st.warning(
            f"This doesn't look like a digit (if it were one, the best guess would be **{prediction.digit}**).",
            icon=":material/block:",
        )
    elif prediction.verdict == "several_digits":
        st.info(
            "This looks like several digits: read it as a whole number to get each of them.",
            icon=":material/pin:",
        )
    elif prediction.verdict == "unsure" or prediction.confidence < LOW_CONFIDENCE:
        st.warning(
            f"Not sure: the best guess is **{prediction.digit}** at only {prediction.confidence:.0%}. "
            "Try a larger, centred digit with a clear shape.",
            icon=":material/help:",
        )


def big_digit(digit: int, confidence: float) -> None:
    """The predicted digit, large, with its confidence underneath."""
    # Only an int and a float reach this HTML, never user text.
    st.markdown(
        f'<div class="predicted-digit" aria-label="Predicted digit">{int(digit)}</div>'
        f'<div class="predicted-confidence">{confidence:.1%} confident</div>',
        unsafe_allow_html=True,
    )


def model_input(image: np.ndarray, *, caption: str = "What the model saw: 28×28 pixels") -> None:
    """The 28x28 input enlarged with visible pixels."""
    st.image(pixel_grid(np.asarray(image, dtype=np.uint8), cell=8), caption=caption)


def digit_headline(result: Prediction) -> None:
    """The digit, large, its confidence, and what the verdict says when it is not a sure digit."""
    big_digit(result.digit, result.confidence)
    verdict(result)


def digit_details(result: Prediction) -> None:
    """The ten probabilities with the top three marked, and the model's input."""
    from ui import charts  # altair and pandas load here, after the canvas has painted

    st.altair_chart(charts.probabilities(result.probabilities), width="stretch")
    model_input(result.model_input)


def prediction(result: Prediction) -> None:
    """A digit in full: headline, then details."""
    digit_headline(result)
    digit_details(result)


STYLE = """
<style>
.predicted-digit { font-size: 7rem; font-weight: 700; line-height: 1; text-align: center;
                   color: var(--primary-color, #4f46e5); font-variant-numeric: tabular-nums; }
.predicted-number { font-size: 5rem; font-weight: 700; line-height: 1.1; text-align: center; overflow-wrap: anywhere;
                    color: var(--primary-color, #4f46e5); font-variant-numeric: tabular-nums; letter-spacing: .05em; }
.predicted-confidence { text-align: center; font-size: 1.1rem; opacity: .8; margin-top: .25rem; }
/* A phone, upright or on its side, shows the canvas, the reading and Save in one screen: less room above
   the page, smaller headings and reading. */
@media (max-width: 640px), (max-height: 500px) {
  [data-testid="stMainBlockContainer"] { padding-top: 3.5rem; }
  .predicted-digit { font-size: 4.5rem; }
  .predicted-number { font-size: 3rem; }
  .predicted-confidence { font-size: .95rem; margin-top: 0; }
  h1 { font-size: 1.6rem !important; padding: 0 0 .25rem 0 !important; }
}
</style>
"""


def on_phone() -> bool:
    """This session's browser is a phone's, by its user agent (tablets and desktops say no "Mobile")."""
    return "Mobile" in (st.context.headers.get("User-Agent") or "")


def page_start() -> None:
    """Every page's first call: hand over to app.py's navigation if needed, then add the CSS."""
    from streamlit.runtime.pages_manager import PagesManager

    # Streamlit decides on a process's first request whether the app uses the old folder-based
    # multipage mode, and says yes because a pages/ folder exists. If that first request is for a
    # page URL (/history), it runs the page script alone: no app.py, no sidebar. Correct it once.
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
    st.html(STYLE)
