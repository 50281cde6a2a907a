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
    assert re.search(r"^500-999 +4 ", out, re.M) and re.search(r"^9500-9999 +4 ", out, re.M)
    pooled = re.search(r"all blocks: (\d+)/76 = .*95% interval ([\d.]+)%-([\d.]+)%.* of 19 reach 97%", out)
    assert pooled and float(pooled[2]) <= 100 * int(pooled[1]) / 76 <= float(pooled[3]), out
