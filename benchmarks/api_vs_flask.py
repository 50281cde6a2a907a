"""This project against the original Flask service, side by side on PostgreSQL, loopback only.

    python -m benchmarks.api_vs_flask [--rounds 2] [--clients 16] [--duration 20]

Starts both (this project exactly as `make run` does; the original as benchmarks/flask_original
reproduces it), each on its own throwaway database of the PostgreSQL server at --postgres, and
posts the seed client's sample image to POST /image-predict from keep-alive clients, alternating
rounds (who goes first alternates too). Prints each round's requests/s, p50, p99 and the rows the
database gained against the saves the clients were told about, then the ratios. Exits 1 when either
side lost or duplicated a row or answered with an error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path

import psycopg2
from sqlalchemy.engine import make_url

from benchmarks import flask_original
from benchmarks.api_load import Figures, free_port, make_run, measure, percentile, serving
from mnist.api.schemas import SAMPLE_IMAGE_BASE64
from mnist.store import Store

ROOT = Path(__file__).resolve().parent.parent
SEED_BODY = json.dumps({"image": SAMPLE_IMAGE_BASE64, "filename": "request_test.png"}).encode()


@contextmanager
def throwaway_database(server_url: str, name: str) -> Iterator[str]:
    """CREATE DATABASE `name` on the server, yield its SQLAlchemy URL, DROP it afterwards."""
    admin = flask_original.dsn_of(server_url)
    conn = psycopg2.connect(admin)
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with conn.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


def original_service(port: int, database_url: str, log_path: Path) -> AbstractContextManager[str]:
    """The Flask reproduction on `port` (its prints go to the log), until the block ends."""
    command = [sys.executable, "-m", "benchmarks.flask_original", "--port", str(port), "--database-url", database_url]
    return serving(command, port, None, log_path, 120, path="/image-predict")


def summary(name: str, rounds: list[Figures]) -> str:
    rates = " and ".join(f"{f.throughput:.0f}" for f in rounds)
    p50 = " / ".join(f"{percentile(f.latencies_ms, 50):.1f}" for f in rounds)
    p99 = " / ".join(f"{percentile(f.latencies_ms, 99):.1f}" for f in rounds)
    rows = " / ".join(f"{f.gained}/{f.saved}" for f in rounds)
    return f"{name:10} {rates:>16} req/s   p50 {p50} ms   p99 {p99} ms   rows/acknowledged {rows}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default="postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per round and side (max 300)")
    parser.add_argument("--warmup", type=float, default=3.0)
    args = parser.parse_args()
    if not 1 <= args.rounds <= 10 or not 1 <= args.clients <= 128 or not 0 < args.duration <= 300:
        parser.error("--rounds 1..10, --clients 1..128, --duration 0..300 s")
    tag = uuid.uuid4().hex[:8]
    bodies = [SEED_BODY]
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        ours_db = stack.enter_context(throwaway_database(args.postgres, f"bench_ours_{tag}"))
        theirs_db = stack.enter_context(throwaway_database(args.postgres, f"bench_flask_{tag}"))
        env = {**os.environ, "DATABASE_URL": ours_db}
        env.pop("MNIST_API_TOKEN", None)
        store = Store(ours_db)
        ours_url = stack.enter_context(make_run(free_port(), env, Path(tmp) / "ours.log"))
        theirs_url = stack.enter_context(original_service(free_port(), theirs_db, Path(tmp) / "flask.log"))
        theirs_dsn = flask_original.dsn_of(theirs_db)
        sides: dict[str, tuple[str, Callable[[], int], Callable[[dict], bool]]] = {
            "this": (ours_url, lambda: store.page(0, 1).total, lambda answer: answer.get("saved") is True),
            # The original answers 200 only after its commit: every answer is an acknowledged save.
            "original": (
                theirs_url,
                lambda: flask_original.count_rows(theirs_dsn),
                lambda answer: "prediction" in answer,
            ),
        }
        results: dict[str, list[Figures]] = {name: [] for name in sides}
        print(f"POST /image-predict, the seed's sample image, {args.clients} keep-alive clients, "
              f"{args.duration:.0f} s per side and round, PostgreSQL {make_url(args.postgres).host}")  # fmt: skip
        for round_number in range(args.rounds):
            order = list(sides) if round_number % 2 == 0 else list(reversed(sides))
            for name in order:
                url, count, saved_when = sides[name]
                figures = measure(url, count, bodies, args.clients, args.duration, args.warmup, saved_when, watch=False)
                results[name].append(figures)
                print()
                figures.print(f"round {round_number + 1}: {name}  {url}/image-predict", name)
        store.engine.dispose()
    print()
    for name, rounds in results.items():
        print(summary(name, rounds))
    pairs = zip(results["this"], results["original"], strict=True)
    ratios = [ours.throughput / theirs.throughput for ours, theirs in pairs]
    print("ratio      " + " and ".join(f"{r:.2f}x" for r in ratios) + " the original's requests/s")
    return 0 if all(f.passed for rounds in results.values() for f in rounds) else 1


if __name__ == "__main__":
    sys.exit(main())
