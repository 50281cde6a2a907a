"""History store latency on PostgreSQL at 100,000 rows: save() p50/p99, filtered page() of 50, stats().

    python -m benchmarks.store_bench [--rows 100000] [--saves 1000]

Uses TEST_DATABASE_URL's server (default postgresql+psycopg2://postgres@127.0.0.1:5432/test), in a database
of its own that it creates and drops. Targets (issue 3): save p50 <= 5 ms; a filtered page of 50 <= 50 ms.
"""

from __future__ import annotations

import argparse
import os
import time
import types
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from mnist.store import SOURCES, Filters, PredictionRow, Store

DEFAULT_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
NOW = datetime.now(UTC)
PNG = b"\x89PNG\r\n\x1a\n" + np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes()  # ~3 KB


def fake_rows(n: int, rng: np.random.Generator) -> list[dict]:
    """Rows shaped like real traffic: 90 days, mostly drawings, 10% labelled, confident predictions."""
    digits = rng.integers(0, 10, n)
    confidence = 1 - rng.beta(0.6, 6, n)  # most near 1, a tail of unsure ones
    ages = rng.random(n) * 90 * 86400
    sources = rng.choice(SOURCES, n, p=[0.5, 0.25, 0.1, 0.1, 0.05])
    labelled = rng.random(n) < 0.1
    images = rng.integers(0, 256, (n, 784), dtype=np.uint8)
    rows = []
    for i in range(n):
        probs = [0.0] * 10
        probs[int(digits[i])] = float(confidence[i])
        probs[(int(digits[i]) + 1) % 10] = 1 - float(confidence[i])
        created = NOW - timedelta(seconds=float(ages[i]))
        label = (int(digits[i]) if rng.random() < 0.9 else int(rng.integers(0, 10))) if labelled[i] else None
        rows.append(
            {
                "created_at": created,
                "source": str(sources[i]),
                "filename": f"digit-{i}.png",
                "model_input": images[i].tobytes(),
                "original": PNG,
                "digit": int(digits[i]),
                "predicted_text": None,
                "confidence": float(confidence[i]),
                "probabilities": probs,
                "model_version": "bench",
                "latency_ms": 5.0,
                "label": label,
                "labelled_at": created if label is not None else None,
            }
        )
    return rows


def timed(call, repeat: int) -> list[float]:
    """Milliseconds per call."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    """Create a database, fill it, time the store, print the table, drop the database."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--saves", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=50, help="timed calls per page() filter")
    args = parser.parse_args()

    base = make_url(os.environ.get("TEST_DATABASE_URL", "").strip() or DEFAULT_URL)
    name = f"mnist_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    store = Store(base.set(database=name).render_as_string(hide_password=False))
    try:
        run(store, args)
    finally:
        store.engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run(store: Store, args: argparse.Namespace) -> None:
    """The measurements; prints as it goes so a slow machine shows progress."""
    print(f"store: {store.describe()}  rows: {args.rows:,}  saves: {args.saves:,}")
    store.migrate()
    rng = np.random.default_rng(1)
    started = time.perf_counter()
    for start in range(0, args.rows, 5000):  # bulk setup; the timed saves below go through save()
        with store.engine.begin() as conn:
            conn.execute(insert(PredictionRow), fake_rows(min(5000, args.rows - start), rng))
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE predictions"))  # what autovacuum does soon after a bulk load
        size = conn.scalar(text("SELECT pg_size_pretty(pg_total_relation_size('predictions'))"))
    print(f"bulk insert + VACUUM ANALYZE: {time.perf_counter() - started:.1f} s, table size {size}\n")

    results: list[tuple[str, list[float], float | None]] = []
    image = rng.integers(0, 256, (28, 28), dtype=np.uint8)
    probabilities = [0.003] * 7 + [0.973] + [0.003] * 2
    prediction = types.SimpleNamespace(
        digit=7, confidence=0.973, probabilities=probabilities, model_input=image, model_version="bench"
    )
    save = lambda: store.save(prediction, source="draw", filename="seven.png", original=PNG, latency_ms=4.2)  # noqa: E731
    timed(save, 20)  # warm the pool
    results.append(("save() one row, PNG thumbnail", timed(save, args.saves), 5.0))

    week_ago = NOW - timedelta(days=7)
    filters = {
        "none": Filters(),
        "digit=7": Filters(digit=7),
        "source=upload": Filters(source="upload"),
        "labelled=True": Filters(labelled=True),
        "labelled=False": Filters(labelled=False),
        "last 7 days": Filters(since=week_ago, until=NOW + timedelta(hours=1)),
        "confidence 0.5..0.8": Filters(min_confidence=0.5, max_confidence=0.8),
        "digit+source+7 days": Filters(digit=3, source="draw", since=week_ago),
        "labelled+conf<0.9": Filters(labelled=True, max_confidence=0.9),
    }
    for label, f in filters.items():
        store.page(0, 50, f)
        total = store.page(0, 50, f).total
        results.append(
            (f"page(0, 50) {label} [{total:,} match]", timed(lambda f=f: store.page(0, 50, f), args.repeat), 50.0)
        )
    results.append(("page(5000, 50) digit=7 (deep)", timed(lambda: store.page(5000, 50, Filters(digit=7)), 20), None))
    results.append(("stats() all rows", timed(store.stats, 10), None))
    results.append(("stats() digit=7", timed(lambda: store.stats(Filters(digit=7)), 10), None))
    export_ms = timed(lambda: sum(len(c) for c in store.export_csv(Filters(labelled=True))), 3)
    results.append(("export_csv() labelled rows, all chunks", export_ms, None))

    width = max(len(r[0]) for r in results)
    print(f"{'operation':<{width}}  {'n':>5}  {'p50 ms':>8}  {'p99 ms':>8}  {'target':>8}  ok")
    print("-" * (width + 42))
    for label, times, target in results:
        p50, p99 = np.percentile(times, [50, 99])
        verdict = "" if target is None else ("yes" if p50 <= target else "NO")
        goal = "" if target is None else f"<={target:g}"
        print(f"{label:<{width}}  {len(times):>5}  {p50:>8.2f}  {p99:>8.2f}  {goal:>8}  {verdict}")


if __name__ == "__main__":
    main()
