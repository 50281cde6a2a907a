"""Steady load on a running server, every answer recorded with when it was sent and how long it took.

Predicting clients post real MNIST digits to /image-predict, each with a unique filename (so the row
it made can be found), and may send an Idempotency-Key; pollers ask /api/v1/health and a history
page. The fault-injection tests and benchmarks/faults.py read the recorded answers afterwards.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import create_engine, text

from tests.support.api import b64, png
from tests.support.sample import mnist_sample


@dataclass(frozen=True)
class Answer:
    """One request: what, when (time.monotonic()), how long, and what came back (status None: no answer)."""

    kind: str  # "predict", "health" or "history"
    sent: float
    seconds: float
    status: int | None
    body: dict | list | None
    filename: str | None = None


def digit_bodies(count: int = 40) -> list[str]:
    """Base64 PNGs of real MNIST test digits, black on white like the original client's."""
    images = mnist_sample()[0][:count]
    return [b64(png(255 - pixels)) for pixels in images]


class Load:
    """Clients and pollers against 127.0.0.1:port until stopped; `answers` holds everything they saw."""

    def __init__(self, port: int, phase: str, *, clients: int = 4, idempotent: bool = False) -> None:
        self.port, self.phase, self.clients, self.idempotent = port, phase, clients, idempotent
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._images = digit_bodies()

    def start(self) -> None:
        targets: list[tuple[Callable[..., None], tuple]] = [(self._predict, (n,)) for n in range(self.clients)]
        targets += [
            (self._poll, ("health", "/api/v1/health", 0.2)),
            (self._poll, ("history", "/api/v1/predictions?limit=5", 0.3)),
        ]
        for target, args in targets:
            thread = threading.Thread(target=target, args=args, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        assert not any(t.is_alive() for t in self._threads), "a client hung"

    def _request(self, conn: http.client.HTTPConnection, method: str, path: str, body: str | None, headers: dict):
        conn.request(method, path, body, headers)
        response = conn.getresponse()
        data = response.read()
        try:
            return response.status, json.loads(data) if data else None
        except ValueError:
            return response.status, None

    def _record(self, answer: Answer) -> None:
        with self._lock:
            self.answers.append(answer)

    def _predict(self, number: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        n = 0
        while not self._stop.is_set() and n < 10_000:
            filename = f"{self.phase}-{number:02d}-{n:05d}.png"  # unique: finds the row it made
            body = json.dumps({"image": self._images[(number * 7 + n) % len(self._images)], "filename": filename})
            headers = {"Content-Type": "application/json"}
            if self.idempotent:
                headers["Idempotency-Key"] = filename
            n += 1
            sent = time.monotonic()
            try:
                status, answer = self._request(conn, "POST", "/image-predict", body, headers)
            except (OSError, http.client.HTTPException):
                status, answer = None, None
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self._record(Answer("predict", sent, time.monotonic() - sent, status, answer, filename))
        conn.close()

    def _poll(self, kind: str, path: str, every: float) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while not self._stop.wait(every):
            sent = time.monotonic()
            try:
                status, answer = self._request(conn, "GET", path, None, {})
            except (OSError, http.client.HTTPException):
                status, answer = None, None
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self._record(Answer(kind, sent, time.monotonic() - sent, status, answer))
        conn.close()

    def of(self, kind: str, since: float = 0.0, until: float = float("inf")) -> list[Answer]:
        """The answers of one kind sent in [since, until)."""
        return [a for a in self.answers if a.kind == kind and since <= a.sent < until]


def rows_by_filename(database_url: str, like: str) -> dict[str, list[int]]:
    """History ids per filename for rows whose filename is LIKE `like`, straight from SQL."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, filename FROM predictions WHERE filename LIKE :p"), {"p": like}).all()
    finally:
        engine.dispose()
    found: dict[str, list[int]] = {}
    for record_id, filename in rows:
        found.setdefault(filename, []).append(record_id)
    return found


def percentiles(values: list[float]) -> str:
    """'p50 .. p99 .. max ..' in milliseconds, for a figure line."""
    if not values:
        return "none"
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000

    return f"p50 {at(0.5):.0f} ms, p99 {at(0.99):.0f} ms, max {ordered[-1] * 1000:.0f} ms"
