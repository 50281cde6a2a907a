"""The status block every page shows in the sidebar: which model, which database, and whether it answers."""

from __future__ import annotations

import streamlit as st

from ui import resources
from ui.views import plain

NO_WEIGHTS = "No model weights found (weights/mnist_cnn.pt). Run `make train` or restore the file."
DATABASE_DOWN = "The history database is not reachable. Predictions still work; they just are not saved."


def model_version() -> str | None:
    """The loaded model's version, or None when there are no weights."""
    try:
        return resources.get_predictor().model_version
    except FileNotFoundError:
        return None


def render() -> None:
    """Model version, database in use (never a password) and its reachability."""
    st.caption("Model")
    version = model_version()
    if version is None:
        st.error(NO_WEIGHTS, icon=":material/error:")
    else:
        st.markdown(f":material/neurology: `{version}`")

    st.caption("History database")
    store = resources.get_store()
    if store is None:
        st.error("DATABASE_URL is not a valid database URL: history is off.", icon=":material/error:")
        return
    st.markdown(f":material/database: {plain(store.describe())}")
    if resources.database_ready():
        st.markdown(":green[:material/check_circle: reachable]")
    else:
        st.warning(DATABASE_DOWN, icon=":material/cloud_off:")
