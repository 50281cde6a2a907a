"""The history store on SQLite and PostgreSQL: exact round trips, filters, labels, stats, CSV, faults."""

from __future__ import annotations

import ast
import csv
import io
import math
import socket
import subprocess
import sys
import threading
import time
import types
from contextlib import suppress
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy import event, func, select, text
from sqlalchemy.engine import make_url

from mnist.errors import IdempotencyConflict, RecordNotFound, StoreUnavailable
from mnist.results import VERDICTS
from mnist.store import (
    CSV_COLUMNS,
    SOURCES,
    Filters,
    PredictionRow,
    Store,
    StoreProvider,
    sanitize_filename,
    shared_provider,
)
from tests.support.history import (
    BASE,
    EVERY_FILTER,
    expected_ids,
    fake,
    make_commits_slow,
    number_inputs,
    seed_known,
    set_created_at,
)

ROOT = Path(__file__).resolve().parent.parent

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4  # the store checks the signature and size, not the pixels


@pytest.fixture
def store(database_url: str):
    # What these tests check is what the calls return: a busy machine (make test starts servers with several
    # processes beside them) may take over the default 1 s for a history read, which test_hung_database bounds.
    store = Store(database_url, history_timeout=10)
    store.migrate()
    yield store
    store.engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# A liveness bound, not a speed figure: without the Store's connect and TCP timeouts these calls would
# hang for minutes (against a silent server, for ever); with them they return in about 3 s. 20 s tells
# the two apart even on a busy 2-core machine. How fast an outage is reported is not asserted here.
LIVENESS_SECONDS = 20


def elapsed(call) -> tuple[BaseException | None, float]:
    started = time.monotonic()
    try:
        call()
    except BaseException as exc:  # noqa: BLE001 - the caller asserts on the type
        return exc, time.monotonic() - started
    return None, time.monotonic() - started


# --- exactness ------------------------------------------------------------------------------------


def test_round_trip_is_byte_exact_and_utc(store: Store) -> None:
    prediction = fake(digit=7, seed=42)
    prediction.model_input[0, :3] = [0, 255, 128]  # the extremes survive too
    before = datetime.now(UTC)
    record_id = store.save(
        prediction, source="upload", filename="seven.png", original=PNG, latency_ms=12.25, predicted_text="1789"
    )
    after = datetime.now(UTC)

    record = store.get(record_id)
    assert record.id == record_id
    assert record.model_input.dtype == np.uint8 and record.model_input.shape == (28, 28)
    assert record.model_input.tobytes() == prediction.model_input.tobytes()
    assert record.probabilities == prediction.probabilities  # floats exactly, not approximately
    assert record.confidence == prediction.confidence
    assert record.digit == 7 and record.source == "upload" and record.filename == "seven.png"
    assert record.original == PNG
    assert record.latency_ms == 12.25 and record.predicted_text == "1789" and record.model_version == "test"
    assert record.label is None and record.labelled_at is None
    assert record.created_at.utcoffset() == timedelta(0)
    assert before <= record.created_at <= after


def test_times_stay_utc_whatever_the_server_timezone(database_url: str) -> None:
    if database_url.startswith("postgresql"):
        name = make_url(database_url).database
        admin = Store(database_url)
        with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f"ALTER DATABASE \"{name}\" SET timezone TO 'Asia/Kathmandu'"))  # +05:45
        admin.engine.dispose()
    store = Store(database_url)
    store.migrate()
    record_id = store.save(fake(), source="draw")
    local = timezone(timedelta(hours=5, minutes=45))
    set_created_at(store, record_id, datetime(2024, 6, 1, 23, 30, tzinfo=local))  # 17:45 UTC

    record = store.get(record_id)
    assert record.created_at == datetime(2024, 6, 1, 17, 45, tzinfo=UTC)
    assert record.created_at.tzinfo == UTC
    # A filter given in another timezone means the same instant.
    assert store.page(filters=Filters(since=datetime(2024, 6, 1, 23, 30, tzinfo=local))).total == 1
    assert store.page(filters=Filters(since=datetime(2024, 6, 1, 17, 46, tzinfo=UTC))).total == 0
    store.engine.dispose()


def test_latest_is_the_last_saved_row(store: Store) -> None:
    assert store.latest() is None
    ids = [store.save(fake(digit=d, seed=d), source="draw") for d in range(5)]
    latest = store.latest()
    assert latest is not None and latest.id == ids[-1] and latest.digit == 4
    store.delete(ids[-1])
    assert store.latest().id == ids[-2]


def test_verdict_round_trips_and_old_rows_read_as_digits(store: Store) -> None:
    ids = {v: store.save(fake(seed=i, verdict=v), source="upload") for i, v in enumerate(VERDICTS)}
    assert {v: store.get(i).verdict for v, i in ids.items()} == {v: v for v in VERDICTS}
    # A row written without a verdict (an older client of the store) is a digit, as before verdicts existed.
    with store.engine.begin() as conn:
        conn.execute(PredictionRow.__table__.insert().values(**_row_without_verdict()))
    assert store.page(filters=Filters(verdict="digit")).total == 2
    exported = list(csv.DictReader(io.StringIO("".join(store.export_csv(Filters(verdict="not_a_digit"))))))
    assert [row["verdict"] for row in exported] == ["not_a_digit"]


