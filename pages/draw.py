"""Draw: the model reads the digit (or a whole number) live as it is drawn; Save keeps it in the history.

A saved digit can then be confirmed or corrected; a number is saved as one row (source "number").
One canvas fragment serves both modes; a Mode holds what differs between them.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st
from streamlit_drawable_canvas import CanvasResult, st_canvas

from mnist.errors import InvalidImage, NoDigitFound, RecordNotFound, StoreUnavailable, TooManyDigits
from mnist.results import NumberOutcome, NumberReading, Outcome, Prediction
from mnist.store import StoreProvider
from ui import numbers, resources, views

CANVAS_SIDE = 320  # px; MNIST digits are drawn to fill about 70% of this
DEFAULT_STROKE = 22  # px at 320: after scaling to 28 px, about the 2-3 px pen of the MNIST originals
NUMBER_CANVAS = (900, 280)  # px: room for about six digits as tall as the single-digit ones
NUMBER_STROKE = 18  # px: digits here are ~200 px tall instead of ~225, so a slightly thinner pen
EMPTY = "Draw a digit in the black square; the prediction appears as soon as you lift the mouse."
EMPTY_NUMBER = "Write a number (up to 12 digits) in the black strip; it is read as soon as you lift the mouse."
TOOLBAR = "Point at the canvas for its toolbar: undo, redo, and the bin clears it."


@dataclass(frozen=True)
class Live:
    """What the drawing was read as, computed once per distinct drawing and reused on other reruns."""

    digest: str
    result: Prediction | NumberReading
    latency_ms: float
    overlay: bytes | None = None  # a number's boxes drawn over the drawing


def read_digit(png: bytes) -> tuple[Prediction, None]:
    """The digit drawn (torch loads here, after the canvas has painted)."""
    from mnist.predict import predict

    return predict(png), None


def read_number(png: bytes) -> tuple[NumberReading, bytes]:
    """The number written, and its boxes drawn over the drawing."""
    from mnist.numbers import read_number as read

    reading = read(png)
    return reading, numbers.overlay_png(png, reading)


def save_digit(store: StoreProvider, png: bytes, live: Live) -> Outcome:
    """Keep the drawing as a "draw" row."""
    from mnist.service import save_prediction

    return save_prediction(store, live.result, png, source="draw", filename=None, latency_ms=live.latency_ms)


def save_number(store: StoreProvider, png: bytes, live: Live) -> NumberOutcome:
    """Keep the number as one "number" row."""
    from mnist.service import save_reading

    return save_reading(store, live.result, png, filename=None, latency_ms=live.latency_ms)


@dataclass(frozen=True)
class Mode:
    """What differs between reading one digit and a whole number; each mode keeps its own widgets and state."""

    title: str
    canvas_key: str  # a canvas of its own per mode: the component is remounted at the new size
    size: tuple[int, int]
    stroke: int
    stroke_key: str
    side_by_side: bool  # digit: canvas left, reading right; number: the wide canvas above its reading
    tip: str
    empty: str
    read: Callable[[bytes], tuple[Prediction | NumberReading, bytes | None]]
    live_key: str
    show: Callable[[Live], None]
    save: Callable[[StoreProvider, bytes, Live], Outcome | NumberOutcome]
    save_key: str
    saved_key: str
    after_save: Callable[[dict, Live], None]  # what shows once this drawing is saved
    verb: str  # what the model does to a drawing: "predicted", "read"


DIGIT = Mode(
    title="Draw a digit",
    canvas_key="canvas",
    size=(CANVAS_SIDE, CANVAS_SIDE),
    stroke=DEFAULT_STROKE,
    stroke_key="stroke_width",
    side_by_side=True,
    tip=TOOLBAR,
    empty=EMPTY,
    read=read_digit,
    live_key="draw_prediction",
    show=lambda live: views.prediction(live.result),
    save=save_digit,
    save_key="save",
    saved_key="draw_saved",
    after_save=lambda saved, live: feedback(saved, live.result.digit),
    verb="predicted",
)
NUMBER = Mode(
    title="Draw a number",
    canvas_key="number_canvas",
    size=NUMBER_CANVAS,
    stroke=NUMBER_STROKE,
    stroke_key="number_stroke_width",
    side_by_side=False,
    tip=TOOLBAR + " Leave a gap between digits.",
    empty=EMPTY_NUMBER,
    read=read_number,
    live_key="number_reading",
    show=lambda live: numbers.reading_view(live.result, live.overlay),
    save=save_number,
    save_key="save_number",
    saved_key="number_saved",
    after_save=lambda saved, _: st.success(f"Saved to the history as #{saved['id']}.", icon=":material/check:"),
    verb="read",
)
MODES = {"Digit": DIGIT, "Number": NUMBER}


def live(mode: Mode, png: bytes) -> Live:
    """The drawing read in this mode, from session state when this very drawing was read before."""
    digest = hashlib.sha256(png).hexdigest()
    cached = st.session_state.get(mode.live_key)
    if cached and cached.digest == digest:
        return cached
    started = time.perf_counter()
    result, overlay = mode.read(png)
    cached = Live(digest, result, (time.perf_counter() - started) * 1000, overlay)
    st.session_state[mode.live_key] = cached
    return cached


def save(mode: Mode, png: bytes, reading: Live) -> None:
    """Store the drawing (nothing is written while drawing, only here)."""
    outcome = mode.save(resources.provider(), png, reading)
    if outcome.saved:
        st.session_state[mode.saved_key] = {"digest": reading.digest, "id": outcome.record_id, "label": None}
    else:
        resources.forget_database_status()
        st.session_state["draw_save_error"] = outcome.warning


def set_label(record_id: int, label: int | None) -> None:
    """Record what the digit really was."""
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
    """After saving a digit: "Was this right?" -> confirm, or pick the true digit."""
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


def canvas(mode: Mode) -> CanvasResult:
    """A freehand canvas, white on black like MNIST, that sends its pixels back (return_image_data)."""
    width, height = mode.size
    return st_canvas(
        stroke_width=st.session_state.get(mode.stroke_key, mode.stroke),
        stroke_color="#FFFFFF",
        background_color="#000000",
        width=width,
        height=height,
        drawing_mode="freedraw",
        return_image_data=True,
        key=mode.canvas_key,
    )


def pen(mode: Mode) -> None:
    """The stroke width, read by the canvas on the next rerun."""
    st.slider("Stroke width", min_value=8, max_value=40, value=mode.stroke, step=1, key=mode.stroke_key)


@st.fragment
def drawing(mode: Mode) -> None:
    """Canvas and reading rerun alone on each stroke, without the rest of the app."""
    if mode.side_by_side:
        left, right = st.columns([1, 1], gap="large")
        with left:
            result = canvas(mode)
            st.caption(mode.tip)
            pen(mode)
    else:
        left = right = st.container()
        with left:
            result = canvas(mode)
            tools, width = st.columns([2, 1])
            tools.caption(mode.tip)
            with width:
                pen(mode)

    with right:
        png = result.image_bytes
        strokes = (result.json_data or {}).get("objects") or []
        if png is None or not strokes:
            st.info(mode.empty, icon=":material/draw:")
            return
        try:
            reading = live(mode, png)
        except NoDigitFound:
            st.info("The canvas is empty: " + mode.empty, icon=":material/draw:")
            return
        except TooManyDigits as exc:
            st.warning(f"Too many digits: {exc}.", icon=":material/warning:")
            return
        except InvalidImage as exc:
            st.error(f"Could not read the drawing: {exc}")
            return
        except FileNotFoundError:
            st.error(f"No model weights found (weights/mnist_cnn.pt), so nothing can be {mode.verb}.")
            return
        mode.show(reading)

        saved = st.session_state.get(mode.saved_key)
        error = st.session_state.pop("draw_save_error", None)
        if saved and saved["digest"] == reading.digest:
            mode.after_save(saved, reading)
        else:
            st.button(
                "Save to history",
                type="primary",
                icon=":material/save:",
                key=mode.save_key,
                on_click=save,
                args=(mode, png, reading),
            )
        if error:
            st.warning(error, icon=":material/cloud_off:")


views.page_start()
mode = MODES[st.session_state.get("draw_mode", "Digit")]
st.title(mode.title)
st.radio("Read", list(MODES), horizontal=True, key="draw_mode", label_visibility="collapsed")
drawing(mode)
