"""Uploaded files and camera photos -> readings (a digit or a whole number, as the engine decides), saved on request.

Files are read as soon as they arrive and kept by content in Session State, so a rerun, a page switch
or the same file uploaded again is never read twice; nothing is saved until Save (ui/saving.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd
import streamlit as st

from mnist.errors import EngineError, ImageTooLarge, InvalidImage, NoDigitFound, TooManyDigits, UnsupportedImageType
from mnist.preprocess import thumbnail_png
from mnist.results import NumberReading, Prediction
from ui import numbers, saving, views

# Files per forward pass. A batch this size takes well under a second, so the progress bar
# moves at a readable pace while most uploads (a few files) still go through in one pass.
BATCH = 32
THUMB_SIDE = 96
_READ = "upload_readings"  # content digest -> Row: what each picture was read as, this session
_NOT_SAVED = "upload_not_saved"  # content digest -> why its last save failed
KINDS = {"digit": "Digit", "unsure": "Digit (unsure)", "not_a_digit": "Not a digit", "several_digits": "Digits"}


@dataclass(frozen=True)
class Row:
    """What one uploaded picture was read as."""

    digest: str
    name: str
    content: bytes  # the file as uploaded: what Save keeps
    picture: bytes | None  # a small PNG of it (a number's with each digit's box); None when it could not be decoded
    reading: Prediction | NumberReading | None
    error: str | None  # why there is no reading
    latency_ms: float

    @property
    def text(self) -> str | None:
        """What was read: "7" or "4096"."""
        from mnist.service import text_of

        return None if self.reading is None else text_of(self.reading)

    @property
    def kind(self) -> str | None:
        """Digit, unsure digit, not a digit, or number."""
        if isinstance(self.reading, NumberReading):
            return "Number" if self.reading.confidence >= views.LOW_CONFIDENCE else "Number (unsure)"
        return None if self.reading is None else KINDS.get(self.reading.verdict, self.reading.verdict)

    @property
    def confidence(self) -> float | None:
        return None if self.reading is None else self.reading.confidence


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


def _picture(data: bytes, reading: Prediction | NumberReading | EngineError) -> bytes | None:
    if isinstance(reading, NumberReading):
        return numbers.overlay_png(data, reading, max_side=3 * THUMB_SIDE)
    try:
        return thumbnail_png(data, max_side=THUMB_SIDE)
    except InvalidImage:
        return None


def _read(files: list[Any]) -> list[Row]:
    """One forward pass per BATCH files; the engine enforces the size and pixel limits on each."""
    from mnist.service import read_many  # loads torch: after the page has painted

    rows: list[Row] = []
    bar = st.progress(0.0, text=f"Reading {len(files)} image(s)…")
    for start in range(0, len(files), BATCH):
        chunk = [(f.name, f.getvalue()) for f in files[start : start + BATCH]]
        started = time.perf_counter()
        readings = read_many([data for _, data in chunk])
        latency_ms = (time.perf_counter() - started) * 1000 / len(chunk)
        for (name, data), reading in zip(chunk, readings, strict=True):
            error = problem(reading) if isinstance(reading, EngineError) else None
            kept = None if isinstance(reading, EngineError) else reading
            rows.append(Row(saving.digest(data), name, data, _picture(data, reading), kept, error, latency_ms))
        done = min(start + BATCH, len(files))
        bar.progress(done / len(files), text=f"Read {done} of {len(files)} image(s)")
    bar.empty()
    return rows


def read(files: list[Any]) -> list[Row]:
    """Rows for these files in their order; only pictures not read before in this session are read."""
    known: dict[str, Row] = st.session_state.setdefault(_READ, {})
    digests = [saving.digest(f.getvalue()) for f in files]
    new = {d: f for d, f in zip(digests, files, strict=True) if d not in known}
    for row in _read(list(new.values())) if new else []:
        known[row.digest] = row
    # The same picture under another file name: the reading stands, the name is this file's.
    return [replace(known[d], name=f.name) for d, f in zip(digests, files, strict=True)]


def unsaved(rows: list[Row]) -> list[Row]:
    """The rows with a reading that this session has not saved yet (each picture once)."""
    seen: set[str] = set()
    found = []
    for row in rows:
        if row.reading is not None and saving.saved_id(row.content) is None and row.digest not in seen:
            seen.add(row.digest)
            found.append(row)
    return found


def save_all(rows: list[Row], *, source: str, keep_names: bool = True) -> None:
    """Save every unsaved reading (one row per picture), with a progress bar; failures are shown per file."""
    todo = unsaved(rows)
    failures: dict[str, str] = st.session_state.setdefault(_NOT_SAVED, {})
    bar = st.progress(0.0, text=f"Saving {len(todo)} reading(s)…")
    for done, row in enumerate(todo, start=1):
        outcome = saving.save(
            row.reading,  # type: ignore[arg-type]
            row.content,
            source=source,
            filename=row.name if keep_names else None,
            latency_ms=row.latency_ms,
        )
        if outcome.saved:
            failures.pop(row.digest, None)
        else:
            failures[row.digest] = outcome.warning or "not saved"
        bar.progress(done / len(todo), text=f"Saved {done} of {len(todo)}")
    bar.empty()


def save_button(rows: list[Row], *, source: str, key: str, keep_names: bool = True) -> None:
    """ "Save all" for what is read and not saved yet; saying so when everything is saved."""
    todo = unsaved(rows)
    if not todo:
        if any(r.reading is not None for r in rows):
            st.caption("Every reading here is saved in the history.")
        return
    label = "Save to history" if len(todo) == 1 else f"Save all {len(todo)} readings to history"
    if st.button(label, type="primary", icon=":material/save:", key=key, help=saving.RULE):
        save_all(rows, source=source, keep_names=keep_names)
        st.rerun()  # the page again, with each row's new status and without this button


def status(row: Row) -> str:
    """One line: what was wrong with the file, saved as which row, or not saved (yet, or why)."""
    if row.error:
        return row.error
    record_id = saving.saved_id(row.content)
    if record_id is not None:
        return f"Saved as #{record_id}"
    failed = st.session_state.get(_NOT_SAVED, {}).get(row.digest)
    return f"Not saved: {failed}" if failed else "Not saved yet"


def summary(rows: list[Row]) -> None:
    """Counts (every file, refused ones included), each refusal with its reason, and a save failure."""
    read_ok = sum(r.error is None for r in rows)
    saved = sum(saving.saved_id(r.content) is not None for r in rows if r.error is None)
    failed = [r for r in rows if r.error]
    text = f"{len(rows)} file(s): {read_ok} read"
    text += f", **{len(failed)} could not be read**" if failed else ""
    st.markdown(f"{text}; {saved} saved to the history.")
    for row in failed:
        st.error(f"**{views.plain(row.name)}**: {views.plain(row.error)}", icon=":material/broken_image:")
    warning = next((status(r) for r in rows if status(r).startswith("Not saved:")), None)
    if warning:
        st.warning(warning, icon=":material/cloud_off:")


def table(rows: list[Row]) -> None:
    """All files at once: picture, model input, reading, kind, confidence, and any problem on its own row."""
    frame = pd.DataFrame(
        {
            "picture": [views.data_url(r.picture) for r in rows],
            "input": [views.input_thumbnail(r.reading.model_input) if _is_digit(r) else None for r in rows],
            "file": [r.name for r in rows],
            "reading": [r.text for r in rows],
            "kind": [r.kind for r in rows],
            "confidence": [r.confidence for r in rows],
            "status": [status(r) for r in rows],
        }
    )
    st.dataframe(
        frame,
        **views.TABLE,
        column_config={
            "picture": st.column_config.ImageColumn("Image", width="medium"),
            "input": st.column_config.ImageColumn("Model input", width="small"),
            "file": st.column_config.TextColumn("File"),
            "reading": st.column_config.TextColumn("Read as"),
            "kind": st.column_config.TextColumn("Kind"),
            "confidence": st.column_config.ProgressColumn("Confidence", format="percent", min_value=0, max_value=1),
            "status": st.column_config.TextColumn("Status", width="large"),
        },
        key="upload_table",
    )


def _is_digit(row: Row) -> bool:
    return isinstance(row.reading, Prediction)


def details(row: Row) -> None:
    """One file in full: its picture next to the reading, or its problem."""
    st.markdown(f"**{views.plain(row.name)}**")
    if row.error:
        st.error(row.error, icon=":material/broken_image:")
        return
    st.caption(status(row))
    if isinstance(row.reading, NumberReading):
        numbers.reading_view(row.reading, numbers.overlay_png(row.content, row.reading))
        return
    picture_col, reading_col = st.columns([1, 2], gap="large")
    with picture_col:
        if row.picture:
            st.image(row.picture, caption="Uploaded image")
    with reading_col:
        views.prediction(row.reading)  # type: ignore[arg-type]