def _row_without_verdict() -> dict:
    p = fake(seed=99)
    return {
        "created_at": datetime.now(UTC),
        "source": "draw",
        "model_input": p.model_input.tobytes(),
        "digit": p.digit,
        "confidence": p.confidence,
        "probabilities": p.probabilities,
        "model_version": "old",
    }


def test_record_array_is_read_only(store: Store) -> None:
    record = store.get(store.save(fake(), source="draw"))
    with pytest.raises(ValueError):
        record.model_input[0, 0] = 1


# --- pages and filters ----------------------------------------------------------------------------


@pytest.fixture
def known(store: Store) -> list[dict]:
    """36 rows: 30 digit rows with varied digit, source, confidence, label and time, and 6 number rows."""
    return seed_known(store)


@pytest.mark.parametrize("filters", EVERY_FILTER, ids=lambda f: repr(f)[8:-1] or "none")
def test_page_total_and_order_under_every_filter(store: Store, known: list[dict], filters: Filters) -> None:
    want = expected_ids(known, filters)
    page = store.page(0, 500, filters)
    assert page.total == len(want)
    assert [r.id for r in page.items] == want
    window = store.page(1, 3, filters)
    assert window.total == len(want) and [r.id for r in window.items] == want[1:4]
    assert store.stats(filters).total == len(want)
    exported = list(csv.DictReader(io.StringIO("".join(store.export_csv(filters, chunk_rows=4)))))
    assert [int(r["id"]) for r in exported] == want


def test_pages_walk_the_whole_history_once(store: Store, known: list[dict]) -> None:
    seen = []
    for offset in range(0, 50, 7):
        page = store.page(offset, 7)
        assert page.total == len(known) == 36
        seen += [r.id for r in page.items]
    assert seen == expected_ids(known, Filters())
    assert store.page(36, 10).items == [] and store.page(36, 10).total == 36


def test_page_counts_in_sql_and_fetches_one_page(store: Store, known: list[dict]) -> None:
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement.lower())

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        page = store.page(5, 4, Filters(labelled=False))
        stats = store.stats()
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    assert len(page.items) == 4
    assert any("count(*)" in s and "limit" not in s for s in statements)
    assert any("model_input" in s and "limit" in s and "offset" in s for s in statements)
    assert sum("group by" in s for s in statements) == 2 and stats.total == len(known)


# --- labels and deletion --------------------------------------------------------------------------


def test_label_and_unlabel(store: Store) -> None:
    record_id = store.save(fake(digit=4), source="draw")
    before = datetime.now(UTC)
    labelled = store.set_label(record_id, 9)
    assert labelled.label == 9 and before <= labelled.labelled_at <= datetime.now(UTC)
    assert labelled.labelled_at.tzinfo == UTC
    again = store.get(record_id)
    assert again.label == 9 and again.labelled_at == labelled.labelled_at
    assert store.page(filters=Filters(labelled=True)).total == 1

    cleared = store.set_label(record_id, None)
    assert cleared.label is None and cleared.labelled_at is None
    assert store.get(record_id).label is None and store.get(record_id).labelled_at is None
    assert store.page(filters=Filters(labelled=True)).total == 0

    assert store.set_label(record_id, 0).label == 0  # zero is a label, not "no label"


@pytest.mark.parametrize("label", [12, -1, 10, True, 3.0, "34", "x", "", " 3", "\u0663", "3\n", 2**70])
def test_bad_label_is_rejected_and_nothing_changes(store: Store, label: object) -> None:
    record_id = store.save(fake(), source="draw")
    store.set_label(record_id, 5)
    with pytest.raises(ValueError, match="label"):
        store.set_label(record_id, label)
    assert store.get(record_id).label == 5


def test_a_digit_row_takes_its_digit_as_a_one_character_text_too(store: Store) -> None:
    record_id = store.save(fake(digit=4), source="draw")
    labelled = store.set_label(record_id, "9")
    assert (labelled.label, labelled.label_text) == (9, "9") and labelled.labelled_at is not None
    assert (labelled.text, labelled.is_number) == ("4", False)


def save_number(store: Store, text: str, seed: int = 0, **kwargs) -> int:
    """A number row as mnist.service.save_reading writes it: the weakest digit, the text and every digit's input."""
    inputs = number_inputs(text, seed)
    return store.save(
        fake(digit=int(min(text)), seed=seed), source="number", predicted_text=text, digit_inputs=inputs, **kwargs
    )


def test_number_row_keeps_every_digits_input_exactly(store: Store) -> None:
    inputs = number_inputs("4096", seed=7)
    inputs[0, 0, :3] = [0, 255, 128]
    as_array = store.save(fake(digit=6), source="number", predicted_text="4096", digit_inputs=inputs)
    as_bytes = store.save(fake(digit=6), source="number", predicted_text="4096", digit_inputs=inputs.tobytes())
    for record_id in (as_array, as_bytes):
        record = store.get(record_id)
        assert record.digit_inputs.shape == (4, 28, 28) and record.digit_inputs.dtype == np.uint8
        assert record.digit_inputs.tobytes() == inputs.tobytes()
        assert (record.text, record.is_number, record.label, record.label_text) == ("4096", True, None, None)
        with pytest.raises(ValueError):
            record.digit_inputs[0, 0, 0] = 1  # read-only, like model_input
    without = store.get(store.save(fake(digit=6), source="number", predicted_text="4096"))
    assert without.digit_inputs is None and store.get(store.save(fake(), source="draw")).digit_inputs is None


