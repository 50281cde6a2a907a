"""Who may change the history from the dashboard: whoever unlocks it with MNIST_API_TOKEN, when that is set.

The API asks for the token on PATCH and DELETE; the History page asks for the same secret before it
relabels or deletes, once per browser session. Without a token configured the history is open to
whoever reaches the page, exactly as the API is. A person's identity is another matter: Streamlit's
st.login (OIDC) is the way to that (README, "Security").
"""

from __future__ import annotations

import hashlib
import hmac
import time

import streamlit as st

from mnist.config import get_settings

_UNLOCKED = "history_unlocked"  # holds a digest of the token it was unlocked with, never the token
WRONG_SECRET_PAUSE = 1.0  # seconds: guessing the token through the page is slow


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def required() -> bool:
    """True when changing the history needs the token (MNIST_API_TOKEN is set)."""
    return get_settings().api_token is not None


def allowed() -> bool:
    """May this session relabel and delete? (Unlocked with the current token, or no token is configured.)"""
    token = get_settings().api_token
    if token is None:
        return True
    unlocked = st.session_state.get(_UNLOCKED)
    return unlocked is not None and hmac.compare_digest(unlocked, _digest(token))


def _try_unlock() -> None:
    given = st.session_state.get("unlock_secret") or ""
    token = get_settings().api_token
    if token is not None and hmac.compare_digest(given.encode(), token.encode()):
        st.session_state[_UNLOCKED] = _digest(token)
        st.session_state["history_message"] = ("success", "Unlocked: you can relabel and delete rows.")
    else:
        time.sleep(WRONG_SECRET_PAUSE)
        st.session_state["history_message"] = ("error", "That is not the token: the history stays read-only.")


def lock() -> None:
    """Forget the unlock (the session is read-only again)."""
    st.session_state.pop(_UNLOCKED, None)


def unlock_form() -> None:
    """Why relabel and delete are not offered, and where to enter the token."""
    st.info(
        "Relabelling, deleting and changing the model are locked: this server requires the API token "
        "(MNIST_API_TOKEN). Enter it to unlock them for this session; until then the history is read-only.",
        icon=":material/lock:",
    )
    with st.form("unlock", clear_on_submit=True, border=False):
        st.text_input("API token", type="password", key="unlock_secret", autocomplete="off")
        st.form_submit_button("Unlock", icon=":material/lock_open:", on_click=_try_unlock)


def lock_button() -> None:
    """Once unlocked with the token: a button that makes this session read-only again."""
    if required() and allowed():
        st.button("Lock editing", key="lock_history", icon=":material/lock:", on_click=lock)
