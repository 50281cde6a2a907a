"""Registry versions for tests that need one without training it: the shipped weights, nudged."""

from __future__ import annotations

import uuid

import torch

from mnist import registry
from mnist.config import WEIGHTS_PATH
from mnist.predict import get_shipped_predictor, read_weights, serve, weights_bytes
from mnist.store import ModelVersion, Store

REFUSED = "worse than its parent on the history holdout (made up for this test)"


def nudged_weights(shift: float) -> bytes:
    """The shipped weights with one logit's bias moved by `shift`: another version (other bytes, other readings
    near the border between 3 and 5), still a network that reads digits."""
    state = read_weights(WEIGHTS_PATH)
    state["head.6.bias"] = state["head.6.bias"].clone()
    state["head.6.bias"][3] += shift
    return weights_bytes({k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in state.items()})


def add_candidate(store: Store, *, passed: bool = True, shift: float = 0.5) -> ModelVersion:
    """A ready version, fine-tuned (so to speak) from the active one, whose gate passed or refused it."""
    registry.shipped_model(store)
    version = f"test-{uuid.uuid4().hex[:8]}"
    store.start_model(version, parent=store.active_model(), recipe={"kind": "test", "shift": shift})
    gate = {"passed": passed, "reasons": [] if passed else [REFUSED], "parent": store.active_model()}
    return store.finish_model(
        version, weights=nudged_weights(shift), metrics={"made_by": "tests"}, gate=gate, rows_trained_on=0
    )


def serve_shipped() -> None:
    """Put the shipped predictor back as this process's (a test that activated another version cleans up)."""
    serve(get_shipped_predictor())
