"""The number benchmarks run end to end (a handful of numbers each) and print the figures they promise."""

from __future__ import annotations

import re

import pytest

from benchmarks import numbers_bench, numbers_blocks
from tests.number_gen import full_test_set


@pytest.mark.slow
def test_numbers_bench_prints_every_gap_and_the_latency(monkeypatch, capsys) -> None:
    monkeypatch.setattr("sys.argv", ["numbers_bench", "--count", "1", "--repeat", "2", "--layout", "cells"])
    numbers_bench.main()
    out = capsys.readouterr().out
    assert "HELD_BACK digits (cells)" in out
    for gap in ("separated", "touching", "overlapping"):
        assert re.search(rf"^{gap} +all +4 ", out, re.M), out
    assert re.search(r"latency, one 4-digit number end to end: p50 [\d.]+ ms", out)


@pytest.mark.slow
def test_numbers_blocks_scores_each_held_back_block_and_pools_them(monkeypatch, capsys) -> None:
    if full_test_set() is None:
        pytest.skip("no MNIST_DATA_DIR and no ../shared/data/mnist: the blocks need the full test set")
    monkeypatch.setattr("sys.argv", ["numbers_blocks", "--count", "1"])
    numbers_blocks.main()
    out = capsys.readouterr().out
    # One line per block, the committed block first; the pooled line adds the blocks up.
    blocks = re.findall(r"^(\d+)-(\d+) +4 +([\d.]+)%", out, re.M)
    assert [int(start) for start, _, _ in blocks] == list(range(500, 10_000, 500)), out
    rates = [float(rate) for _, _, rate in blocks]
    pooled = re.search(r"all blocks: (\d+)/76 = .* (\d+) of 19 reach 97%", out)
    assert pooled, out
    assert int(pooled[1]) == round(sum(rates) * 4 / 100) and int(pooled[2]) == sum(r >= 97 for r in rates)


def test_wilson_interval_matches_the_textbook_value() -> None:
    low, high = numbers_blocks.wilson(8, 10)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)
