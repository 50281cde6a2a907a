"""The History page's parts: filter widgets, the table of records, per-row actions and the charts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

import pandas as pd
import streamlit as st

from mnist.errors import RecordNotFound, StoreUnavailable
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


def filters() -> Filters:
    """Filter widgets -> mnist.store.Filters. Dates are UTC days, both ends included."""
    digit_col, source_col, label_col, verdict_col, date_col, conf_col = st.columns([1, 1, 1, 1.1, 1.4, 1.6])
    digit = digit_col.selectbox("Predicted digit", [None, *range(10)], format_func=_any, key="f_digit")
    source = source_col.selectbox("Source", [None, *SOURCES], format_func=_any, key="f_source")
    labelled = label_col.selectbox("Label", list(LABELLED), key="f_labelled")
    verdict = verdict_col.selectbox(
        "Verdict",
        [None, *VERDICT_NAMES],
        format_func=lambda v: "Any" if v is None else VERDICT_NAMES[v],
        key="f_verdict",
    )
    days = date_col.date_input("Dates (UTC)", value=(), format="YYYY-MM-DD", key="f_dates")
    low, high = conf_col.slider("Confidence", 0.0, 1.0, (0.0, 1.0), step=0.05, format="%.2f", key="f_conf")
    since, until = _day_range(days)
    return Filters(
        digit=digit,
        source=source,
        labelled=LABELLED[labelled],
        since=since,
        until=until,
        min_confidence=low if low > 0 else None,
        max_confidence=high if high < 1 else None,
        verdict=verdict,
    )


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


def prediction_text(record: Record) -> str:
    """What the model read: the whole number for number rows, else the digit."""
    return record.predicted_text or str(record.digit)


def frame(records: list[Record]) -> pd.DataFrame:
    """Records -> the table's rows; every text cell is rendered as plain text by the grid."""
    return pd.DataFrame(
        {
            "id": [r.id for r in records],
            "original": [views.data_url(r.original) for r in records],
            "input": [views.input_thumbnail(r.model_input) for r in records],
            "prediction": [prediction_text(r) for r in records],
            "confidence": [r.confidence for r in records],
            "label": [r.label for r in records],
            "source": [r.source for r in records],
            "time": [r.created_at.replace(tzinfo=None) for r in records],
            "filename": [r.filename or "" for r in records],
            "verdict": [VERDICT_NAMES.get(r.verdict, r.verdict) for r in records],
        }
    )


COLUMNS = {
    "id": st.column_config.NumberColumn("#", format="%d", width=60),
    "original": st.column_config.ImageColumn("Original", width="small"),
    "input": st.column_config.ImageColumn("Model input", width="small"),
    "prediction": st.column_config.TextColumn("Prediction"),
    "confidence": st.column_config.ProgressColumn("Confidence", format="percent", min_value=0, max_value=1),
    "label": st.column_config.NumberColumn("Label", format="%d"),
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
    """Store the picked true digit (deselecting clears the label)."""
    _act(lambda: store.set_label(record_id, st.session_state.get(key)), f"Label of #{record_id} updated.")


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
    except (StoreUnavailable, RecordNotFound) as exc:
        st.session_state["history_message"] = ("error", str(exc))
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
            views.model_input(record.model_input, caption="Model input")
        with act:
            st.markdown(
                f"**#{record.id}** · predicted **{views.plain(prediction_text(record))}** at {record.confidence:.1%}"
                f" · {record.source} · {record.created_at:%Y-%m-%d %H:%M:%S} UTC"
                + (f" · {views.plain(record.filename)}" if record.filename else "")
            )
            if record.predicted_text:
                st.caption("A whole number: its model input, digit and label are those of its least certain digit.")
            if not auth.allowed():
                auth.unlock_form()
                return
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


def message() -> None:
    """The outcome of the last relabel or delete, shown once."""
    kind, text = st.session_state.pop("history_message", (None, None))
    if kind == "success":
        st.success(text, icon=":material/check:")
    elif kind == "error":
        st.error(text, icon=":material/error:")


def stats_charts(stats: Stats, histogram: list[int]) -> None:
    """Counts per digit and confidence, then accuracy and confusion over the labelled rows."""
    left, right = st.columns(2)
    left.altair_chart(charts.per_digit(stats.per_digit), width="stretch")
    right.altair_chart(charts.confidence_histogram(histogram), width="stretch")
    if not stats.labelled:
        st.info("No labelled rows yet: confirm or correct predictions to see accuracy and a confusion matrix.")
        return
    metric_col, matrix_col = st.columns([1, 2])
    metric_col.metric("Accuracy on labelled rows", f"{stats.accuracy:.1%}", border=True)
    metric_col.metric("Labelled rows", f"{stats.labelled:,}", border=True)
    metric_col.metric("Correct", f"{stats.correct:,}", border=True)
    matrix_col.altair_chart(
        charts.confusion(stats.confusion, title="Labelled rows: true vs predicted"), width="stretch"
    )
