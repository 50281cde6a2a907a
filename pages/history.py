"""History: every saved prediction, newest first, 50 per page, with filters, relabel, delete, CSV and charts.

A row is a digit or a whole number; both are filtered by what they read and labelled with what they show.

Read from the database on every run (no cache), so what is shown is what is stored. Relabel and delete
wait for the API token when MNIST_API_TOKEN is set (ui/auth.py).
"""

from __future__ import annotations

import math

import streamlit as st

from mnist.errors import StoreUnavailable
from mnist.store import Filters
from ui import auth, history, resources, views

views.page_start()
st.title("History")

store = resources.get_store()
if store is None:
    st.error("History is off: DATABASE_URL is not a valid database URL.", icon=":material/error:")
elif not resources.database_ready():
    st.warning(
        f"The history database ({views.plain(store.describe())}) is not reachable, so the history cannot be shown. "
        "Drawing and uploading still predict.",
        icon=":material/cloud_off:",
    )
else:
    with st.expander("Filters", expanded=True, icon=":material/filter_list:"):
        chosen = history.filters(history.model_versions(store))
    history.message()
    auth.lock_button()
    pager = history.pager_key(chosen)
    try:
        requested = st.session_state.get(pager, 1)
        page = store.page(offset=(requested - 1) * history.PAGE_SIZE, limit=history.PAGE_SIZE, filters=chosen)
        pages = max(1, math.ceil(page.total / history.PAGE_SIZE))
        if requested > pages:  # rows were deleted meanwhile: go to the last page there is
            requested, pager = pages, history.pager_key(chosen, reset=True)
            page = store.page(offset=(requested - 1) * history.PAGE_SIZE, limit=history.PAGE_SIZE, filters=chosen)
        stats = store.stats(chosen)
        histogram = store.confidence_histogram(chosen)
    except StoreUnavailable as exc:
        resources.forget_database_status()
        st.warning(f"Could not read the history: {views.plain(exc)}", icon=":material/cloud_off:")
    else:
        first = (requested - 1) * history.PAGE_SIZE
        st.markdown(
            f"**{page.total:,}** matching row(s)"
            + (f" · showing {first + 1:,}–{first + len(page.items):,}" if page.items else "")
        )
        if not page.items:
            if page.total == 0 and chosen == Filters():
                st.info("Nothing here yet. Draw or upload a digit and it will appear here.", icon=":material/inbox:")
            else:
                st.info("No rows match these filters.", icon=":material/filter_list_off:")
        else:
            version = st.session_state.get("history_version", 0)
            selected = history.table(page.items, key=f"history_table_{hash((chosen, requested, version))}")
            pager_col, csv_col = st.columns([3, 1], vertical_alignment="center")
            with pager_col:
                st.pagination(pages, default=requested, key=pager)
            csv_col.download_button(
                "Download CSV",
                data=lambda: history.csv_text(store, chosen),
                file_name="predictions.csv",
                mime="text/csv",
                icon=":material/download:",
                on_click="ignore",
                key="download_csv",
                width="stretch",
            )
            if selected is None:
                st.caption("Select a row (the box at its left) to relabel or delete it.")
            else:
                history.actions(store, selected)
            st.subheader("Charts")
            history.stats_charts(stats, histogram)
