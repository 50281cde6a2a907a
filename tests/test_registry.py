"""The model registry on SQLite and PostgreSQL: version zero, one job at a time, heartbeats, the gate at
activation, rollback, and a process following the active version; the labelled rows a fine-tune reads."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest

from mnist import registry
from mnist.config import MODEL_CARD_PATH, WEIGHTS_PATH
from mnist.errors import ActivationRefused, ModelNotFound, ModelNotReady, TrainingInProgress
from mnist.predict import get_predictor, get_shipped_predictor, model_version_of
from mnist.store import Filters, Store, StoreProvider
from tests.support.history import fake, number_inputs
from tests.support.models import REFUSED, add_candidate, serve_shipped

SHIPPED = model_version_of(WEIGHTS_PATH)


@pytest.fixture
def store(database_url: str):
    store = Store(database_url)
    store.migrate()
    yield store
    serve_shipped()
    store.engine.dispose()


def test_the_shipped_weights_are_version_zero_registered_once_and_active(store: Store) -> None:
    first, again = registry.shipped_model(store), registry.shipped_model(store)
    assert first.version == again.version == SHIPPED and first.is_shipped and first.parent is None
    assert first.status == "active" and store.active_model() == SHIPPED
    assert [m.version for m in registry.list_models(store)] == [SHIPPED]
    assert store.model_weights(SHIPPED) == WEIGHTS_PATH.read_bytes()
    assert first.metrics["mnist"]["accuracy"] == pytest.approx(0.9958)  # the model card's test figures
    assert MODEL_CARD_PATH.exists()


def test_one_fine_tune_trains_at_a_time(store: Store) -> None:
    registry.shipped_model(store)
    store.start_model("ft-a", parent=SHIPPED, recipe={})
    with pytest.raises(TrainingInProgress, match="ft-a is training"):
        store.start_model("ft-b", parent=SHIPPED, recipe={})
    assert store.fail_model("ft-a", "stopped by the test")
    store.start_model("ft-b", parent=SHIPPED, recipe={})
    assert {m.version: m.status for m in store.models()} == {"ft-b": "training", "ft-a": "failed", SHIPPED: "active"}
    with pytest.raises(ModelNotFound):
        store.start_model("ft-c", parent="no-such-parent", recipe={})


def test_heartbeats_carry_progress_until_the_version_is_failed(store: Store) -> None:
    registry.shipped_model(store)
    store.start_model("ft-a", parent=SHIPPED, recipe={"epochs": 3})
    assert store.model_heartbeat("ft-a", 0.4, "training: step 40 of 100", worker="host:123")
    model = store.model("ft-a")
    assert (model.progress, model.stage, model.worker, model.status) == (
        0.4,
        "training: step 40 of 100",
        "host:123",
        "training",
    )
    assert store.fail_model("ft-a", "RuntimeError: out of memory")
    assert not store.model_heartbeat("ft-a", 0.5, "training")  # the job learns it should stop
    assert not store.fail_model("ft-a", "again")
    with pytest.raises(ModelNotReady):  # a failed job never becomes a ready version, let alone an active one
        store.finish_model("ft-a", weights=b"w", metrics={}, gate={}, rows_trained_on=1)
    with pytest.raises(ModelNotReady):
        store.model_weights("ft-a")
    failed = store.model("ft-a")
    assert (failed.status, failed.error, failed.stage) == ("failed", "RuntimeError: out of memory", None)
    assert store.active_model() == SHIPPED


def test_a_training_version_whose_heartbeat_stopped_reads_as_failed_and_blocks_nobody(store: Store) -> None:
    registry.shipped_model(store)
    store.STALE_TRAINING_SECONDS = 0.5  # 30 s in production
    store.start_model("ft-a", parent=SHIPPED, recipe={})
    assert store.model("ft-a").status == "training"
    time.sleep(1.0)
    model = store.model("ft-a")
    assert model.status == "failed" and "no heartbeat" in model.error
    store.start_model("ft-b", parent=SHIPPED, recipe={})  # not blocked by the dead job
    assert store.active_model() == SHIPPED


def test_activating_serves_the_version_here_at_once_retires_the_last_and_rolls_back(store: Store) -> None:
    candidate = add_candidate(store)
    assert candidate.status == "ready" and get_predictor().model_version == SHIPPED
    active = registry.activate(store, candidate.version)
    assert active.status == "active" and active.activated_at is not None
    assert store.active_model() == candidate.version
    assert get_predictor().model_version == candidate.version  # this process serves it before the call returns
    assert {m.version: m.status for m in store.models()} == {candidate.version: "active", SHIPPED: "retired"}
    assert registry.activate(store, candidate.version).status == "active"  # again: nothing changes

    zero = registry.roll_back(store)
    assert zero.version == SHIPPED and zero.status == "active"
    assert get_predictor() is get_shipped_predictor()
    assert store.model(candidate.version).status == "retired"
    assert registry.activate(store, candidate.version).status == "active"  # served before: no gate, no force


def test_the_gate_refuses_a_first_activation_unless_forced_and_forcing_is_logged(store: Store, caplog) -> None:
    candidate = add_candidate(store, passed=False)
    with pytest.raises(ActivationRefused, match="made up for this test"):
        registry.activate(store, candidate.version)
    assert store.active_model() == SHIPPED and store.model(candidate.version).status == "ready"
    assert get_predictor().model_version == SHIPPED

    with caplog.at_level(logging.WARNING, logger="mnist"):
        forced = registry.activate(store, candidate.version, force=True)
    assert forced.status == "active" and forced.gate["forced_at"] and forced.gate["reasons"] == [REFUSED]
    events = [r for r in caplog.records if r.getMessage() == "model_activation_forced"]
    assert len(events) == 1 and events[0].fields["version"] == candidate.version
    assert get_predictor().model_version == candidate.version
    registry.roll_back(store)  # the shipped version needs no gate
    assert get_predictor().model_version == SHIPPED


def test_versions_without_weights_cannot_be_served(store: Store) -> None:
    registry.shipped_model(store)
    store.start_model("ft-a", parent=SHIPPED, recipe={})
    with pytest.raises(ModelNotReady, match="training"):
        registry.activate(store, "ft-a", force=True)
    store.fail_model("ft-a", "killed")
    with pytest.raises(ModelNotReady, match="failed"):
        registry.activate(store, "ft-a", force=True)
    with pytest.raises(ModelNotFound):
        registry.activate(store, "ft-nothing")
    assert store.active_model() == SHIPPED


def test_a_process_follows_a_version_another_process_activated(database_url: str) -> None:
    store = Store(database_url)
    store.migrate()
    candidate = add_candidate(store)
    watcher = registry.ActiveModelWatcher(StoreProvider(store), every=0.2).start()
    try:
        other = Store(database_url)  # the other process's own connection: it changes the registry, not our predictor
        other.activate_model(candidate.version)
        deadline = time.monotonic() + 10
        while get_predictor().model_version != candidate.version and time.monotonic() < deadline:
            time.sleep(0.05)
        assert get_predictor().model_version == candidate.version
        other.activate_model(SHIPPED)
        while get_predictor().model_version != SHIPPED and time.monotonic() < deadline:
            time.sleep(0.05)
        assert get_predictor() is get_shipped_predictor()
        other.engine.dispose()
    finally:
        watcher.stop()
        serve_shipped()
        store.engine.dispose()


def test_labelled_inputs_are_what_the_model_saw_with_the_true_text(store: Store) -> None:
    digit = fake(4, seed=1)
    digit_id = store.save(digit, source="draw")
    store.set_label(digit_id, 9)
    store.save(fake(5, seed=2), source="draw")  # unlabelled: not read
    number_id = store.save(fake(1, seed=3), source="number", predicted_text="140", digit_inputs=number_inputs("140", 3))
    store.set_label(number_id, "149")
    old_number = store.save(fake(2, seed=4), source="number", predicted_text="22")  # no digit inputs kept
    store.set_label(old_number, "22")
    for chunk_rows in (2000, 1):
        found = {row.id: row for row in store.labelled_inputs(chunk_rows=chunk_rows)}
        assert set(found) == {digit_id, number_id, old_number}
        assert found[digit_id].label_text == "9" and np.array_equal(found[digit_id].inputs[0], digit.model_input)
        assert found[number_id].label_text == "149"
        assert np.array_equal(found[number_id].inputs, number_inputs("140", 3))
        assert found[old_number].inputs is None
    assert store.page(filters=Filters(labelled=True)).total == 3