def test_number_label_set_and_cleared(store: Store) -> None:
    record_id = save_number(store, "4096")
    before = datetime.now(UTC)
    labelled = store.set_label(record_id, "4097")
    assert (labelled.label, labelled.label_text) == (None, "4097")
    assert before <= labelled.labelled_at <= datetime.now(UTC)
    assert store.get(record_id).label_text == "4097"
    assert [r.id for r in store.page(filters=Filters(labelled=True)).items] == [record_id]

    assert store.set_label(record_id, "0040").label_text == "0040"  # leading zeros are part of a text
    assert store.set_label(record_id, "1" * 64).label_text == "1" * 64
    cleared = store.set_label(record_id, None)
    assert (cleared.label, cleared.label_text, cleared.labelled_at) == (None, None, None)
    assert (
        store.page(filters=Filters(labelled=False)).total == 1 and store.page(filters=Filters(labelled=True)).total == 0
    )


@pytest.mark.parametrize(
    ("number", "label", "match"),
    [
        (False, "34", "one digit"),  # a number's text on a digit row
        (True, 4, "text"),  # a digit on a number row, even one of its digits
        (True, 4.0, "label"),
        (True, "40x6", "digits"),
        (True, "40 96", "digits"),
        (True, "1" * 65, "digits"),
        (True, "", "digits"),
        (True, "\u0664\u0660", "digits"),  # Arabic-Indic digits: str.isdigit() says yes, the store says no
    ],
)
def test_a_label_of_the_wrong_kind_is_refused_and_nothing_changes(
    store: Store, number: bool, label: object, match: str
) -> None:
    record_id = save_number(store, "4096") if number else store.save(fake(digit=4), source="draw")
    before = store.set_label(record_id, "4096" if number else 4)
    with pytest.raises(ValueError, match=match):
        store.set_label(record_id, label)
    after = store.get(record_id)
    assert (after.label, after.label_text, after.labelled_at) == (before.label, before.label_text, before.labelled_at)


def test_missing_records_raise_record_not_found(store: Store) -> None:
    for missing in (10**6, 0, -5, 2**80):
        with pytest.raises(RecordNotFound):
            store.get(missing)
        with pytest.raises(RecordNotFound):
            store.set_label(missing, 3)
        with pytest.raises(RecordNotFound):
            store.delete(missing)


def test_delete_removes_one_record(store: Store) -> None:
    keep, gone = store.save(fake(seed=1), source="draw"), store.save(fake(seed=2), source="draw")
    store.delete(gone)
    with pytest.raises(RecordNotFound):
        store.get(gone)
    with pytest.raises(RecordNotFound):
        store.delete(gone)
    assert store.get(keep).id == keep
    assert store.page().total == 1


# --- statistics -----------------------------------------------------------------------------------


def test_stats_on_a_known_set(store: Store) -> None:
    # (predicted, source, confidence, true label)
    rows = [(3, "draw", 0.9, 3), (3, "draw", 0.8, 5), (5, "upload", 0.6, 5), (7, "api", 0.5, None)]
    rows += [(1, "camera", 0.7, 7), (0, "number", 1.0, 0)]
    for i, (digit, source, confidence, label) in enumerate(rows):
        record_id = store.save(fake(digit=digit, confidence=confidence, seed=i), source=source)
        if label is not None:
            store.set_label(record_id, label)

    stats = store.stats()
    assert stats.total == 6
    assert stats.per_digit == [1, 1, 0, 2, 0, 1, 0, 1, 0, 0]
    assert stats.per_source == {"draw": 2, "upload": 1, "camera": 1, "api": 1, "number": 1}
    assert stats.mean_confidence == pytest.approx(0.75)
    assert (stats.labelled, stats.correct, stats.accuracy) == (5, 3, pytest.approx(0.6))
    confusion = [[0] * 10 for _ in range(10)]
    confusion[3][3] = confusion[5][3] = confusion[5][5] = confusion[7][1] = confusion[0][0] = 1
    assert stats.confusion == confusion  # rows are the true label, columns the prediction

    drawn = store.stats(Filters(source="draw"))
    assert (drawn.total, drawn.labelled, drawn.correct, drawn.accuracy) == (2, 2, 1, 0.5)
    assert drawn.mean_confidence == pytest.approx(0.85)

    empty = store.stats(Filters(digit=9))
    assert empty.total == 0 and empty.mean_confidence is None and empty.accuracy is None
    assert empty.per_digit == [0] * 10 and set(empty.per_source.values()) == {0}


