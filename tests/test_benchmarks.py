"""The benchmarks run end to end (a handful of numbers, a few seconds of load) and print the figures they promise."""

from __future__ import annotations

import os
import re

import pytest
from sqlalchemy.engine import make_url

from benchmarks import api_vs_flask, flask_original, numbers_bench, numbers_blocks, responsiveness
from tests.number_gen import full_test_set
from tests.support.api import ORIGINAL_DIGIT, ORIGINAL_REQUEST


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


def test_the_original_flask_service_answers_its_client_and_keeps_a_row_per_answer(postgres_url: str) -> None:
    dsn = flask_original.dsn_of(postgres_url)
    assert flask_original.count_rows(dsn) == 0  # creates the original's table
    client = flask_original.create_app(dsn).test_client()
    for _ in range(3):
        response = client.post("/image-predict", json=ORIGINAL_REQUEST)
        assert response.status_code == 200
        assert response.get_json() == {"prediction": ORIGINAL_DIGIT, "img_shape": [28, 28]}
    assert client.get("/image-predict").get_json()["filename"] == "request_test.png"
    assert flask_original.count_rows(dsn) == 3


@pytest.mark.slow
def test_api_vs_flask_runs_both_services_and_prints_the_ratio(monkeypatch, capsys) -> None:
    server = make_url(os.environ.get("TEST_DATABASE_URL") or pytest.skip("needs TEST_DATABASE_URL (make test)"))
    admin = server.set(database="postgres").render_as_string(hide_password=False)
    argv = ["api_vs_flask", "--postgres", admin, "--rounds", "1", "--clients", "2", "--duration", "2"]
    monkeypatch.setattr("sys.argv", [*argv, "--warmup", "0.5"])
    assert api_vs_flask.main() == 0  # no errors, every acknowledged save a row, on both sides
    out = capsys.readouterr().out
    for side in ("this", "original"):
        assert re.search(rf"^{side} +\d+ req/s +p50 [\d.]+ ms +p99 [\d.]+ ms +rows/acknowledged (\d+)/\1$", out, re.M)
    assert re.search(r"^ratio +[\d.]+x the original's requests/s$", out, re.M), out


@pytest.mark.slow
def test_responsiveness_prints_first_paint_and_release_to_reading(monkeypatch, capsys) -> None:
    monkeypatch.setattr("sys.argv", ["responsiveness", "--paints", "1", "--draws", "1"])
    responsiveness.main()  # the targets are for a quiet machine: only the figures are checked here
    out = capsys.readouterr().out
    assert re.search(r"^first paint of Draw \(canvas shown\) +p50 +\d+ ms .*\(n=1\)", out, re.M), out
    assert re.search(r"^release -> reading shown +p50 +\d+ ms .*\(n=1\)", out, re.M), out
