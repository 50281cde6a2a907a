"""Uploaded files -> predictions saved once per file, and the ways the Upload page shows them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from mnist.errors import EngineError, ImageTooLarge, InvalidImage, NoDigitFound, TooManyDigits, UnsupportedImageType
from mnist.preprocess import thumbnail_png
from mnist.results import NumberReading, Prediction
from ui import numbers, resources, views

# Files per forward pass. A batch this size takes well under a second, so the progress bar
# moves at a readable pace while most uploads (a few files) still go through in one pass.
BATCH = 32
THUMB_SIDE = 96
_STATE = "upload_rows"
_NUMBER_STATE = "upload_number_rows"  # the same file read as a number is another result


@dataclass(frozen=True)
class Row:
    """What became of one uploaded file."""

    file_id: str
    name: str
    preview: bytes | None  # small PNG of the upload, None when it could not be decoded
    prediction: Prediction | None
    error: str | None  # why there is no prediction
    record_id: int | None
    warning: str | None  # why a prediction was not saved


@dataclass(frozen=True)
class NumberRow:
    """What became of one uploaded file read as a whole number."""

    file_id: str
    name: str
    overlay: bytes | None  # the image with each digit's box drawn over it, None when it could not be read
    reading: NumberReading | None
    error: str | None  # why there is no reading
    record_id: int | None
    warning: str | None  # why the reading was not saved


def problem(exc: EngineError) -> str:
    """An engine error -> a sentence for the person who uploaded the file."""
    if isinstance(exc, ImageTooLarge):
        return f"Too large: {exc}"
    if isinstance(exc, UnsupportedImageType):
        return f"Not a supported image type: {exc}"
    if isinstance(exc, NoDigitFound):
        return "No digit found: the image looks blank."
    if isinstance(exc, TooManyDigits):
        return f"Too many digits: {exc}."
    return f"Could not read this file: {exc}"


def _preview(data: bytes) -> bytes | None:
    try:
        return thumbnail_png(data, max_side=THUMB_SIDE)
    except InvalidImage:
        return None


def _predict(files: list[Any], source: str) -> list[Row]:
    """One forward pass per BATCH files; the engine enforces the size and pixel limits on each."""
    from mnist.service import predict_many_and_save  # loads torch: after the page has painted

    store = resources.provider()
    rows: list[Row] = []
    bar = st.progress(0.0, text=f"Reading {len(files)} image(s)…")
    for start in range(0, len(files), BATCH):
        chunk = files[start : start + BATCH]
        images = [(f.name if source == "upload" else None, f.getvalue()) for f in chunk]
        outcomes = predict_many_and_save(images, source=source, store=store)
        for f, (_, data), outcome in zip(chunk, images, outcomes, strict=True):
            if isinstance(outcome, EngineError):
                rows.append(Row(f.file_id, f.name, _preview(data), None, problem(outcome), None, None))
            else:
                rows.append(
                    Row(f.file_id, f.name, _preview(data), outcome.prediction, None, outcome.record_id, outcome.warning)
                )
        done = min(start + BATCH, len(files))
        bar.progress(done / len(files), text=f"Read {done} of {len(files)} image(s)")
    bar.empty()
    if any(r.warning for r in rows):
        resources.forget_database_status()
    return rows


def _read_numbers(files: list[Any], keep_names: bool) -> list[NumberRow]:
    """Each file read as a whole number and saved as one row; a bad file fails alone."""
    from mnist.service import read_number_and_save  # loads torch: after the page has painted

    store = resources.provider()
    rows: list[NumberRow] = []
    bar = st.progress(0.0, text=f"Reading {len(files)} number(s)…")
    for done, f in enumerate(files, start=1):
        data = f.getvalue()
        try:
            outcome = read_number_and_save(data, filename=f.name if keep_names else None, store=store)
        except EngineError as exc:  # InvalidImage, NoDigitFound, TooManyDigits; a bug is not the file's fault
            rows.append(NumberRow(f.file_id, f.name, None, None, problem(exc), None, None))
        else:
            overlay = numbers.overlay_png(data, outcome.reading)
            rows.append(
                NumberRow(f.file_id, f.name, overlay, outcome.reading, None, outcome.record_id, outcome.warning)
            )
        bar.progress(done / len(files), text=f"Read {done} of {len(files)} number(s)")
    bar.empty()
    if any(r.warning for r in rows):
        resources.forget_database_status()
    return rows


def _once(files: list[Any], state: str, work: Callable[[list[Any]], list]) -> list:
    """Rows for these files in their order; only files not seen before go through `work` (which saves)."""
    seen: dict[str, Any] = st.session_state.setdefault(state, {})
    new = [f for f in files if f.file_id not in seen]
    if new:
        for row in work(new):
            seen[row.file_id] = row
    return [seen[f.file_id] for f in files]


def read(files: list[Any], *, source: str) -> list[Row]:
    """Rows for these files in their order; only files not seen before are predicted and saved."""
    return _once(files, _STATE, lambda new: _predict(new, source))


def read_numbers(files: list[Any], *, keep_names: bool = True) -> list[NumberRow]:
    """Number rows for these files in their order; only files not seen before are read and saved."""
    return _once(files, _NUMBER_STATE, lambda new: _read_numbers(new, keep_names))


def status(row: Row | NumberRow) -> str:
    """One line: saved, not saved and why, or what was wrong with the file."""
    if row.error:
        return row.error
    if row.record_id is not None:
        return f"Saved as #{row.record_id}"
    return "Not saved: " + (row.warning or "history is off")


def summary(rows: list[Row] | list[NumberRow]) -> None:
    """A line of counts and a warning when the history could not take the predictions."""
    read_ok = sum(r.error is None for r in rows)
    saved = sum(r.record_id is not None for r in rows)
    failed = len(rows) - read_ok
    text = f"{len(rows)} file(s): {read_ok} read, {saved} saved to the history"
    st.markdown(text + (f", **{failed} could not be read**." if failed else "."))
    warning = next((r.warning for r in rows if r.warning), None)
    if warning:
        st.warning(warning, icon=":material/cloud_off:")


def table(rows: list[Row]) -> None:
    """All files at once: preview, model input, prediction, confidence, and any problem on its own row."""
    frame = pd.DataFrame(
        {
            "preview": [views.data_url(r.preview) for r in rows],
            "input": [views.input_thumbnail(r.prediction.model_input) if r.prediction else None for r in rows],
            "file": [r.name for r in rows],
            "digit": [r.prediction.digit if r.prediction else None for r in rows],
            "confidence": [r.prediction.confidence if r.prediction else None for r in rows],
            "status": [status(r) for r in rows],
        }
    )
    st.dataframe(
        frame,
        **views.TABLE,
        column_config={
            "preview": st.column_config.ImageColumn("Image", width="small"),
            "input": st.column_config.ImageColumn("Model input", width="small"),
            "file": st.column_config.TextColumn("File"),
            "digit": st.column_config.NumberColumn("Prediction", format="%d"),
            "confidence": st.column_config.ProgressColumn("Confidence", format="percent", min_value=0, max_value=1),
            "status": st.column_config.TextColumn("Status", width="large"),
        },
        key="upload_table",
    )


def details(row: Row) -> None:
    """One file in full: its preview next to the prediction panel, or its problem."""
    st.markdown(f"**{views.plain(row.name)}**")
    if row.error:
        st.error(row.error, icon=":material/broken_image:")
        return
    preview_col, result_col = st.columns([1, 2], gap="large")
    with preview_col:
        if row.preview:
            st.image(row.preview, caption="Uploaded image")
        st.caption(status(row))
    with result_col:
        views.prediction(row.prediction)  # type: ignore[arg-type]


def number_table(rows: list[NumberRow]) -> None:
    """All files read as numbers: the boxes over each image, the number, its confidence, any problem."""
    frame = pd.DataFrame(
        {
            "image": [views.data_url(r.overlay) for r in rows],
            "file": [r.name for r in rows],
            "number": [r.reading.text if r.reading else None for r in rows],
            "confidence": [r.reading.confidence if r.reading else None for r in rows],
            "status": [status(r) for r in rows],
        }
    )
    st.dataframe(
        frame,
        **views.TABLE,
        column_config={
            "image": st.column_config.ImageColumn("Image", width="medium"),
            "file": st.column_config.TextColumn("File"),
            "number": st.column_config.TextColumn("Number"),
            "confidence": st.column_config.ProgressColumn("Confidence", format="percent", min_value=0, max_value=1),
            "status": st.column_config.TextColumn("Status", width="large"),
        },
        key="upload_number_table",
    )


def number_details(row: NumberRow) -> None:
    """One file read as a number, in full: the number, the boxes over the image and each digit, or its problem."""
    st.markdown(f"**{views.plain(row.name)}**")
    if row.error:
        st.error(row.error, icon=":material/broken_image:")
        return
    st.caption(status(row))
    numbers.reading_view(row.reading, row.overlay)  # type: ignore[arg-type]