def test_stats_count_every_digit_read_and_pair_numbers_place_by_place(store: Store) -> None:
    store.set_label(store.save(fake(digit=3, confidence=0.9, seed=1), source="draw"), 3)
    store.set_label(store.save(fake(digit=5, confidence=0.5, seed=2), source="upload"), 6)
    store.set_label(save_number(store, "4096", seed=3), "4096")
    store.set_label(save_number(store, "140", seed=4), "170")  # the 7 read as a 4
    store.set_label(save_number(store, "2024", seed=5), "224")  # a digit too many: no place pairs up for sure
    save_number(store, "99", seed=6)

    stats = store.stats()
    assert (stats.total, stats.per_source["number"], stats.per_source["draw"]) == (6, 4, 1)
    #                        0  1  2  3  4  5  6  7  8  9
    assert stats.per_digit == [3, 1, 2, 1, 3, 1, 1, 0, 0, 3]  # "4096" adds one to 4, 0, 9 and 6
    confusion = [[0] * 10 for _ in range(10)]
    for true, read in [(3, 3), (6, 5), (4, 4), (0, 0), (9, 9), (6, 6), (1, 1), (7, 4), (0, 0)]:
        confusion[true][read] += 1
    assert stats.confusion == confusion
    assert (stats.labelled, stats.correct, stats.accuracy) == (9, 7, pytest.approx(7 / 9))
    assert (stats.labelled_rows, stats.mismatched_length) == (5, 1)

    numbers = store.stats(Filters(source="number", labelled=True))
    assert (numbers.total, numbers.labelled_rows, numbers.labelled, numbers.mismatched_length) == (3, 3, 7, 1)
    fours = store.stats(Filters(digit=4))  # the rows that read a 4, with all their digits
    assert fours.total == 3 and fours.per_digit == [3, 1, 2, 0, 3, 0, 1, 0, 0, 1]


def test_filters_find_a_digit_or_a_run_of_digits_anywhere_in_what_was_read(store: Store) -> None:
    four, zero = store.save(fake(digit=4), source="draw"), store.save(fake(digit=0), source="draw")
    number, other = save_number(store, "4096"), save_number(store, "140")

    def ids(**filters) -> set[int]:
        return {r.id for r in store.page(filters=Filters(**filters)).items}

    assert ids(digit=4) == {four, number, other} and ids(digit=0) == {zero, number, other}
    assert ids(digit=6) == ids(digit=9) == ids(text="96") == ids(text="409") == {number}
    assert ids(text="40") == {number, other} and ids(text="4") == ids(digit=4)
    assert ids(digit=1) == {other} and ids(digit=7) == ids(text="41") == set()
    assert store.page(filters=Filters(text="4")).total == 3  # the count agrees with the page
    for bad in ("", "4a", "4%", "_", " 4", "1" * 65, 4, "\u0664"):
        with pytest.raises(ValueError, match="text filter"):
            Filters(text=bad)


# --- CSV export -----------------------------------------------------------------------------------


def test_csv_export_parses_back_and_streams_in_chunks(store: Store) -> None:
    names = ["=1+2.png", "+1.png", "-2.png", "@SUM(A1).png", 'plain, "quoted".png']
    ids = [
        store.save(fake(digit=i, seed=i), source="upload", filename=n, latency_ms=i + 0.5, predicted_text=None)
        for i, n in enumerate(names)
    ]
    store.set_label(ids[1], 8)

    chunks = list(store.export_csv(chunk_rows=2))
    assert chunks[0] == ",".join(CSV_COLUMNS) + "\n"
    assert [c.count("\n") for c in chunks[1:]] == [2, 2, 1]  # header, then at most chunk_rows per chunk
    rows = list(csv.DictReader(io.StringIO("".join(chunks))))
    assert [int(r["id"]) for r in rows] == ids[::-1]
    by_id = {int(r["id"]): r for r in rows}
    for record_id in ids:
        record, row = store.get(record_id), by_id[record_id]
        assert datetime.fromisoformat(row["created_at"]) == record.created_at
        assert row["created_at"].endswith("+00:00")
        assert [float(row[f"p{d}"]) for d in range(10)] == record.probabilities
        assert float(row["confidence"]) == record.confidence and int(row["prediction"]) == record.digit
        assert float(row["latency_ms"]) == record.latency_ms and row["model_version"] == "test"
    assert by_id[ids[1]]["label"] == "8" and datetime.fromisoformat(by_id[ids[1]]["labelled_at"]).tzinfo
    assert by_id[ids[0]]["label"] == "" and by_id[ids[0]]["labelled_at"] == ""
    # Formula-looking cells become text; a spreadsheet shows them, it doesn't run them.
    escaped = ["'=1+2.png", "'+1.png", "'-2.png", "'@SUM(A1).png", 'plain, "quoted".png']
    assert [by_id[i]["filename"] for i in ids] == escaped


def test_csv_export_has_each_rows_text_and_label_text(store: Store) -> None:
    digit = store.save(fake(digit=3, seed=1), source="draw")
    store.set_label(digit, 5)
    number = save_number(store, "4096", seed=2)
    store.set_label(number, "0096")
    unlabelled = save_number(store, "77", seed=3)
    rows = {int(r["id"]): r for r in csv.DictReader(io.StringIO("".join(store.export_csv())))}
    assert {c: rows[digit][c] for c in ("prediction", "predicted_text", "text", "label", "label_text")} == {
        "prediction": "3", "predicted_text": "", "text": "3", "label": "5", "label_text": "5",
    }  # fmt: skip
    assert {c: rows[number][c] for c in ("predicted_text", "text", "label", "label_text")} == {
        "predicted_text": "4096", "text": "4096", "label": "", "label_text": "0096",
    }  # fmt: skip
    assert (rows[unlabelled]["text"], rows[unlabelled]["label_text"], rows[unlabelled]["labelled_at"]) == ("77", "", "")


