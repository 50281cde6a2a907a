"""Draw: one canvas for a digit or a whole number; the engine decides which it is and reads it as it is drawn.

Nothing is saved while drawing: Save keeps the reading in the history (ui/saving.py: the same drawing
saved twice is one row), and a saved reading can then be confirmed or corrected right here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import streamlit as st

from mnist.errors import InvalidImage, NoDigitFound, RecordNotFound, StoreUnavailable, TooManyDigits
from mnist.results import NumberReading, Prediction
from ui import canvas, numbers, resources, saving, views

EMPTY = (
    "Draw a digit, or a number with a small gap between its digits. "
    "It is read as soon as you lift your finger or the mouse."
)


@dataclass(frozen=True)
class Live:
    """What the drawing was read as, computed once per distinct drawing and reused on other reruns."""

    digest: str
    result: Prediction | NumberReading
    latency_ms: float
    overlay: bytes | None = None  # a number's boxes drawn over the drawing


def live(png: bytes) -> Live:
    """The drawing read (torch loads here, after the canvas has painted), from Session State when read before."""
    from mnist.service import read

    digest = saving.digest(png)
    cached = st.session_state.get("draw_live")
    if cached and cached.digest == digest:
        return cached
    started = time.perf_counter()
    result = read(png)
    latency_ms = (time.perf_counter() - started) * 1000
    overlay = numbers.overlay_png(png, result) if isinstance(result, NumberReading) else None
    cached = Live(digest, result, latency_ms, overlay)
    st.session_state["draw_live"] = cached
    return cached


def save(png: bytes, reading: Live) -> None:
    """Keep the drawing (nothing is written while drawing, only here)."""
    outcome = saving.save(reading.result, png, source="draw", filename=None, latency_ms=reading.latency_ms)
    if not outcome.saved:
        st.session_state["draw_save_error"] = outcome.warning


def set_label(record_id: int, label: int | str | None) -> None:
    """Record what the drawing really was: a digit, or a number's text."""
    store = resources.get_store()
    if store is None:
        st.session_state["draw_save_error"] = "History is off: DATABASE_URL is not a valid URL."
        return
    try:
        store.set_label(record_id, label)
    except (StoreUnavailable, RecordNotFound, ValueError) as exc:
        st.session_state["draw_save_error"] = f"Could not store the label: {exc}"
        return
    st.session_state.setdefault("draw_labels", {})[record_id] = str(label)


def choose_digit(record_id: int, key: str) -> None:
    """The person picked the true digit from the pills."""
    if st.session_state.get(key) is not None:
        set_label(record_id, st.session_state[key])


def type_number(record_id: int, key: str) -> None:
    """The person typed the true number."""
    typed = (st.session_state.get(key) or "").strip()
    if not typed.isascii() or not typed.isdigit():
        st.session_state["draw_save_error"] = "Type the number with the digits 0-9 only."
        return
    set_label(record_id, typed)


def feedback(record_id: int, result: Prediction | NumberReading) -> None:
    """After saving: "Was this right?" -> confirm, or give the true digit or number."""
    from mnist.service import text_of

    read_as = text_of(result)
    label = st.session_state.get("draw_labels", {}).get(record_id)
    if label is not None:
        verb = "Confirmed" if label == read_as else "Corrected"
        st.success(f"{verb}: #{record_id} is a **{label}**.", icon=":material/check:")
        return
    st.success(f"Saved to the history as #{record_id}. Was this right?", icon=":material/check:")
    is_number = isinstance(result, NumberReading)
    st.button(
        f"Yes, it's {read_as}" if is_number else f"Yes, it's a {read_as}",
        key=f"confirm_{record_id}",
        icon=":material/thumb_up:",
        on_click=set_label,
        args=(record_id, read_as if is_number else result.digit),
    )
    key = f"truth_{record_id}"
    if is_number:
        st.text_input(
            "No, it was",
            key=key,
            max_chars=64,
            placeholder="Type the number, e.g. 4096",
            on_change=type_number,
            args=(record_id, key),
        )
    else:
        options = [d for d in range(10) if d != result.digit]
        st.pills("No, it was a", options, key=key, on_change=choose_digit, args=(record_id, key))


def headline(reading: Live) -> None:
    """The digit or the number, large, with what the verdict says."""
    if isinstance(reading.result, NumberReading):
        numbers.number_headline(reading.result)
    else:
        views.digit_headline(reading.result)


def details(reading: Live) -> None:
    """Probabilities and what the model saw, below Save (a phone shows them after a scroll)."""
    if isinstance(reading.result, NumberReading):
        numbers.number_details(reading.result, reading.overlay)
    else:
        views.digit_details(reading.result)


@st.fragment
def drawing() -> None:
    """Canvas and reading rerun alone on each stroke, without the rest of the app."""
    canvas_col, reading_col = st.columns([3, 2], gap="large")
    with canvas_col:
        drawn = canvas.draw("draw")
    with reading_col:
        if not drawn.objects:
            st.info(EMPTY, icon=":material/draw:")
            return
        if drawn.png is None:
            st.caption("Reading…")
            return
        try:
            reading = live(drawn.png)
        except NoDigitFound:
            st.info("No ink found yet. " + EMPTY, icon=":material/draw:")
            return
        except TooManyDigits as exc:
            st.warning(f"Too many digits: {exc}.", icon=":material/warning:")
            return
        except InvalidImage as exc:
            st.error(f"Could not read the drawing: {exc}")
            return
        except FileNotFoundError:
            st.error("No model weights found (weights/), so nothing can be read.")
            return
        headline(reading)
        record_id = saving.saved_id(drawn.png)
        error = st.session_state.pop("draw_save_error", None)
        if record_id is not None:
            feedback(record_id, reading.result)
        else:
            st.button(
                "Save to history",
                type="primary",
                icon=":material/save:",
                key="save",
                on_click=save,
                args=(drawn.png, reading),
                help=saving.RULE,
            )
        if error:
            st.warning(error, icon=":material/cloud_off:")
        details(reading)


views.page_start()
canvas.arrive("draw")
st.title("Draw a digit or a number")
drawing()
