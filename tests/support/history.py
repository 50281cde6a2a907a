"""History rows with known contents, and the History filters evaluated in Python to check the database's."""

from __future__ import annotations

import types
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import create_engine, text, update

from mnist.results import VERDICTS
from mnist.store import SOURCES, Filters, PredictionRow, Store

BASE = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def fake(
    digit: int = 3, confidence: float | None = None, seed: int = 0, verdict: str = "digit", model_version: str = "test"
) -> types.SimpleNamespace:
    """A prediction-shaped object with random but reproducible contents (no model, no torch)."""
    rng = np.random.default_rng(seed)
    probabilities = rng.random(10)
    probabilities[digit] += 10
    probabilities = (probabilities / probabilities.sum()).tolist()
    return types.SimpleNamespace(
        digit=digit,
        confidence=probabilities[digit] if confidence is None else confidence,
        probabilities=probabilities,
        model_input=rng.integers(0, 256, size=(28, 28), dtype=np.uint8),
        model_version=model_version,
        verdict=verdict,
    )


def set_created_at(store: Store, record_id: int, when: datetime) -> None:
    """Move a row in time: save() stamps now, the date filters need rows days apart."""
    with store.engine.begin() as conn:
        conn.execute(update(PredictionRow).where(PredictionRow.id == record_id).values(created_at=when))


def make_commits_slow(database_url: str, seconds: float) -> None:
    """PostgreSQL: every COMMIT that inserted a prediction first sleeps `seconds` (a deferred trigger runs at COMMIT).

    So a test can catch a save while its COMMIT is in flight: kill the process or stop waiting for it there.
    """
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            body = f"BEGIN PERFORM pg_sleep({float(seconds)}); RETURN NULL; END"
            conn.execute(text(f"CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS '{body}'"))
            conn.execute(
                text(
                    "CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON predictions "
                    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()"
                )
            )
    finally:
        engine.dispose()


# Whole numbers read, and their true text (None: unlabelled): a digit twice, leading zeros, a digit missed.
NUMBERS = [("4096", "4096"), ("140", None), ("7", "1"), ("007", "008"), ("2024", "224"), ("99", None)]


def number_inputs(text: str, seed: int) -> np.ndarray:
    """(len(text), 28, 28) uint8: a number row's digit inputs, random but reproducible."""
    return np.stack([fake(int(c), seed=seed * 100 + i).model_input for i, c in enumerate(text)])


def seed_known(store: Store) -> list[dict]:
    """30 digit rows with varied digit, source, confidence, label and time (pairs share a timestamp), then
    the NUMBERS as number rows among them; each row's "text" is what it read, its "label" its true text."""
    rows = []
    for i in range(30):
        digit = i % 10
        row = {
            "digit": digit,
            "source": SOURCES[i % len(SOURCES)],
            "confidence": (i * 7 % 20) / 19,  # 0 .. 1 inclusive, scrambled against digit and time
            "label": None if i % 3 else (digit if i % 2 else (digit + 1) % 10),
            "created_at": BASE + timedelta(hours=i // 2),
            "verdict": VERDICTS[i * 3 % len(VERDICTS)],
            "model_version": "ft-1" if i % 4 == 1 else "test",  # a fine-tuned version read some
        }
        prediction = fake(
            digit=digit,
            confidence=row["confidence"],
            seed=i,
            verdict=row["verdict"],
            model_version=row["model_version"],
        )
        row["id"] = store.save(prediction, source=row["source"])
        set_created_at(store, row["id"], row["created_at"])
        if row["label"] is not None:
            store.set_label(row["id"], row["label"])
        row["text"] = str(digit)
        rows.append(row)
    for i, (read, truth) in enumerate(NUMBERS):
        weakest = min(read)  # a number row stands on its least certain digit: any of its digits will do here
        row = {"text": read, "digit": int(weakest), "source": "number", "confidence": (i * 3 % 7) / 6}
        row |= {"label": truth, "created_at": BASE + timedelta(hours=2 * i + 1, minutes=30), "verdict": "digit"}
        row["model_version"] = "ft-1" if i % 2 else "test"
        prediction = fake(
            digit=row["digit"], confidence=row["confidence"], seed=100 + i, model_version=row["model_version"]
        )
        row["id"] = store.save(
            prediction, source="number", predicted_text=read, digit_inputs=number_inputs(read, seed=i)
        )
        set_created_at(store, row["id"], row["created_at"])
        if truth is not None:
            store.set_label(row["id"], truth)
        rows.append(row)
    return rows


def expected_ids(rows: list[dict], f: Filters) -> list[int]:
    """The same filters, evaluated in Python, newest first with id breaking ties."""

    def keep(r: dict) -> bool:
        return (
            (f.digit is None or str(f.digit) in r["text"])
            and (f.text is None or f.text in r["text"])
            and (f.source is None or r["source"] == f.source)
            and (f.labelled is None or (r["label"] is not None) == f.labelled)
            and (f.since is None or r["created_at"] >= f.since)
            and (f.until is None or r["created_at"] < f.until)
            and (f.min_confidence is None or r["confidence"] >= f.min_confidence)
            and (f.max_confidence is None or r["confidence"] <= f.max_confidence)
            and (f.verdict is None or r["verdict"] == f.verdict)
            and (f.model_version is None or r["model_version"] == f.model_version)
        )

    chosen = sorted((r for r in rows if keep(r)), key=lambda r: (r["created_at"], r["id"]), reverse=True)
    return [r["id"] for r in chosen]


EVERY_FILTER = [
    Filters(),
    Filters(digit=0),
    Filters(digit=7),
    Filters(digit=4),
    Filters(digit=9, labelled=True),
    Filters(text="0"),
    Filters(text="40"),
    Filters(text="007"),
    Filters(text="96", source="number"),
    Filters(text="12345"),  # matches nothing
    *[Filters(source=s) for s in SOURCES],
    Filters(labelled=True),
    Filters(labelled=False),
    Filters(since=BASE + timedelta(hours=5)),
    Filters(until=BASE + timedelta(hours=5)),
    Filters(since=BASE + timedelta(hours=3), until=BASE + timedelta(hours=9)),
    Filters(since=datetime(2024, 3, 1, 17), until=datetime(2024, 3, 1, 20)),  # naive = UTC
    Filters(min_confidence=0.5),
    Filters(max_confidence=0.3),
    Filters(min_confidence=0.2, max_confidence=0.6),
    Filters(min_confidence=1.0),
    Filters(digit=3, labelled=True),
    Filters(source="camera", since=BASE + timedelta(hours=2), until=BASE + timedelta(hours=12)),
    Filters(labelled=False, min_confidence=0.4),
    Filters(digit=4, source="number", labelled=False, since=BASE, until=BASE + timedelta(days=1), max_confidence=1),
    Filters(digit=9, source="draw"),  # matches nothing
    *[Filters(verdict=v) for v in VERDICTS],
    Filters(verdict="not_a_digit", labelled=False, min_confidence=0.3),
    Filters(model_version="ft-1"),
    Filters(model_version="test", labelled=True),
    Filters(model_version="ft-1", source="number"),
    Filters(model_version="ft-2"),  # matches nothing
]
