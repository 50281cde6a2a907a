"""The shipped weights, the prediction API around them, and a short training run."""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from mnist.config import MODEL_CARD_PATH, WEIGHTS_PATH
from mnist.data import load_split
from mnist.evaluate import predict_labels, scores
from mnist.model import CLASSES, NOT_A_DIGIT, SEVERAL_DIGITS, Net, class_probabilities
from mnist.predict import (
    MicroBatcher,
    Prediction,
    Predictor,
    get_number_classifier,
    get_predictor,
    load_weights,
    predict,
    predict_batch,
)
from mnist.preprocess import candidate_views
from tests.number_gen import full_data_dir
from tests.redraw import place, strokes
from tests.support.sample import as_mnist_test_dir, mnist_sample

IMAGES, LABELS = mnist_sample()


def _sample_accuracy(net: torch.nn.Module) -> float:
    return scores(predict_labels(net, torch.from_numpy(IMAGES.copy())), torch.from_numpy(LABELS))["accuracy"]


def test_weights_reach_99_percent_on_the_committed_sample():
    # The classifier with verdict classes reads 99.58% of the full test set, the ten-digit classifier the numbers
    # keep 99.75%: the price of the verdict and robustness training, short of the 99.7% the issue "Engine" asks
    # (README, Known limits). These 1,000 are harder for it than the rest: 9 are misread (the ten-digit
    # classifier: 4), so the floor is 99.0% here; the full test set's figure is in the model card.
    assert _sample_accuracy(get_predictor().net) >= 0.99
    assert _sample_accuracy(get_number_classifier().net) >= 0.995


def test_preprocessing_a_genuine_mnist_digit_does_not_hurt():
    predictions = predict_batch(list(IMAGES))
    accuracy = np.mean([p.digit == label for p, label in zip(predictions, LABELS, strict=True)])
    assert accuracy >= 0.99  # the floor the network has on these 1,000 (above)
    assert accuracy >= _sample_accuracy(get_predictor().net)  # the views lose nothing the network alone reads


@pytest.mark.slow
def test_full_test_accuracy_matches_the_model_card():
    data_dir = full_data_dir()  # MNIST_DATA_DIR, else ../shared/data/mnist, like the other data tests
    if data_dir is None:
        pytest.skip("no full MNIST test set: set MNIST_DATA_DIR or put it in ../shared/data/mnist")
    images, labels = load_split("test", data_dir)
    result = scores(predict_labels(get_predictor().net, images), labels)
    card = json.loads(MODEL_CARD_PATH.read_text())
    assert result["errors"] == card["test"]["errors"]
    assert result["accuracy"] == pytest.approx(card["test"]["accuracy"], abs=1e-9)


def _canvas(index: int) -> np.ndarray:
    canvas = np.zeros((280, 280), np.float32)
    place(canvas, strokes(IMAGES[index], 170), 50, 60)
    return (canvas * 255).astype(np.uint8)


def test_prediction_fields():
    p = predict(_canvas(0))
    assert isinstance(p, Prediction)
    assert p.digit == int(LABELS[0]) and isinstance(p.digit, int)
    assert len(p.probabilities) == 10 and sum(p.probabilities) == pytest.approx(1.0, abs=1e-9)
    assert all(0.0 <= v <= 1.0 for v in p.probabilities)
    assert p.confidence == max(p.probabilities) == p.probabilities[p.digit]
    assert p.model_input.shape == (28, 28) and p.model_input.dtype == np.uint8
    version = hashlib.sha256(WEIGHTS_PATH.read_bytes()).hexdigest()[:12]
    assert p.model_version == version == json.loads(MODEL_CARD_PATH.read_text())["model_version"]
    assert p.box is not None and p.box[0] >= 50 and p.box[1] >= 40


def test_predict_batch_is_one_forward_pass_consistent_with_predict():
    images = [_canvas(i) for i in range(6)]
    calls = []
    handle = get_predictor().net.register_forward_hook(lambda module, inputs, output: calls.append(len(inputs[0])))
    try:
        batch = predict_batch(images)
    finally:
        handle.remove()
    assert calls == [6]
    for image, b in zip(images, batch, strict=True):
        single = predict(image)
        assert single.digit == b.digit
        assert np.allclose(single.probabilities, b.probabilities, atol=1e-5)
        assert np.array_equal(single.model_input, b.model_input)


def test_predict_batch_of_nothing_is_empty():
    assert predict_batch([]) == []


