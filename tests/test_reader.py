"""The line reader (mnist/reader.py): strip recipe, CTC decoding, shipped weights, and a training smoke run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mnist.config import READER_CARD_PATH, READER_WEIGHTS_PATH
from mnist.errors import NoDigitFound
from mnist.model import LineNet
from mnist.predict import model_version_of
from mnist.reader import PAD, STRIP_HEIGHT, TEXT_HEIGHT, LineReader, decode, get_reader, to_strip
from tests.number_gen import full_data_dir


def _bars(width: int, height: int, columns: list[tuple[int, int]], top: int = 0) -> np.ndarray:
    """An ink map with full-height vertical bars over the given [x0, x1) columns, starting at row `top`."""
    ink = np.zeros((height, width), np.float32)
    for x0, x1 in columns:
        ink[top : top + 100, x0:x1] = 1.0
    return ink


def test_strip_is_the_line_text_height_tall_and_keeps_its_proportions() -> None:
    ink = _bars(1000, 300, [(200, 215), (600, 615)], top=50)  # 100 px tall, 415 px from first to last ink
    strip = to_strip(ink)
    assert strip.pixels.dtype == np.uint8 and strip.pixels.shape[0] == STRIP_HEIGHT
    rows = np.flatnonzero(strip.pixels.max(axis=1) > 127)
    assert rows[-1] - rows[0] + 1 in range(TEXT_HEIGHT - 2, TEXT_HEIGHT + 1)
    assert strip.pixels.shape[1] - 2 * PAD == round(415 * TEXT_HEIGHT / 100)
    # Strip columns map back onto the ink map: the second bar's centre lands near column 607.
    cols = np.flatnonzero(strip.pixels.max(axis=0) > 127)
    assert abs(strip.to_ink_x((cols[-1] + 1 + cols[cols > cols[0] + 20][0]) / 2) - 607.5) < 5


def test_a_very_long_line_is_squeezed_to_the_widest_strip() -> None:
    strip = to_strip(_bars(20_000, 20, [(0, 5), (19_990, 20_000)]))
    assert strip.pixels.shape[1] <= 1600


def test_a_blank_ink_map_has_no_digit() -> None:
    with pytest.raises(NoDigitFound):
        to_strip(np.zeros((50, 80), np.float32))


def _frames(labels: list[int]) -> np.ndarray:
    """Log-probabilities (T, 11) that put 0.9 on the given class per frame."""
    p = np.full((len(labels), 11), 0.01)
    p[np.arange(len(labels)), labels] = 0.9
    return np.log(p / p.sum(axis=1, keepdims=True))


def test_decode_merges_repeats_and_needs_a_blank_between_equal_digits() -> None:
    # blank, 1 1 (one "1"), blank, 1 (a second "1"), 7, blank  -> "117"
    chars = decode(_frames([0, 2, 2, 0, 2, 8, 0]))
    assert [int(c.probabilities.argmax()) for c in chars] == [1, 1, 7]
    assert all(abs(c.probabilities.sum() - 1) < 1e-9 for c in chars)
    # Frames are WIDTH_STRIDE strip columns wide: the first "1" spans frames 1-2.
    s = LineNet.WIDTH_STRIDE
    assert (chars[0].start, chars[0].stop) == (1 * s, 3 * s)
    assert chars[0].start <= chars[0].centre < chars[0].stop


def test_decode_of_only_blanks_is_nothing() -> None:
    assert decode(_frames([0, 0, 0])) == []


def test_line_net_gives_one_column_of_scores_per_two_strip_columns() -> None:
    net = LineNet().eval()
    with torch.inference_mode():
        out = net(torch.zeros(3, 1, STRIP_HEIGHT, 64))
    assert out.shape == (32, 3, 11)
    assert torch.allclose(out.exp().sum(dim=2), torch.ones(32, 3), atol=1e-5)


def test_shipped_reader_loads_as_a_plain_state_dict_and_matches_its_card() -> None:
    state = torch.load(READER_WEIGHTS_PATH, map_location="cpu", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    card = json.loads(READER_CARD_PATH.read_text())
    assert card["reader_version"] == model_version_of(READER_WEIGHTS_PATH) == get_reader().version
    assert card["parameters"] == sum(p.numel() for p in LineReader().net.parameters())


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_training_smoke_run_learns(tmp_path: Path) -> None:
    from mnist import train_reader

    data_dir = full_data_dir()
    if data_dir is None:
        pytest.skip("no MNIST_DATA_DIR and no ../shared/data/mnist: training needs the four original files")
    cache = tmp_path / "cache"

    def run(name: str, *extra: str) -> dict:
        """Train into tmp_path/<name>.pt and <name>.json, sharing one cache of rendered numbers."""
        outputs = ["--weights", str(tmp_path / f"{name}.pt"), "--card", str(tmp_path / f"{name}.json")]
        args = ["--examples", "800", "--validation", "100", "--batch-size", "16", "--lr", "3e-3", *extra]
        return train_reader.main([*args, *outputs, "--cache-dir", str(cache), "--data-dir", str(data_dir)])

    card = run("first", "--epochs", "3", "--cells", "0.5")
    weights = tmp_path / "first.pt"
    assert weights.exists() and json.loads((tmp_path / "first.json").read_text()) == card
    # About half the numbers were laid out as MNIST cells, and the card scores them apart.
    assert card["training"]["cells"] == 0.5 and {"cells separated", "separated"} <= set(card["validation"])
    losses = [epoch["loss"] for epoch in card["history"]]
    assert losses[-1] < losses[0] * 0.8, losses  # it learns: the CTC loss falls
    assert sorted(cache.iterdir())  # the rendered numbers were kept for the next run
    # --init fine-tunes: it starts from those weights, so one epoch ends below the first run's second (from scratch,
    # one epoch stays far above it: 4.4 against 2.7 when this was written).
    tuned = run("tuned", "--epochs", "1", "--init", str(weights))
    assert tuned["training"]["init"] == card["reader_version"]
    assert tuned["history"][0]["loss"] < losses[1], (tuned["history"], losses)


@pytest.mark.slow
def test_cached_strips_are_not_reused_once_the_front_end_changes(tmp_path: Path, monkeypatch) -> None:
    from mnist import train_reader

    data_dir = full_data_dir()
    if data_dir is None:
        pytest.skip("no MNIST_DATA_DIR and no ../shared/data/mnist: rendering needs the four original files")
    cache = tmp_path / "cache"
    first = train_reader.make_examples(3, 5, range(0, 100), data_dir, cache, workers=1)
    (cached,) = cache.iterdir()
    assert cached.name == f"strips-3-5-0-100-{train_reader.front_end_version()}.npz"
    written = cached.stat().st_mtime_ns
    reused = train_reader.make_examples(3, 5, range(0, 100), data_dir, cache, workers=1)
    # Read back, not rendered and written again.
    assert reused["texts"] == first["texts"] and cached.stat().st_mtime_ns == written
    assert list(cache.iterdir()) == [cached]
    # The same code with preprocessing edited: a new version, so the strips are made afresh.
    edited = tmp_path / "edited"
    (edited / "mnist").mkdir(parents=True)
    for name in train_reader.FRONT_END:
        (edited / "mnist" / name).write_bytes((train_reader.ROOT / "mnist" / name).read_bytes())
    with (edited / "mnist" / "preprocess.py").open("a") as f:
        f.write("\n# a changed threshold\n")
    old_version = train_reader.front_end_version()
    monkeypatch.setattr(train_reader, "ROOT", edited)
    assert train_reader.front_end_version() != old_version
    train_reader.make_examples(3, 5, range(0, 100), data_dir, cache, workers=1)
    assert len(list(cache.iterdir())) == 2
