"""The dashboard's one saving rule, for Draw and Upload alike.

Reading never saves: a reading is kept only when the person presses Save (Save all for a batch).
Saving the same content again from the same session returns the row saved before instead of adding
one (the store's Idempotency-Key, made of this session and the content's digest), so reruns, toggles,
a re-upload or a second click never make a second row.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import TYPE_CHECKING

import streamlit as st

from ui import resources

if TYPE_CHECKING:
    from mnist.results import NumberOutcome, Outcome
    from mnist.service import Reading

RULE = "Nothing is kept until you press Save; saving the same picture again keeps one row."
_SESSION = "saving_session"
_SAVED = "saved_rows"  # content digest -> history id, what this session saved


def digest(content: bytes) -> str:
    """What identifies a picture: the SHA-256 of its bytes."""
    return hashlib.sha256(content).hexdigest()


def saved_id(content: bytes) -> int | None:
    """The history id this session saved this picture as, if it did."""
    return st.session_state.get(_SAVED, {}).get(digest(content))


def save(
    reading: Reading, content: bytes, *, source: str, filename: str | None, latency_ms: float
) -> Outcome | NumberOutcome:
    """Keep one reading of `content` (at most one row per content and session); a failure is a warning."""
    from mnist.service import Idempotency, save_read

    session = st.session_state.setdefault(_SESSION, uuid.uuid4().hex)
    key = Idempotency.of(f"{session}:{digest(content)}", "dashboard", content)
    outcome = save_read(
        resources.provider(),
        reading,
        content,
        source=source,
        filename=filename,
        latency_ms=latency_ms,
        idempotency=key,
    )
    if outcome.saved:
        st.session_state.setdefault(_SAVED, {})[digest(content)] = outcome.record_id
    else:
        resources.forget_database_status()
    return outcome
