"""Heavy things built once per process: the predictor and the history store.

`mnist` is imported inside the functions, not at the top: importing it loads torch
(about two seconds), and the Draw page should paint its canvas before that happens.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import streamlit as st

if TYPE_CHECKING:
    from mnist.predict import Predictor
    from mnist.store import Store

log = logging.getLogger(__name__)

# How long a "reachable / not reachable" answer is trusted. The Draw page reruns on every
# stroke; re-asking a database that is down would add its connect timeout to each one.
STATUS_TTL_SECONDS = 10


@st.cache_resource(show_spinner=False)
def get_predictor() -> Predictor:
    """The loaded model (raises FileNotFoundError when the weights are missing; not cached then)."""
    from mnist.predict import get_predictor as load

    return load()


def database_url() -> str:
    """The configured DATABASE_URL, read now so tests and restarts can change it."""
    from mnist.config import get_settings

    return get_settings().database_url


@st.cache_resource(show_spinner=False)
def _open_store(url: str) -> Store:
    from mnist.store import shared_store  # the API served beside the dashboard uses the same one

    return shared_store(url)


@st.cache_resource(show_spinner=False)
def _migrate(url: str) -> bool:
    # Raising keeps this uncached, so a database that was down at start is migrated once it is back.
    _open_store(url).migrate()
    return True


@st.cache_data(ttl=STATUS_TTL_SECONDS, show_spinner=False)
def _reachable(url: str) -> bool:
    return _open_store(url).ping()


def get_store() -> Store | None:
    """The history store for DATABASE_URL, or None when that URL is unusable (a message is logged)."""
    try:
        return _open_store(database_url())
    except ValueError as exc:  # a malformed DATABASE_URL: the app still predicts
        log.warning("history disabled: %s", exc)
        return None


def database_ready() -> bool:
    """True when the database answers and its schema is up to date (migrating it the first time)."""
    from mnist.errors import StoreUnavailable

    store = get_store()
    if store is None:
        return False
    url = database_url()
    if not _reachable(url):
        return False
    try:
        return _migrate(url)
    except StoreUnavailable as exc:
        log.warning("could not migrate the history database: %s", exc)
        return False


def forget_database_status() -> None:
    """Ask the database again on the next check (after a save failed, say)."""
    _reachable.clear()
