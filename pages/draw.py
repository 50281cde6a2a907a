"""Draw: the model reads the digit (or a whole number) live as it is drawn; Save keeps it in the history.

A saved digit can then be confirmed or corrected; a number is saved as one row (source "number").
"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING

import streamlit as st
from streamlit_drawable_canvas import CanvasResult, st_canvas

from ui import numbers, resources, views

if TYPE_CHECKING:
    from mnist.numbers import NumberReading
    from mnist.predict import Prediction

CANVAS_SIDE = 320  # px; MNIST digits are drawn to fill about 70% of this
DEFAULT_STROKE = 22  # px at 320: after scaling to 28 px, about the 2-3 px pen of the MNIST originals
EMPTY = "Draw a digit in the black square; the prediction appears as soon as you lift the mouse."
MODES = ("Digit", "Number")
NUMBER_CANVAS = (900, 280)  # px: room for about six digits as tall as the single-digit ones
NUMBER_STROKE = 18  # px: digits here are ~200 px tall instead of ~225, so a slightly thinner pen
EMPTY_NUMBER = "Write a number (up to 12 digits) in the black strip; it is read as soon as you lift the mouse."


def live_prediction(png: bytes) -> tuple[str, Prediction, float]:
    """(digest, prediction, ms) for the drawing, computed once per distinct image and reused on other reruns."""
    from mnist.predict import predict

    digest = hashlib.sha256(png).hexdigest()
    cached = st.session_state.get("draw_prediction")
    if cached and cached[0] == digest:
        return cached
    started = time.perf_counter()
    result = predict(png)
    cached = (digest, result, (time.perf_counter() - started) * 1000)
    st.session_state["draw_prediction"] = cached
    return cached


def save(png: bytes, digest: str, prediction: Prediction, latency_ms: float) -> None:
    """Store the drawing (nothing is written while drawing, only here)."""
    from mnist.service import save_prediction

    store = resources.get_store()
    outcome = save_prediction(store, prediction, png, source="draw", filename=None, latency_ms=latency_ms)
    if outcome.saved:
        st.session_state["draw_saved"] = {"digest": digest, "id": outcome.record_id, "label": None}
    else:
        resources.forget_database_status()
        st.session_state["draw_save_error"] = outcome.warning or "Not saved: DATABASE_URL is not a valid URL."


def set_label(record_id: int, label: int | None) -> None:
    """Record what the digit really was."""
    from mnist.errors import RecordNotFound, StoreUnavailable

    store = resources.get_store()
    if store is None:
        st.session_state["draw_save_error"] = "History is off: DATABASE_URL is not a valid URL."
        return
    try:
        store.set_label(record_id, label)
    except (StoreUnavailable, RecordNotFound) as exc:
        st.session_state["draw_save_error"] = f"Could not store the label: {exc}"
        return
    st.session_state["draw_saved"]["label"] = label


def choose_truth(record_id: int, key: str) -> None:
    """The person picked the true digit from the pills."""
    if st.session_state.get(key) is not None:
        set_label(record_id, st.session_state[key])


def feedback(saved: dict, predicted: int) -> None:
    """After saving: "Was this right?" -> confirm, or pick the true digit."""
    record_id = saved["id"]
    if saved["label"] is not None:
        verb = "Confirmed" if saved["label"] == predicted else "Corrected"
        st.success(f"{verb}: saved as #{record_id} with true digit **{saved['label']}**.", icon=":material/check:")
        return
    st.success(f"Saved to the history as #{record_id}. Was this right?", icon=":material/check:")
    st.button(
        f"Yes, it's a {predicted}",
        key=f"confirm_{record_id}",
        icon=":material/thumb_up:",
        on_click=set_label,
        args=(record_id, predicted),
    )
    key = f"truth_{record_id}"
    st.pills(
        "No, it was a", [d for d in range(10) if d != predicted], key=key, on_change=choose_truth, args=(record_id, key)
    )


def canvas(key: str, size: tuple[int, int], stroke: int) -> CanvasResult:
    """A freehand canvas, white on black like MNIST, that sends its pixels back (return_image_data)."""
    width, height = size
    return st_canvas(
        stroke_width=stroke,
        stroke_color="#FFFFFF",
        background_color="#000000",
        width=width,
        height=height,
        drawing_mode="freedraw",
        return_image_data=True,
        key=key,
    )


@st.fragment
def drawing() -> None:
    """Canvas and prediction rerun alone on each stroke, without the rest of the app."""
    left, right = st.columns([1, 1], gap="large")
    with left:
        result = canvas("canvas", (CANVAS_SIDE, CANVAS_SIDE), st.session_state.get("stroke_width", DEFAULT_STROKE))
        st.caption("Point at the canvas for its toolbar: undo, redo, and the bin clears it.")
        st.slider("Stroke width", min_value=8, max_value=40, value=DEFAULT_STROKE, step=1, key="stroke_width")

    with right:
        png = result.image_bytes
        strokes = (result.json_data or {}).get("objects") or []
        if png is None or not strokes:
            st.info(EMPTY, icon=":material/draw:")
            return
        from mnist.errors import InvalidImage, NoDigitFound

        try:
            digest, prediction, latency_ms = live_prediction(png)
        except NoDigitFound:
            st.info("The canvas is empty: " + EMPTY, icon=":material/draw:")
            return
        except InvalidImage as exc:
            st.error(f"Could not read the drawing: {exc}")
            return
        except FileNotFoundError:
            st.error("No model weights found (weights/mnist_cnn.pt), so nothing can be predicted.")
            return
        views.prediction(prediction)

        saved = st.session_state.get("draw_saved")
        error = st.session_state.pop("draw_save_error", None)
        if saved and saved["digest"] == digest:
            feedback(saved, prediction.digit)
        else:
            st.button(
                "Save to history",
                type="primary",
                icon=":material/save:",
                key="save",
                on_click=save,
                args=(png, digest, prediction, latency_ms),
            )
        if error:
            st.warning(error, icon=":material/cloud_off:")


def live_reading(png: bytes) -> tuple[str, NumberReading, float, bytes]:
    """(digest, reading, ms, boxes drawn over the drawing), computed once per distinct drawing."""
    from mnist.numbers import read_number

    digest = hashlib.sha256(png).hexdigest()
    cached = st.session_state.get("number_reading")
    if cached and cached[0] == digest:
        return cached
    started = time.perf_counter()
    reading = read_number(png)
    latency_ms = (time.perf_counter() - started) * 1000
    cached = (digest, reading, latency_ms, numbers.overlay_png(png, reading))
    st.session_state["number_reading"] = cached
    return cached


def save_number(png: bytes, digest: str, reading: NumberReading, latency_ms: float) -> None:
    """Store the number as one history row (nothing is written while writing it)."""
    from mnist.service import save_reading

    outcome = save_reading(resources.get_store(), reading, png, filename=None, latency_ms=latency_ms)
    if outcome.saved:
        st.session_state["number_saved"] = {"digest": digest, "id": outcome.record_id}
    else:
        resources.forget_database_status()
        st.session_state["draw_save_error"] = outcome.warning or "Not saved: DATABASE_URL is not a valid URL."


@st.fragment
def number_drawing() -> None:
    """The wide canvas and its reading rerun alone on each stroke, like the digit canvas."""
    result = canvas("number_canvas", NUMBER_CANVAS, st.session_state.get("number_stroke_width", NUMBER_STROKE))
    tools, pen = st.columns([2, 1])
    tools.caption("Point at the canvas for its toolbar: undo, redo, and the bin clears it. Leave a gap between digits.")
    pen.slider("Stroke width", min_value=8, max_value=40, value=NUMBER_STROKE, step=1, key="number_stroke_width")

    png = result.image_bytes
    strokes = (result.json_data or {}).get("objects") or []
    if png is None or not strokes:
        st.info(EMPTY_NUMBER, icon=":material/draw:")
        return
    from mnist.errors import InvalidImage, NoDigitFound, TooManyDigits

    try:
        digest, reading, latency_ms, overlay = live_reading(png)
    except NoDigitFound:
        st.info("The canvas is empty: " + EMPTY_NUMBER, icon=":material/draw:")
        return
    except TooManyDigits as exc:
        st.warning(f"Too many digits: {exc}.", icon=":material/warning:")
        return
    except InvalidImage as exc:
        st.error(f"Could not read the drawing: {exc}")
        return
    except FileNotFoundError:
        st.error("No model weights found (weights/mnist_cnn.pt), so nothing can be read.")
        return
    numbers.reading_view(reading, overlay)

    saved = st.session_state.get("number_saved")
    error = st.session_state.pop("draw_save_error", None)
    if saved and saved["digest"] == digest:
        st.success(f"Saved to the history as #{saved['id']}.", icon=":material/check:")
    else:
        st.button(
            "Save to history",
            type="primary",
            icon=":material/save:",
            key="save_number",
            on_click=save_number,
            args=(png, digest, reading, latency_ms),
        )
    if error:
        st.warning(error, icon=":material/cloud_off:")


views.page_start()
number_mode = st.session_state.get("draw_mode") == "Number"
st.title("Draw a number" if number_mode else "Draw a digit")
st.radio("Read", MODES, horizontal=True, key="draw_mode", label_visibility="collapsed")
if number_mode:
    number_drawing()
else:
    drawing()
