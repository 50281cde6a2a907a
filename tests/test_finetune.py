"""Learning from corrections, with real rows, the real model and real processes: a style the shipped model
reads badly is learnt from a few hundred labelled rows without losing MNIST; poisoned labels make a candidate
the gate refuses; a job killed midway leaves a failed version and nothing served; two app processes on one
PostgreSQL switch together. What the runs measured is printed (pytest -s shows it)."""

from __future__ import annotations

import http.client
import json
import logging
import os
import signal
import time
from contextlib import ExitStack, closing
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from benchmarks import api_load
from mnist import finetune, registry
from mnist.api import create_app
from mnist.config import WEIGHTS_PATH
from mnist.data import load_split
from mnist.errors import ModelNotReady
from mnist.finetune import HOLDOUT_ONE_IN, in_holdout, labelled_examples
from mnist.predict import get_shipped_predictor, model_version_of
from mnist.preprocess import candidate_views
from mnist.redraw import redraw
from mnist.service import predict_many_and_save
from mnist.store import Filters, LabelledInput, Store
from tests.number_gen import full_data_dir
from tests.support.api import ORIGINAL_REQUEST
from tests.support.models import add_candidate, serve_shipped
from tests.support.segments import segment_digits

SHIPPED = model_version_of(WEIGHTS_PATH)
JOB_SECONDS = 600  # a liveness bound for one fine-tune on a busy 2-core machine, not a speed figure
SWITCH_SECONDS = 10  # the bound: every process serves a newly active version within 10 s


@pytest.fixture
def mnist_dir(monkeypatch: pytest.MonkeyPatch) -> Path:
    """MNIST's original files (the replay needs the training split), as MNIST_DATA_DIR for this test."""
    found = full_data_dir()
    if found is None:
        pytest.skip("no MNIST_DATA_DIR and no ../shared/data/mnist: a fine-tune replays MNIST's training digits")
    monkeypatch.setenv("MNIST_DATA_DIR", str(found))
    return found


@pytest.fixture
def store(tmp_path: Path):
    # Generous deadlines: these tests measure fine-tuning, and a busy machine once took over the default 0.5 s
    # to commit a group of saves (tests/test_hung_database.py asserts the store's own bounds).
    store = Store(f"sqlite:///{tmp_path / 'history.sqlite3'}", save_timeout=10, history_timeout=10)
    store.migrate()
    yield store
    serve_shipped()
    store.engine.dispose()


