"""The model registry's rules, and every app process serving the registry's active version.

Versions live in the history database (mnist.store's `models` table), so every process behind the proxy
reads one registry. The shipped weights are version zero: registered on first use, active until another
version is, and always there to roll back to. A fine-tuned version's first activation must pass its gate
(mnist.finetune measured it against its parent when it was made) unless forced, which is logged and noted
on the version; going back to a version that has served before, or to the shipped one, is never gated.

Each app process follows the registry: ActiveModelWatcher asks for the active version's name every
POLL_SECONDS on a thread of its own (one indexed row) and swaps the process's predictor when it changes,
so the prediction path never queries the database and every process serves a new version within
POLL_SECONDS plus the time to load it (~0.1 s). The processes of one `make run` (its API workers) are told
at once when one of them activates a version (on_activation, look_again).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from mnist import logs, metrics
from mnist.config import MODEL_CARD_PATH, ROOT, WEIGHTS_PATH
from mnist.errors import ActivationRefused, EngineError, ModelNotFound, ModelNotReady
from mnist.predict import (
    Predictor,
    get_predictor,
    get_shipped_predictor,
    load_once,
    model_version_of,
    read_weights,
    serve,
)
from mnist.store import SERVABLE, ModelVersion, Store, StoreProvider

POLL_SECONDS = 3.0
log = logging.getLogger(__name__)
_serving_lock = threading.Lock()  # one check-and-swap at a time: a stale read never replaces a newer version
# Called after this process activated a version: the other processes of this server (mnist.api.workers) are told
# to look again at once rather than at their next poll.
_activation_listeners: list[Callable[[], None]] = []
_watchers: set[ActiveModelWatcher] = set()


def on_activation(listener: Callable[[], None]) -> None:
    """Call `listener` (on the activating thread; it must not block) each time this process activates a version."""
    _activation_listeners.append(listener)


def look_again() -> None:
    """Have this process's watchers check the registry now: another process of this server activated a version."""
    for watcher in list(_watchers):
        watcher.wake()


_shipped_version = load_once(lambda: model_version_of(WEIGHTS_PATH))


def shipped_model(store: Store) -> ModelVersion:
    """Version zero, the shipped weights: registered unless they are (active when no version is)."""
    version = _shipped_version()
    try:
        return store.model(version)
    except ModelNotFound:
        pass
    recipe = {"kind": "shipped", "weights": str(WEIGHTS_PATH.relative_to(ROOT)), "card": "weights/model_card.json"}
    return store.add_shipped_model(version, WEIGHTS_PATH.read_bytes(), recipe=recipe, metrics=_card_metrics(version))


def _card_metrics(version: str) -> dict | None:
    """The shipped weights' MNIST test figures from their model card (None when the card is for other weights)."""
    try:
        card = json.loads(MODEL_CARD_PATH.read_text())
    except (OSError, ValueError):
        return None
    if card.get("model_version") != version or "test" not in card:
        return None
    return {"mnist": {**card["test"], "set": "test"}}


def list_models(store: Store) -> list[ModelVersion]:
    """Every version, newest first, the shipped one among them."""
    shipped_model(store)
    return store.models()


def get_model(store: Store, version: str) -> ModelVersion:
    """One version (ModelNotFound when there is none)."""
    shipped_model(store)
    return store.model(version)


def activate(store: Store, version: str, *, force: bool = False) -> ModelVersion:
    """Make `version` the one every app process serves (this one at once, the others within POLL_SECONDS).

    A fine-tuned version that has never served must have passed its gate: otherwise ActivationRefused,
    whose message gives the gate's reasons, unless `force` (logged, and noted on the version as forced_at).
    ModelNotReady for a version still training or failed; an active version stays as it is.
    """
    shipped_model(store)
    model = store.model(version)
    if model.status == "active":
        return model
    if model.status not in SERVABLE:
        raise ModelNotReady(f"version {version} is {model.status}: only a trained version can be served")
    gate = model.gate or {}
    gated = model.status == "ready" and not model.is_shipped  # a first activation; a rollback is never gated
    refused = gated and not gate.get("passed", False)
    note = None
    if refused and not force:
        reasons = "; ".join(gate.get("reasons") or ["it has no gate result"])
        raise ActivationRefused(f"the gate refused version {version}: {reasons} (force it to activate anyway)")
    if refused:
        logs.event(log, "model_activation_forced", level=logging.WARNING, version=version, reasons=gate.get("reasons"))
        note = {**gate, "forced_at": datetime.now(UTC).isoformat(timespec="seconds")}
    activated = store.activate_model(version, gate=note)
    logs.event(log, "model_activated", version=version, parent=model.parent, forced=note is not None)
    serve_active(store)
    for listener in _activation_listeners:
        listener()
    return activated


def roll_back(store: Store) -> ModelVersion:
    """Serve the shipped weights again (version zero), whatever is active: never gated."""
    return activate(store, shipped_model(store).version)


def serve_active(store: Store) -> str:
    """Swap this process's predictor for the registry's active version if it serves another; -> the version it
    serves. The shipped weights come from their file; any other version's from the database."""
    with _serving_lock:
        active = store.active_model()
        if active is None:  # a new database: the shipped weights become version zero, active
            shipped_model(store)
            active = store.active_model()
        current = get_predictor()
        if active is None or active == current.model_version:
            return current.model_version
        shipped = get_shipped_predictor()
        if active == shipped.model_version:
            predictor = shipped
        else:
            predictor = Predictor(state=read_weights(store.model_weights(active)), version=active)
        serve(predictor)
    metrics.MODEL.info({"model_version": active, "reader_version": _reader_version()})
    logs.event(log, "model_served", version=active, previous=current.model_version)
    return active


def _reader_version() -> str:
    from mnist.reader import get_reader  # the number reader is loaded by then (warm_up)

    return get_reader().version


class ActiveModelWatcher:
    """Keeps this process serving the registry's active version: one check every `every` seconds, on a thread
    of its own, while the database answers (a failed check is logged once and tried again at the next)."""

    def __init__(self, provider: StoreProvider, every: float = POLL_SECONDS) -> None:
        self.provider = provider
        self.every = every
        self._stop = threading.Event()
        self._woken = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_error: str | None = None

    def start(self) -> ActiveModelWatcher:
        """Start watching (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mnist-model-watcher", daemon=True)
            self._thread.start()
            _watchers.add(self)
        return self

    def wake(self) -> None:
        """Check now instead of at the next poll."""
        self._woken.set()

    def stop(self) -> None:
        """Stop watching; a check under way finishes first."""
        _watchers.discard(self)
        self._stop.set()
        self._woken.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            self._woken.wait(self.every)
            self._woken.clear()
            if self._stop.is_set():
                return
            self.check()

    def check(self) -> None:
        """One look at the registry (nothing while the database is down or not migrated yet)."""
        store = self.provider.get_or_none(wait=0)
        if store is None:
            return
        try:
            serve_active(store)
        except (EngineError, OSError, RuntimeError) as exc:  # database down, weights missing or not fitting
            message = f"{type(exc).__name__}: {exc}"
            if message != self._last_error:
                logs.event(log, "model_not_served", level=logging.WARNING, detail=message)
            self._last_error = message
        else:
            self._last_error = None