def test_predictions_are_thread_safe():
    images = [_canvas(i) for i in range(16)]
    expected = [p.digit for p in predict_batch(images)]
    results: dict[int, list[int]] = {}
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            order = np.random.default_rng(worker).permutation(len(images))
            got = {int(i): predict(images[i]).digit for i in order}
            results[worker] = [got[i] for i in range(len(images))]
        except BaseException as exc:  # surfaced below: a thread's exception is otherwise lost
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(results[w] == expected for w in range(8))


def test_the_served_network_is_folded_and_reads_as_the_trained_one():
    trained = Net(classes=CLASSES)
    load_weights(trained, WEIGHTS_PATH)
    served = get_predictor().net
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in served.modules())
    batch = torch.from_numpy(IMAGES[:200].copy())
    with torch.inference_mode():
        expected, got = class_probabilities(trained, batch), class_probabilities(served, batch)
    assert torch.allclose(expected, got, atol=1e-4)
    assert torch.equal(expected.argmax(1), got.argmax(1))


def test_a_big_batch_split_over_the_cores_reads_as_small_ones():
    inputs = list(IMAGES[:200])
    whole = get_predictor().probabilities(inputs)  # >= SPLIT_FROM rows: split over the cores
    pieces = np.concatenate([get_predictor().probabilities(inputs[i : i + 10]) for i in range(0, 200, 10)])
    assert np.allclose(whole, pieces, atol=1e-6)


def test_concurrent_calls_share_forward_passes_and_each_gets_its_own_answer():
    predictor = Predictor()  # its own: the process-wide one stays unbatched for the other tests
    views = [candidate_views(_canvas(i)) for i in range(24)]
    expected = predictor.read(views)
    batcher = predictor.batch_concurrent_calls(gather=0.01)
    start = threading.Barrier(len(views))
    got: dict[int, Prediction] = {}

    def work(i: int) -> None:
        start.wait()
        got[i] = predictor.read([views[i]])[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(views))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, prediction in enumerate(expected):
        assert got[i].digit == prediction.digit and got[i].verdict == prediction.verdict
        assert np.allclose(got[i].probabilities, prediction.probabilities, atol=1e-5)
    assert batcher.rows == sum(len(v) for v in views)
    assert batcher.passes < len(views)  # requests that arrived together went through together


def test_a_failed_forward_pass_reaches_the_callers_it_held_and_the_next_ones_are_served():
    def forward(rows: np.ndarray) -> np.ndarray:
        if (rows == 255).any():
            raise ValueError("a row the forward pass refuses")
        return rows * 2

    batcher = MicroBatcher(forward, gather=0.05)
    start = threading.Barrier(4)
    outcomes: dict[int, object] = {}

    def work(i: int) -> None:
        start.wait()
        try:
            outcomes[i] = batcher(np.full((2, 3), 255 if i == 0 else i, np.uint16))
        except ValueError as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert isinstance(outcomes[0], ValueError)
    for i in range(1, 4):  # in the failed pass (an error) or a later one (their own rows, doubled)
        assert isinstance(outcomes[i], ValueError) or np.array_equal(outcomes[i], np.full((2, 3), 2 * i))
    assert np.array_equal(batcher(np.ones((1, 3), np.uint16)), np.full((1, 3), 2))