@pytest.fixture
def client(store: Store, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("MNIST_API_TOKEN", raising=False)
    with TestClient(create_app(store=store)) as c:
        yield c


def save_labelled(store: Store, images: list, labels: list[int], name: str) -> list:
    """Predict and save the pictures as the app does (the shipped model reads them), then label each."""
    outcomes = []
    for start in range(0, len(images), 64):
        chunk = [(f"{name}-{i}.png", image) for i, image in enumerate(images[start : start + 64], start)]
        outcomes += predict_many_and_save(chunk, source="draw", store=store, raise_errors=True)
    for outcome, label in zip(outcomes, labels, strict=True):
        store.set_label(outcome.record_id, label)
    return outcomes


def accuracy(predictions: list, labels: list[int]) -> float:
    return float(np.mean([p.digit == label for p, label in zip(predictions, labels, strict=True)]))


def test_examples_pair_each_digit_with_its_label_and_hold_out_one_row_in_five_by_id() -> None:
    rng = np.random.default_rng(0)
    rows = [LabelledInput(i, rng.integers(0, 256, (1, 28, 28), dtype=np.uint8), str(i % 10)) for i in range(1, 501)]
    number = LabelledInput(1001, rng.integers(0, 256, (3, 28, 28), dtype=np.uint8), "407")
    missed = LabelledInput(1002, rng.integers(0, 256, (2, 28, 28), dtype=np.uint8), "407")  # a digit missed
    rows += [number, missed, LabelledInput(1003, None, "12")]  # and a number saved before 0005
    train, holdout, left_out = labelled_examples(rows)
    assert left_out == 2
    held = {r.id for r in rows[:501] if in_holdout(r.id)}
    assert holdout.rows == len(held) and train.rows == 501 - len(held)
    assert abs(len(held) / 501 - 1 / HOLDOUT_ONE_IN) < 0.05
    assert len(train) + len(holdout) == 500 + 3
    # A row keeps its side whatever else is labelled.
    _, fewer_held, _ = labelled_examples(rows[250:])
    assert fewer_held.rows == len({r.id for r in rows[250:501] if in_holdout(r.id)})
    # The number's three inputs come in order, each with its label's digit in the same place.
    side = holdout if in_holdout(number.id) else train
    images = side.images.numpy()
    at = next(i for i in range(len(images)) if np.array_equal(images[i], number.inputs[0]))
    assert side.labels[at : at + 3].tolist() == [4, 0, 7]
    assert np.array_equal(images[at + 2], number.inputs[2])


@pytest.mark.slow
def test_corrections_in_a_style_the_model_reads_badly_teach_it_and_mnist_stays(
    store: Store, mnist_dir: Path, capsys
) -> None:
    images, digits = segment_digits(400, seed=11)
    outcomes = save_labelled(store, images, digits, "segments")
    assert all(o.prediction.model_version == SHIPPED for o in outcomes)

    started = time.monotonic()
    model = finetune.start(store, epochs=12, spawn=False)
    assert (model.status, model.parent, model.progress) == ("training", SHIPPED, 0.0)
    done = finetune.run(store, model.version)
    seconds = time.monotonic() - started
    figures, gate = done.metrics, done.gate
    before = gate["parent_metrics"]
    held = sum(in_holdout(o.record_id) for o in outcomes)
    assert done.status == "ready" and done.rows_trained_on == 400 - held and figures["holdout"]["count"] == held

    # The shipped model reads this style clearly worse than MNIST; the fine-tune learnt it, and MNIST stayed.
    assert before["holdout"]["accuracy"] <= before["mnist"]["accuracy"] - 0.15
    assert figures["holdout"]["accuracy"] >= before["holdout"]["accuracy"] + 0.05
    assert figures["mnist"]["set"] == "test" and figures["mnist"]["count"] == 10_000
    assert figures["mnist"]["accuracy"] >= before["mnist"]["accuracy"] - 0.002
    assert gate["passed"] and gate["reasons"] == []
    assert len(figures["holdout"]["confusion_matrix"]) == 10 and len(figures["mnist"]["per_class_accuracy"]) == 10

    # Activated, it reads the next pictures in that style, and the rows say which version read them.
    registry.activate(store, done.version)
    fresh, truth = segment_digits(100, seed=12)
    after = predict_many_and_save([(None, image) for image in fresh], source="draw", store=store)
    shipped = get_shipped_predictor().read([candidate_views(image) for image in fresh])
    assert {o.prediction.model_version for o in after} == {done.version}
    assert store.page(filters=Filters(model_version=done.version)).total == 100
    assert store.page(filters=Filters(model_version=SHIPPED)).total == 400
    gain = accuracy([o.prediction for o in after], truth) - accuracy(shipped, truth)
    assert gain >= 0.05
    with capsys.disabled():
        print(
            f"\nfine-tune on 400 labelled seven-segment digits ({done.rows_trained_on} learnt, {held} held out), "
            f"{figures['steps']} steps, {seconds:.0f} s: holdout {before['holdout']['accuracy']:.1%} -> "
            f"{figures['holdout']['accuracy']:.1%}, MNIST test {before['mnist']['accuracy']:.2%} -> "
            f"{figures['mnist']['accuracy']:.2%}, redrawn {before['redrawn']['accuracy']:.1%} -> "
            f"{figures['redrawn']['accuracy']:.1%}; 100 fresh pictures read {gain:+.0%} better once active; "
            f"seconds {figures['seconds']}"
        )


def poll(client: TestClient, version: str, timeout: float) -> tuple[dict, list[float]]:
    """GET the version every half second until it is no longer training; -> its last answer, progress seen."""
    seen, deadline = [], time.monotonic() + timeout
    while True:
        answer = client.get(f"/api/v1/models/{version}")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        seen.append(body["progress"])
        if body["status"] != "training" or time.monotonic() > deadline:
            return body, seen
        time.sleep(0.5)


@pytest.mark.slow
def test_poisoned_labels_make_a_candidate_the_gate_refuses_and_force_is_logged(
    client: TestClient, store: Store, mnist_dir: Path, caplog, capsys
) -> None:
    images, labels = load_split("train", mnist_dir)
    chosen = range(50_000, 50_300)  # MNIST training digits, drawn on a canvas, every label shifted by one
    drawn = [redraw("black_on_white", images[i].numpy(), 3, i) for i in chosen]
    save_labelled(store, drawn, [(int(labels[i]) + 1) % 10 for i in chosen], "shifted")

    started = client.post("/api/v1/models", json={})  # the default recipe
    assert started.status_code == 202, started.text
    version = started.json()["version"]
    assert started.json()["status"] == "training" and started.json()["parent"] == SHIPPED
    body, progress = poll(client, version, JOB_SECONDS)
    assert body["status"] == "ready", body
    assert any(0 < p < 1 for p in progress) and progress == sorted(progress)  # progress was visible, and only grew
    assert body["gate"]["passed"] is False and any("MNIST" in reason for reason in body["gate"]["reasons"])

    refused = client.post(f"/api/v1/models/{version}/activate", json={"force": False})
    assert refused.status_code == 409 and "MNIST" in refused.json()["detail"], refused.text
    assert client.get("/api/v1/health").json()["model_version"] == SHIPPED
    assert client.get(f"/api/v1/models/{version}").json()["status"] == "ready"

    with caplog.at_level(logging.WARNING, logger="mnist"):
        forced = client.post(f"/api/v1/models/{version}/activate", json={"force": True})
    assert forced.status_code == 200 and forced.json()["status"] == "active" and forced.json()["gate"]["forced_at"]
    assert [r.fields["version"] for r in caplog.records if r.getMessage() == "model_activation_forced"] == [version]
    assert client.get("/api/v1/health").json()["model_version"] == version

    back = client.post(f"/api/v1/models/{SHIPPED}/activate")  # the rollback needs no force
    assert back.status_code == 200 and back.json()["status"] == "active" and back.json()["shipped"]
    assert client.get("/api/v1/health").json()["model_version"] == SHIPPED
    figures, before = body["metrics"], body["gate"]["parent_metrics"]
    with capsys.disabled():
        print(
            f"\npoisoned fine-tune (300 rows, labels shifted by one): MNIST test {before['mnist']['accuracy']:.2%} -> "
            f"{figures['mnist']['accuracy']:.2%}, holdout {before['holdout']['accuracy']:.1%} -> "
            f"{figures['holdout']['accuracy']:.1%}; refused: {body['gate']['reasons']}"
        )


def wait_for(condition, timeout: float, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while not (found := condition()) and time.monotonic() < deadline:
        time.sleep(every)
    return found


@pytest.mark.slow
def test_a_job_killed_midway_is_failed_and_nothing_is_served_from_it(
    client: TestClient, store: Store, mnist_dir: Path
) -> None:
    images, digits = segment_digits(60, seed=5)
    save_labelled(store, images, digits, "segments")

    started = client.post("/api/v1/models", json={})
    assert started.status_code == 202, started.text
    version = started.json()["version"]
    again = client.post("/api/v1/models", json={"epochs": 1})
    assert again.status_code == 409 and version in again.json()["detail"]

    training = wait_for(lambda: (store.model(version).stage or "").startswith("training"), JOB_SECONDS)
    assert training, store.model(version)
    pid = int(store.model(version).worker.rsplit(":", 1)[1])
    os.kill(pid, signal.SIGKILL)
    failed = wait_for(lambda: store.model(version).status == "failed", SWITCH_SECONDS)
    assert failed, store.model(version)

    answer = client.get(f"/api/v1/models/{version}").json()
    assert answer["status"] == "failed" and "SIGKILL" in answer["error"] and answer["metrics"] is None
    with pytest.raises(ModelNotReady):
        store.model_weights(version)
    assert client.post(f"/api/v1/models/{version}/activate", json={"force": True}).status_code == 409
    assert store.active_model() == SHIPPED and client.get("/api/v1/health").json()["model_version"] == SHIPPED

    # The dead job blocks nobody: the next one starts (and is stopped here too).
    next_one = client.post("/api/v1/models", json={"epochs": 1})
    assert next_one.status_code == 202, next_one.text
    worker = wait_for(lambda: store.model(next_one.json()["version"]).worker, JOB_SECONDS)
    os.kill(int(worker.rsplit(":", 1)[1]), signal.SIGKILL)
    assert wait_for(lambda: store.model(next_one.json()["version"]).status == "failed", SWITCH_SECONDS)


def call(
    port: int, method: str, path: str, body: dict | None = None, conn: http.client.HTTPConnection | None = None
) -> tuple[int, dict]:
    """One request on a connection of its own, or on `conn` (kept open: the same server process answers)."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        payload = None if body is None else json.dumps(body)
        conn.request(method, path, payload, {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        if own:
            conn.close()


def served(port: int) -> str:
    return call(port, "GET", "/api/v1/health")[1]["model_version"]


@pytest.mark.slow
def test_two_app_processes_serve_a_version_activated_through_either_within_10_s(
    postgres_url: str, tmp_path: Path, capsys
) -> None:
    store = Store(postgres_url)
    store.migrate()
    candidate = add_candidate(store)
    env = {**os.environ, "DATABASE_URL": postgres_url}
    env.pop("MNIST_API_TOKEN", None)
    ports = [api_load.free_port(), api_load.free_port()]
    timings = []
    with ExitStack() as stack:
        for name, port in zip("ab", ports, strict=True):
            stack.enter_context(api_load.make_run(port, env, tmp_path / f"server-{name}.log"))
        first, second = ports
        assert served(first) == served(second) == SHIPPED

        for through, other, version in ((first, second, candidate.version), (second, first, SHIPPED)):
            conn = stack.enter_context(closing(http.client.HTTPConnection("127.0.0.1", through, timeout=30)))
            status, body = call(through, "POST", f"/api/v1/models/{version}/activate", {"force": False}, conn)
            assert status == 200 and body["status"] == "active", body
            switched = time.monotonic()
            # The process that activated serves it at once (the keep-alive connection reaches that process);
            # the other processes of its server (API workers) are told at once, well within their poll.
            assert call(through, "GET", "/api/v1/health", conn=conn)[1]["model_version"] == version
            assert wait_for(lambda t=through, v=version: all(served(t) == v for _ in range(6)), 2, every=0.1)
            # Every process of the other server (each polls on its own) within the poll.
            assert wait_for(
                lambda o=other, v=version: all(served(o) == v for _ in range(6)), SWITCH_SECONDS + 5, every=0.1
            )
            timings.append(time.monotonic() - switched)
            assert timings[-1] < SWITCH_SECONDS
            status, answer = call(other, "POST", "/image-predict", ORIGINAL_REQUEST)
            assert status == 200 and store.get(answer["id"]).model_version == version
    store.engine.dispose()
    for name in "ab":
        assert "Traceback" not in (tmp_path / f"server-{name}.log").read_text(errors="replace")
    with capsys.disabled():
        print(f"\nthe other process served the newly active version after {timings[0]:.1f} s and {timings[1]:.1f} s")