def test_csv_export_keyset_paging_handles_identical_times(store: Store) -> None:
    ids = [store.save(fake(seed=i), source="draw") for i in range(7)]
    for record_id in ids:
        set_created_at(store, record_id, BASE)  # every row the same instant: only id orders them
    exported = [int(r["id"]) for r in csv.DictReader(io.StringIO("".join(store.export_csv(chunk_rows=3))))]
    assert exported == ids[::-1]


def test_csv_export_of_nothing_is_just_the_header(store: Store) -> None:
    assert list(store.export_csv()) == [",".join(CSV_COLUMNS) + "\n"]


# --- bad values -----------------------------------------------------------------------------------


def closed_store() -> Store:
    """A store whose database can't be reached: a ValueError from it proves no query was tried."""
    return Store(f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/nothing")


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda s: s.page(offset=-1), "offset"),
        (lambda s: s.page(limit=0), "limit"),
        (lambda s: s.page(limit=501), "limit"),
        (lambda s: s.page(limit=10**9), "limit"),
        (lambda s: s.page(offset=True), "offset"),
        (lambda s: s.page(offset="5"), "offset"),
        (lambda s: s.save(fake(), source="fax"), "source"),
        (lambda s: s.save(fake(digit=3, confidence=1.5), source="draw"), "confidence"),
        (lambda s: s.save(fake(confidence=float("nan")), source="draw"), "confidence"),
        (lambda s: s.save(types.SimpleNamespace(**{**vars(fake()), "digit": 10}), source="draw"), "digit"),
        (lambda s: s.save(types.SimpleNamespace(**{**vars(fake()), "digit": True}), source="draw"), "digit"),
        (lambda s: s.save(types.SimpleNamespace(**{**vars(fake()), "probabilities": [0.1] * 9}), source="api"), "10"),
        (
            lambda s: s.save(
                types.SimpleNamespace(**{**vars(fake()), "model_input": np.zeros((28, 27), np.uint8)}), source="api"
            ),
            "28x28",
        ),
        (
            lambda s: s.save(
                types.SimpleNamespace(**{**vars(fake()), "model_input": np.zeros((28, 28))}), source="api"
            ),
            "uint8",
        ),
        (lambda s: s.save(types.SimpleNamespace(digit=1), source="api"), "field"),
        (lambda s: s.save(fake(), source="draw", original=b"GIF89a"), "PNG"),
        (lambda s: s.save(fake(), source="draw", original=PNG + bytes(200_000)), "limit"),
        (lambda s: s.save(fake(), source="draw", latency_ms=-1), "latency"),
        (lambda s: s.save(fake(), source="draw", predicted_text="9" * 65), "predicted_text"),
        (lambda s: s.save(fake(), source="number", predicted_text="12a"), "predicted_text"),
        (lambda s: s.save(fake(), source="number", predicted_text=""), "predicted_text"),
        (
            lambda s: s.save(fake(), source="number", predicted_text="12", digit_inputs=number_inputs("123", 0)),
            "2 28x28",
        ),
        (lambda s: s.save(fake(), source="draw", digit_inputs=number_inputs("1", 0)), "predicted_text"),
        (lambda s: s.save(fake(), source="number", predicted_text="1", digit_inputs=b"\x00" * 100), "multiple of 784"),
        (lambda s: s.save(fake(), source="number", predicted_text="1", digit_inputs=b""), "multiple of 784"),
        (
            lambda s: s.save(fake(), source="number", predicted_text="1", digit_inputs=np.zeros((1, 28, 28))),
            "uint8",
        ),
        (lambda s: s.set_label(1, 12), "label"),
        (lambda s: s.set_label(1, "4x"), "label"),
        (lambda s: s.set_label(1, "1" * 65), "label"),
        (lambda s: s.set_label(1, b"7"), "label"),
        (lambda s: Filters(text="4a"), "text"),
        (lambda s: Filters(text=7), "text"),
        (lambda s: s.get("1"), "id"),
        (lambda s: s.export_csv(chunk_rows=0), "chunk_rows"),
        (lambda s: Filters(digit=10), "digit"),
        (lambda s: Filters(digit=-1), "digit"),
        (lambda s: Filters(source="fax"), "source"),
        (lambda s: Filters(labelled="yes"), "labelled"),
        (lambda s: Filters(min_confidence=1.5), "min_confidence"),
        (lambda s: Filters(max_confidence=-0.1), "max_confidence"),
        (lambda s: Filters(since="2024-01-01"), "since"),
        (lambda s: Filters(verdict="maybe"), "verdict"),
        (lambda s: s.save(fake(verdict="probably"), source="draw"), "verdict"),
    ],
)
def test_bad_values_are_rejected_before_the_database(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call(closed_store())


def test_filters_must_be_a_filters_object() -> None:
    with pytest.raises(TypeError, match="Filters"):
        closed_store().page(filters={"digit": 3})


# --- hostile filenames ----------------------------------------------------------------------------

HOSTILE = [
    ("../../etc/passwd", "passwd"),
    ("C:\\x\\y.png", "y.png"),
    ("/abs/path/to/seven.png", "seven.png"),
    ("a\x00b\x1f\x7fc.png", "abc.png"),
    ("line\nbreak\r.png", "linebreak.png"),
    ("\u202egnp.exe", "gnp.exe"),  # right-to-left override: would display as "exe.png"
    ("..", None),
    ("dir/", "dir"),
    ("   ", None),
    ("", None),
    ("sieben-ß-七.png", "sieben-ß-七.png"),
]


@pytest.mark.parametrize(("name", "want"), HOSTILE)
def test_sanitize_filename(name: str, want: str | None) -> None:
    assert sanitize_filename(name) == want


def test_hostile_filenames_are_stored_safely(store: Store) -> None:
    long_name = "x" * 10_240
    cases = [name for name, _ in HOSTILE] + ["<script>alert(1)</script>.png", long_name, "y" * 10_000 + ".png"]
    for name in cases:
        record = store.get(store.save(fake(), source="upload", filename=name))
        assert record.filename == sanitize_filename(name)
        if record.filename is not None:
            assert len(record.filename) <= 255
            assert not any(ch in record.filename for ch in "/\\\x00\n\r")
    assert store.get(store.save(fake(), source="upload", filename=long_name)).filename == "x" * 255
    kept_ext = store.get(store.save(fake(), source="upload", filename="y" * 10_000 + ".png")).filename
    assert len(kept_ext) == 255 and kept_ext.endswith(".png")
    script = store.get(store.save(fake(), source="upload", filename="<script>alert(1)</script>.png")).filename
    assert script == "script>.png"  # base name only; escaping for HTML is the page's job


# --- faults ---------------------------------------------------------------------------------------

EVERY_CALL = {
    "save": lambda s: s.save(fake(), source="draw"),
    "get": lambda s: s.get(1),
    "latest": lambda s: s.latest(),
    "page": lambda s: s.page(filters=Filters(digit=3)),
    "set_label": lambda s: s.set_label(1, 3),
    "delete": lambda s: s.delete(1),
    "stats": lambda s: s.stats(),
    "export_csv": lambda s: list(s.export_csv()),
    "migrate": lambda s: s.migrate(),
}


@pytest.mark.parametrize("name", EVERY_CALL)
def test_closed_port_raises_store_unavailable_quickly(name: str) -> None:
    store = Store(f"postgresql+psycopg2://postgres:hunter2@127.0.0.1:{free_port()}/history")
    error, seconds = elapsed(lambda: EVERY_CALL[name](store))
    assert isinstance(error, StoreUnavailable), error
    assert seconds < LIVENESS_SECONDS
    assert "hunter2" not in str(error) and "127.0.0.1" in str(error)
    assert store.ping() is False


def test_silent_server_times_out_within_the_limit() -> None:
    """A host that accepts TCP but never answers (a hung server, a firewall black hole)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel completes handshakes; nobody ever reads
        store = Store(f"postgresql+psycopg2://postgres@127.0.0.1:{silent.getsockname()[1]}/history")
        for call in (EVERY_CALL["save"], EVERY_CALL["page"]):
            error, seconds = elapsed(lambda c=call: c(store))
            assert isinstance(error, StoreUnavailable), error
            assert seconds < LIVENESS_SECONDS


def outage_events(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("database_outage_")]


def test_a_hung_server_costs_one_call_its_timeout_then_calls_fail_at_once(caplog) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # handshakes complete, nothing ever answers: a server stopped by SIGSTOP looks like this
        store = Store(f"postgresql+psycopg2://postgres@127.0.0.1:{silent.getsockname()[1]}/h", save_timeout=0.3)
        store.PROBE_SECONDS = 3600.0  # no probe during this test: every call after the first is refused at once
        error, _ = elapsed(lambda: store.save(fake(), source="draw"))
        assert isinstance(error, StoreUnavailable) and error.reason == "timeout" and "0.3 s" in str(error)
        assert store.outage is not None and store.outage.reason == "timeout"
        for call in (EVERY_CALL["get"], EVERY_CALL["page"], EVERY_CALL["stats"], EVERY_CALL["save"]):
            error, _ = elapsed(lambda c=call: c(store))
            assert isinstance(error, StoreUnavailable) and error.reason == "outage", error
        assert store.ping() is False
        assert outage_events(caplog) == ["database_outage_started"]  # once, not once per call


def test_during_an_outage_one_call_a_probe_tries_the_database_and_ends_it(tmp_path: Path, caplog) -> None:
    blocker = tmp_path / "db"
    blocker.write_text("a file where the database directory should be")
    store = Store(f"sqlite:///{blocker / 'history.sqlite3'}")
    store.PROBE_SECONDS = 0.2
    assert isinstance(elapsed(store.migrate)[0], StoreUnavailable)
    assert elapsed(store.latest)[0].reason == "outage"  # refused without trying
    blocker.unlink()
    blocker.mkdir()
    deadline = time.monotonic() + LIVENESS_SECONDS
    while not store.ping():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert store.outage is None
    assert outage_events(caplog) == ["database_outage_started", "database_outage_ended"]
    ended = next(r for r in caplog.records if r.getMessage() == "database_outage_ended")
    assert ended.fields["seconds"] > 0 and ended.fields["database"] == store.describe()


def wait_for_the_outage_to_end(store: Store) -> None:
    """The abandoned call's thread reports back when the database finally answers it."""
    deadline = time.monotonic() + LIVENESS_SECONDS
    while store.outage is not None:
        assert time.monotonic() < deadline, "the abandoned call never finished"
        time.sleep(0.05)


def count_rows(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM predictions")).scalar_one()
    finally:
        engine.dispose()


def test_a_save_its_caller_gave_up_on_is_rolled_back(postgres_url: str) -> None:
    store = Store(postgres_url, save_timeout=0.3, history_timeout=30)
    store.migrate()
    admin = sa.create_engine(postgres_url)
    try:
        with admin.connect() as conn:
            conn.execute(text("LOCK TABLE predictions IN EXCLUSIVE MODE"))  # every INSERT waits for this transaction
            error, _ = elapsed(lambda: store.save(fake(), source="draw"))
            assert isinstance(error, StoreUnavailable) and error.reason == "timeout"
            conn.rollback()  # the INSERT goes through now, and its caller is gone
        wait_for_the_outage_to_end(store)
        assert count_rows(postgres_url) == 0  # rolled back: the caller said "not saved", and it was not
        assert store.save(fake(), source="draw") >= 1
    finally:
        admin.dispose()
        store.engine.dispose()


def test_a_commit_that_lands_after_its_caller_gave_up_is_logged_with_its_row(postgres_url: str, caplog) -> None:
    store = Store(postgres_url, save_timeout=0.3, history_timeout=30)
    store.migrate()
    make_commits_slow(postgres_url, 1.0)  # the hang is in COMMIT itself, after the last chance to roll back
    try:
        error, _ = elapsed(lambda: store.save(fake(), source="draw"))
        assert isinstance(error, StoreUnavailable) and error.reason == "timeout"
        wait_for_the_outage_to_end(store)
        (row_id,) = [r.id for r in store.page().items]
        late = [r.fields["change"] for r in caplog.records if r.getMessage() == "late_commit"]
        assert late == [f"saved #{row_id}"]
    finally:
        store.engine.dispose()


def test_unusable_sqlite_path_raises_store_unavailable(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    store = Store(f"sqlite:///{tmp_path / 'a-file' / 'history.sqlite3'}")
    for name in ("save", "latest", "page", "stats"):
        error, _ = elapsed(lambda n=name: EVERY_CALL[n](store))
        assert isinstance(error, StoreUnavailable), error


class TcpProxy:
    """127.0.0.1:port -> target, so a test can take "the database" away and bring it back."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.port, self.target = port, target
        self.sockets: list[socket.socket] = []
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        self.running = True
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(16)
        self.listener.settimeout(0.1)
        self._spawn(self._accept)

    def stop(self) -> None:
        self.running = False
        for s in [self.listener, *self.sockets]:
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        for t in self.threads:
            t.join(timeout=5)
        self.sockets, self.threads = [], []

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _accept(self) -> None:
        while self.running:
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            self._spawn(self._pump, client, upstream)
            self._spawn(self._pump, upstream, client)

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


def test_same_store_recovers_when_the_database_comes_back(postgres_url: str) -> None:
    real = make_url(postgres_url)
    proxy = TcpProxy(free_port(), (real.host or "127.0.0.1", real.port or 5432))
    proxy.start()
    store = Store(real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False))
    try:
        store.migrate()
        first = store.save(fake(seed=1), source="draw")

        proxy.stop()  # the database "goes down" under a pool holding live connections
        for call in (lambda: store.save(fake(seed=2), source="draw"), lambda: store.get(first), store.stats):
            error, seconds = elapsed(call)
            assert isinstance(error, StoreUnavailable), error
            assert seconds < LIVENESS_SECONDS
        assert store.ping() is False

        proxy.start()  # same port, same Store object, no restart
        deadline = time.monotonic() + LIVENESS_SECONDS
        while not store.ping():  # calls fail at once during the outage; a probe a second tries the database
            assert time.monotonic() < deadline, "the store never noticed the database was back"
            time.sleep(0.1)
        assert store.outage is None
        second = store.save(fake(seed=3), source="draw")
        assert store.get(first).id == first and store.latest().id == second
        assert store.page().total == 2 and store.ping() is True

        proxy.stop()  # a blip nobody noticed: the pool still holds connections that died meanwhile
        proxy.start()
        third = store.save(fake(seed=4), source="draw")  # pre-ping replaces them; this first call succeeds
        assert store.latest().id == third
    finally:
        store.engine.dispose()
        proxy.stop()


def test_describe_never_shows_the_password(tmp_path: Path) -> None:
    store = Store("postgresql+psycopg2://alice:hunter2@db.example.org:6543/history")
    assert store.describe() == "PostgreSQL db.example.org:6543/history"
    assert "hunter2" not in repr(store)
    assert Store("postgresql+psycopg2://alice:pw@db/history").describe() == "PostgreSQL db:5432/history"
    path = tmp_path / "h.sqlite3"
    assert Store(f"sqlite:///{path}").describe() == f"SQLite {path}"


def test_invalid_url_is_a_value_error_without_the_secret() -> None:
    with pytest.raises(ValueError) as caught:
        Store("not a url with hunter2")
    assert "hunter2" not in str(caught.value)


# --- concurrency ----------------------------------------------------------------------------------


def save_concurrently(store: Store, threads: int, each: int) -> tuple[list[int], list[BaseException]]:
    ids: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def work(n: int) -> None:
        start.wait()
        try:
            for i in range(each):
                ids.append(store.save(fake(digit=(n + i) % 10, seed=i), source=SOURCES[n % len(SOURCES)]))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return ids, errors


@pytest.mark.slow
def test_eight_threads_save_exactly_2000_rows(postgres_url: str) -> None:
    store = Store(postgres_url)
    store.migrate()
    store.save(fake(), source="draw")  # an existing row, so "new rows" is a difference
    ids, errors = save_concurrently(store, threads=8, each=250)
    assert errors == []
    assert len(ids) == 2000 and len(set(ids)) == 2000
    with store.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(PredictionRow)) == 2001
    assert store.page().total == 2001 and store.stats().total == 2001
    store.engine.dispose()


def test_threads_share_one_store(store: Store) -> None:
    ids, errors = save_concurrently(store, threads=4, each=25)
    assert errors == [] and len(set(ids)) == 100 and store.page().total == 100


def concurrent_saves(store: Store, saves: list[dict]) -> list[int | BaseException]:
    """Each save's keyword arguments on a thread of its own, all released at once; -> each one's id or error."""
    start = threading.Barrier(len(saves))
    outcomes: list[int | BaseException] = [RuntimeError("never ran")] * len(saves)

    def work(i: int) -> None:
        start.wait()
        try:
            outcomes[i] = store.save(fake(digit=i % 10, seed=i), **saves[i])
        except BaseException as exc:  # noqa: BLE001 - the caller asserts on it
            outcomes[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(saves))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_concurrent_saves_share_transactions_and_each_caller_gets_its_own_row(database_url: str) -> None:
    store = Store(database_url)
    store.migrate()
    commits = []
    event.listen(store.engine, "commit", lambda _conn: commits.append(1))
    try:
        saves = [{"source": "api", "filename": f"group_{i}.png"} for i in range(32)]
        ids = concurrent_saves(store, saves)
        assert all(isinstance(i, int) for i in ids) and len(set(ids)) == 32
        for i, record_id in enumerate(ids):  # the id a caller got is the row it saved (order kept in the INSERT)
            record = store.get(record_id)
            assert record.filename == f"group_{i}.png" and record.digit == i % 10
        assert store.page().total == 32
        assert len(commits) < 32  # group commit: several saves per transaction
    finally:
        store.engine.dispose()


def test_an_idempotency_conflict_in_a_group_fails_alone(database_url: str) -> None:
    store = Store(database_url)
    store.migrate()
    try:
        first = store.save(fake(), source="api", idempotency=("c" * 64, "a" * 64))
        saves = [{"source": "api", "filename": f"ok_{i}.png"} for i in range(15)]
        saves.insert(7, {"source": "api", "idempotency": ("c" * 64, "b" * 64)})  # the same key, another request
        saves.insert(3, {"source": "api", "idempotency": ("c" * 64, "a" * 64)})  # a retry of the first
        outcomes = concurrent_saves(store, saves)
        assert isinstance(outcomes[8], IdempotencyConflict)
        assert outcomes[3] == first
        rest = [o for i, o in enumerate(outcomes) if i not in (3, 8)]
        assert all(isinstance(o, int) for o in rest) and len(set(rest)) == 15
        assert store.page().total == 16
    finally:
        store.engine.dispose()


# --- boundaries -----------------------------------------------------------------------------------


def test_store_module_needs_neither_torch_nor_pickle() -> None:
    source = (ROOT / "mnist" / "store.py").read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert not {m for m in imported if m.split(".")[0] in {"torch", "pickle", "streamlit"} or m == "mnist.predict"}


def test_one_provider_per_url_and_a_malformed_url_turns_the_history_off(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'history.sqlite3'}"
    assert shared_provider(url) is shared_provider(url)  # the API and the dashboard get the same one
    assert shared_provider(url).get().page().total == 0  # migrated on first use
    bad = StoreProvider(url="postgres ql://user:s3cret@db/history")
    assert bad.store() is None and bad.get_or_none() is None and bad.ready() is False
    with pytest.raises(StoreUnavailable) as caught:
        bad.get()
    assert "s3cret" not in str(caught.value) and "history is off" in str(caught.value)


def test_light_engine_modules_import_without_torch() -> None:
    """The store, errors and settings cost what they cost, not torch's 3 s: the pages import them at the top."""
    check = "import mnist.store, mnist.errors, mnist.config, sys; assert 'torch' not in sys.modules, 'torch loaded'"
    done = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_a_keyed_save_is_stored_once_whatever_the_number_of_tries(store: Store) -> None:
    key, digest, other = "a" * 64, "b" * 64, "c" * 64
    first = store.save(fake(seed=1), source="api", idempotency=(key, digest))
    assert store.save(fake(seed=1), source="api", idempotency=(key, digest)) == first
    with pytest.raises(IdempotencyConflict):
        store.save(fake(seed=2), source="api", idempotency=(key, other))
    unkeyed = [store.save(fake(seed=3), source="api") for _ in range(2)]  # no key: each save is a row
    assert len(set(unkeyed)) == 2 and store.page().total == 3
    for bad in (("short", digest), (key,), (key.upper(), digest), "ab"):
        with pytest.raises(ValueError, match="idempotency"):
            store.save(fake(), source="api", idempotency=bad)


def test_confidence_bounds_are_inclusive(store: Store) -> None:
    ids = [store.save(fake(digit=1, confidence=c), source="draw") for c in (0.0, 0.5, 1.0)]
    assert [r.id for r in store.page(filters=Filters(min_confidence=1.0)).items] == [ids[2]]
    assert [r.id for r in store.page(filters=Filters(max_confidence=0.0)).items] == [ids[0]]
    assert math.isclose(store.stats().mean_confidence, 0.5)