def test_weights_load_as_a_plain_state_dict():
    state = torch.load(WEIGHTS_PATH, map_location="cpu", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    assert Predictor(WEIGHTS_PATH).model_version == get_predictor().model_version


def test_scores_match_a_confusion_matrix_worked_out_by_hand():
    labels = torch.tensor([0, 0, 1, 2, 2, 2, 9])
    predicted = torch.tensor([0, 1, 1, 2, 0, 2, 4])
    confusion = [[0] * 10 for _ in range(10)]  # rows: true digit, columns: predicted
    confusion[0][0], confusion[0][1] = 1, 1  # the two 0s: one right, one read as 1
    confusion[1][1] = 1
    confusion[2][2], confusion[2][0] = 2, 1  # three 2s, one read as 0
    confusion[9][4] = 1
    result = scores(predicted, labels)
    assert result["confusion_matrix"] == confusion
    assert result["count"] == 7 and result["errors"] == 3 and result["accuracy"] == pytest.approx(4 / 7)
    # per class: 1/2, 1/1, 2/3, then no 3-8 in the set (0 by convention), and the 9 missed
    assert result["per_class_accuracy"] == pytest.approx([0.5, 1.0, 2 / 3, 0, 0, 0, 0, 0, 0, 0.0], abs=1e-6)


def test_make_evaluate_reports_the_weights_it_is_given(tmp_path: Path, capsys):
    from mnist import evaluate

    data = as_mnist_test_dir(tmp_path / "mnist")
    result = evaluate.main(["--data-dir", str(data), "--weights", str(WEIGHTS_PATH)])
    expected = scores(predict_labels(get_predictor().net, torch.from_numpy(IMAGES.copy())), torch.from_numpy(LABELS))
    assert result == expected and result["count"] == 1000
    assert f"({result['errors']} errors in 1000)" in capsys.readouterr().out
    # What the Model page shows: the same errors, each a sample image with its true and predicted digit.
    wrong, count = evaluate.mistakes_on_test_set(data)
    assert count == 1000 and len(wrong) == result["errors"]
    matrix = result["confusion_matrix"]
    off_diagonal = {(t, p): matrix[t][p] for t in range(10) for p in range(10) if t != p and matrix[t][p]}
    assert Counter((true, predicted) for _, true, predicted in wrong) == off_diagonal
    image, true, _ = wrong[0]
    assert any(np.array_equal(image, i) and label == true for i, label in zip(IMAGES, LABELS, strict=True))


def test_spoilt_views_are_seeded_and_label_the_wrong_polarity_not_a_digit():
    from mnist.train import spoilt_views

    digits, labels = IMAGES[:120].copy(), LABELS[:120].copy()
    views, view_labels, picture = spoilt_views("digits", digits, labels, seed=3, workers=1)
    assert views.dtype == torch.uint8 and views.shape[1:] == (28, 28) and len(views) == len(view_labels)
    again = spoilt_views("digits", digits, labels, seed=3, workers=1)
    assert torch.equal(views, again[0]) and torch.equal(view_labels, again[1])  # seeded: training is repeatable
    assert not torch.equal(views[:50], spoilt_views("digits", digits, labels, seed=4, workers=1)[0][:50])
    # Every picture still holding ink gives a view of its own digit (spoiling may leave none: an eroded stroke's
    # outline at low contrast is blank); views in the other polarity are "not a digit".
    is_digit = view_labels < 10
    assert set(picture[is_digit].tolist()) == set(picture.tolist()) and len(set(picture.tolist())) >= 115
    assert torch.equal(view_labels[is_digit], torch.from_numpy(labels)[picture[is_digit]])
    assert 0 < int((view_labels == NOT_A_DIGIT).sum()) < len(view_labels) // 2


def test_several_digit_views_hold_two_digits_and_non_digits_are_labelled_so():
    from mnist.train import spoilt_views

    groups = np.random.default_rng(0).integers(0, 1000, size=(30, 3))
    _, several, picture = spoilt_views("several", IMAGES[groups], np.zeros(30, np.int64), seed=5, workers=1)
    assert set(several.tolist()) <= {NOT_A_DIGIT, SEVERAL_DIGITS} and len(set(picture.tolist())) >= 25
    _, other, _ = spoilt_views("nondigits", IMAGES[:0], np.arange(40), seed=6, workers=1)
    assert len(other) >= 40 and set(other.tolist()) == {NOT_A_DIGIT}


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_training_smoke_run_beats_chance(tmp_path: Path):
    from mnist import train

    data_dir = full_data_dir()
    if data_dir is None:
        pytest.skip("no MNIST_DATA_DIR and no ../shared/data/mnist: training needs the four original files")
    out, card_path = tmp_path / "w.pt", tmp_path / "card.json"
    # Batch 32: 63 optimiser steps in the one epoch (the default 128 gives only 16).
    args = ["--epochs", "1", "--limit", "2000", "--validation", "500", "--batch-size", "32"]
    args += ["--non-digits", "300", "--several", "100"]
    card = train.main([*args, "--data-dir", str(data_dir), "--out", str(out), "--card", str(card_path)])
    assert out.exists() and json.loads(card_path.read_text())["test"]["accuracy"] == card["test"]["accuracy"]
    assert card["test"]["accuracy"] > 0.5  # chance is 0.1
    assert card["training"]["train_images"] == card["training"]["rendered_copies"] == 2000
    calibration = card["training"]["calibration"]
    assert calibration["temperature"] > 0 and 0 < calibration["unsure_below"] < 1
    saved = torch.load(out, map_location="cpu", weights_only=True)
    assert float(saved["unsure_below"]) == pytest.approx(calibration["unsure_below"], abs=1e-4)
    assert float(saved["not_a_digit_from"]) == pytest.approx(calibration["not_a_digit_from"], abs=1e-4)
    assert 0 < calibration["not_a_digit_from"] <= 0.5
