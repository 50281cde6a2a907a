"""The History page's parts: filter widgets, the table of records, per-row actions and the charts.

A row is a digit or a whole number: the table shows what was read as text ("7", "4096") and the label
as text of either kind; a selected number is relabelled by typing its true text, a digit by its pill.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import pandas as pd
import streamlit as st

from mnist.errors import EngineError, RecordNotFound, StoreUnavailable
from mnist.preprocess import MAX_THUMBNAIL_ASPECT, pad_to_aspect
from mnist.store import SOURCES, Filters, Record, Stats, Store
from ui import auth, charts, views

PAGE_SIZE = 50
LABELLED = {"Any": None, "Labelled": True, "Unlabelled": False}
# How the history names each verdict (mnist.results.VERDICTS).
VERDICT_NAMES = {"digit": "Digit", "unsure": "Unsure", "not_a_digit": "Not a digit", "several_digits": "Several digits"}


def _any(value: object) -> str:
    return "Any" if value is None else str(value)


def pager_key(filters: Filters, *, reset: bool = False) -> str:
    """The page switcher's key: one per set of filters (new filters start on page 1) and a new one after
    `reset` (rows vanished from under the page shown). The page itself is then never written through
    Session State, which Streamlit logs a warning with a stack trace about for a widget with a default."""
    if reset:
        st.session_state["history_pager_resets"] = st.session_state.get("history_pager_resets", 0) + 1
    return f"history_page_{hash((filters, st.session_state.get('history_pager_resets', 0)))}"


def filters(versions: list[str]) -> Filters:
    """Filter widgets -> mnist.store.Filters. Dates are UTC days, both ends included; `versions` are the model
    versions a row may have been read by (the registry's)."""
    columns = st.columns([1, 1, 1, 1, 1.1, 1.2, 1.4, 1.6])
    digit_col, text_col, source_col, label_col, verdict_col, model_col, date_col, conf_col = columns
    digit = digit_col.selectbox("Contains digit", [None, *range(10)], format_func=_any, key="f_digit")
    text = _text_filter(text_col)
    source = source_col.selectbox("Source", [None, *SOURCES], format_func=_any, key="f_source")
    labelled = label_col.selectbox("Label", list(LABELLED), key="f_labelled")
    verdict = verdict_col.selectbox(
        "Verdict",
        [None, *VERDICT_NAMES],
        format_func=lambda v: "Any" if v is None else VERDICT_NAMES[v],
        key="f_verdict",
    )
    model_version = model_col.selectbox("Model version", [None, *versions], format_func=_any, key="f_model")
    days = date_col.date_input("Dates (UTC)", value=(), format="YYYY-MM-DD", key="f_dates")
    low, high = conf_col.slider("Confidence", 0.0, 1.0, (0.0, 1.0), step=0.05, format="%.2f", key="f_conf")
    since, until = _day_range(days)
    return Filters(
        digit=digit,
        text=text,
        source=source,
        labelled=LABELLED[labelled],
        since=since,
        until=until,
        min_confidence=low if low > 0 else None,
        max_confidence=high if high < 1 else None,
        verdict=verdict,
        model_version=model_version,
    )


def model_versions(store: Store) -> list[str]:
    """The classifier's versions in the registry, newest first (none when it cannot be read now)."""
    from mnist import registry

    try:
        return [m.version for m in registry.list_models(store)]
    except EngineError:
        return []


def _text_filter(column) -> str | None:
    """The "Text contains" box: its digits, or None when empty; anything else is said so under it and left out."""
    typed = column.text_input("Text contains", key="f_text", max_chars=64, placeholder="e.g. 40").strip()
    if not typed:
        return None
    try:
        return Filters(text=typed).text  # the store's own rule: 1 to 64 digits 0-9
    except ValueError:
        column.error("Digits only (0-9): this filter is off until then.", icon=":material/error:")
        return None


def _day_range(days: object) -> tuple[datetime | None, datetime | None]:
    """A picked (start,) or (start, end) -> [start 00:00, end + 1 day) in UTC."""
    picked = [d for d in (days if isinstance(days, tuple | list) else [days]) if isinstance(d, date)]
    if not picked:
        return None, None
    start = datetime.combine(picked[0], time.min, tzinfo=UTC)
    end = datetime.combine(picked[-1], time.min, tzinfo=UTC) + timedelta(days=1) if len(picked) > 1 else None
    return start, end


def csv_text(store: Store, chosen: Filters) -> str:
    """The filtered rows as CSV, built when the person clicks Download (so it is never stale)."""
    try:
        return "".join(store.export_csv(chosen))
    except StoreUnavailable as exc:
        return f"error\n{exc}\n"


def model_inputs(record: Record) -> np.ndarray:
    """What the model saw: a number's digits side by side (at most 3:1, as the table's column holds), or one input."""
    if record.digit_inputs is None:  # a digit, or a number saved before each digit's input was kept
        return record.model_input
    return pad_to_aspect(np.hstack(list(record.digit_inputs)), MAX_THUMBNAIL_ASPECT)


def frame(records: list[Record]) -> pd.DataFrame:
    """Records -> the table's rows; every text cell is rendered as plain text by the grid."""
    return pd.DataFrame(
        {
            "id": [r.id for r in records],
            "original": [views.data_url(r.original) for r in records],
            "input": [views.input_thumbnail(model_inputs(r)) for r in records],
            "prediction": [r.text for r in records],
            "confidence": [r.confidence for r in records],
            "label": [r.label_text for r in records],
            "source": [r.source for r in records],
            "time": [r.created_at.replace(tzinfo=None) for r in records],
            "filename": [r.filename or "" for r in records],
            "verdict": [VERDICT_NAMES.get(r.verdict, r.verdict) for r in records],
        }
    )


# The grid draws an image at the row's height (64 px less 3 px above and below) and crops what is wider than
# its column, centred: a number's thumbnail at 3:1 (MAX_THUMBNAIL_ASPECT) is 174 px wide, which "medium"
# (200 px) holds whole and "small" (75 px) cut to its middle digits.
COLUMNS = {
    "id": st.column_config.NumberColumn("#", format="%d", width=60),
    "original": st.column_config.ImageColumn("Original", width="medium"),
    "input": st.column_config.ImageColumn("Model input", width="medium"),
    "prediction": st.column_config.TextColumn("Prediction"),
    "confidence": st.column_config.ProgressColumn("Confidence", format="percent", min_value=0, max_value=1),
    "label": st.column_config.TextColumn("Label"),
    "source": st.column_config.TextColumn("Source"),
    "time": st.column_config.DatetimeColumn("Time (UTC)", format="YYYY-MM-DD HH:mm:ss"),
    "filename": st.column_config.TextColumn("Filename", width="medium"),
    "verdict": st.column_config.TextColumn("Verdict"),
}


def table(records: list[Record], key: str) -> Record | None:
    """The page of records as a table; returns the row the person selected, if any."""
    event = st.dataframe(
        frame(records),
        **views.TABLE,
        column_config=COLUMNS,
        on_select="rerun",
        selection_mode="single-row",
        key=key,
    )
    rows = event.selection.rows if event is not None else []
    return records[rows[0]] if rows and rows[0] < len(records) else None


def relabel(store: Store, record_id: int, key: str) -> None:
    """Store the true digit picked or the true number typed (deselecting the digit or emptying the text clears it)."""
    label = st.session_state.get(key)
    if isinstance(label, str):
        label = label.strip() or None
    _act(lambda: store.set_label(record_id, label), f"Label of #{record_id} updated.")


def delete(store: Store, record_id: int) -> None:
    """Remove the row; the table forgets its selection, which pointed at this row."""
    _act(lambda: store.delete(record_id), f"Deleted #{record_id}.")
    st.session_state["history_version"] = st.session_state.get("history_version", 0) + 1


def _act(action: Callable[[], object], done: str) -> None:
    """Run a relabel or delete if this session may (ui.auth); what became of it is shown once by message()."""
    if not auth.allowed():  # checked here too, not only by hiding the widgets
        st.session_state["history_message"] = ("error", "The history is locked: unlock it with the API token.")
        return
    try:
        action()
    except (StoreUnavailable, RecordNotFound, ValueError) as exc:  # ValueError: a label the store refused
        st.session_state["history_message"] = ("error", views.plain(exc))  # it may quote what was typed
        return
    st.session_state["history_message"] = ("success", done)


def actions(store: Store, record: Record) -> None:
    """Relabel or delete the selected row."""
    with st.container(border=True):
        original_col, input_col, act = st.columns([1, 1, 3], gap="medium")
        with original_col:
            if record.original:
                st.image(record.original, caption="Original", width="stretch")
        with input_col:
            shown_inputs(record)
        with act:
            st.markdown(
                f"**#{record.id}** · predicted **{views.plain(record.text)}** at {record.confidence:.1%}"
                f" · {record.source} · {record.created_at:%Y-%m-%d %H:%M:%S} UTC"
                + (f" · {views.plain(record.filename)}" if record.filename else "")
            )
            if record.is_number:
                st.caption("A whole number, read digit by digit: its confidence is its least certain digit's.")
            if not auth.allowed():
                auth.unlock_form()
                return
            if record.is_number:
                number_label_form(store, record)
            else:
                key = f"relabel_{record.id}"
                st.pills(
                    "True digit (click it again to clear)",
                    list(range(10)),
                    default=record.label,
                    key=key,
                    on_change=relabel,
                    args=(store, record.id, key),
                )
            with st.popover("Delete", icon=":material/delete:"):
                st.markdown(f"Delete #{record.id} for good? This cannot be undone.")
                st.button(
                    f"Yes, delete #{record.id}",
                    type="primary",
                    key=f"delete_{record.id}",
                    on_click=delete,
                    args=(store, record.id),
                )


def shown_inputs(record: Record) -> None:
    """The 28x28 input(s) the model saw: one per digit of a number, left to right."""
    if record.digit_inputs is None:
        caption = "Model input of its least certain digit" if record.is_number else "Model input"
        views.model_input(record.model_input, caption=caption)
        return
    st.image(
        [views.pixel_grid(d, cell=4) for d in record.digit_inputs],
        caption=list(record.text),  # each input under the digit it was read as
        width=64,
    )
    st.caption("Model input of each digit")


def number_label_form(store: Store, record: Record) -> None:
    """The true number typed in full (what was read to begin with), saved as the row's label."""
    key = f"true_number_{record.id}"
    with st.form(f"number_label_{record.id}", border=False, enter_to_submit=True):
        st.text_input(
            "True number",
            value=record.label_text or record.text,
            max_chars=64,
            key=key,
            help="The digits as written, e.g. 4096 (leading zeros count). Empty it and save to clear the label.",
        )
        st.form_submit_button(
            "Save",
            key=f"save_label_{record.id}",
            icon=":material/check:",
            on_click=relabel,
            args=(store, record.id, key),
        )


def message() -> None:
    """The outcome of the last relabel or delete, shown once."""
    kind, text = st.session_state.pop("history_message", (None, None))
    if kind == "success":
        st.success(text, icon=":material/check:")
    elif kind == "error":
        st.error(text, icon=":material/error:")


def stats_charts(stats: Stats, histogram: list[int]) -> None:
    """Digits read and confidence, then accuracy and confusion over the labelled digits (mnist.store.Stats)."""
    left, right = st.columns(2)
    left.altair_chart(charts.per_digit(stats.per_digit, title="Digits read (each digit of a number)"), width="stretch")
    right.altair_chart(charts.confidence_histogram(histogram), width="stretch")
    mismatched = (
        f"{stats.mismatched_length:,} labelled number(s) have more or fewer digits than were read, so no digit of "
        "theirs can be paired with its label: they are not in the accuracy or the matrix."
    )
    if not stats.labelled:
        if stats.mismatched_length:
            st.info(mismatched)
        else:
            st.info("No labelled rows yet: confirm or correct predictions to see accuracy and a confusion matrix.")
        return
    metric_col, matrix_col = st.columns([1, 2])
    metric_col.metric("Accuracy on labelled digits", f"{stats.accuracy:.1%}", border=True)
    metric_col.metric("Labelled rows", f"{stats.labelled_rows:,}", border=True)
    metric_col.metric("Labelled digits", f"{stats.labelled:,} ({stats.correct:,} right)", border=True)
    if stats.mismatched_length:
        metric_col.caption(mismatched)
    matrix_col.altair_chart(
        charts.confusion(stats.confusion, title="Labelled digits (a number's place by place): true vs read"),
        width="stretch",
    )
