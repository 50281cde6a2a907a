"""The engine's process-wide things as the pages use them: the predictor and the history store.

Both are cached once per process by the engine itself (mnist.predict.get_predictor,
mnist.store.shared_provider), which the API served beside the dashboard shares: no second cache here.
`mnist.predict` is imported inside get_predictor: it loads torch (about two seconds), and the Draw
page should paint its canvas before that happens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mnist.config import get_settings
from mnist.store import Store, StoreProvider, shared_provider

if TYPE_CHECKING:
    from mnist.predict import Predictor


def get_predictor() -> Predictor:
    """The loaded model (raises FileNotFoundError when the weights are missing; tried again next time)."""
    from mnist.predict import get_predictor as load

    return load()


def provider() -> StoreProvider:
    """The provider for DATABASE_URL, read now so tests and restarts can change it."""
    return shared_provider(get_settings().database_url)


def get_store() -> Store | None:
    """The history store for DATABASE_URL, or None when that URL is unusable (a message is logged)."""
    return provider().store()


def database_ready() -> bool:
    """True when the database answers and its schema is up to date (migrating it the first time)."""
    return provider().ready()


def forget_database_status() -> None:
    """Ask the database again on the next check (after a save failed, say)."""
    provider().forget()
