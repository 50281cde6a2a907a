"""Steady load on a running server, every answer recorded with when it was sent and how long it took.

Predicting clients post real MNIST digits to /image-predict, each with a unique filename (so the row
it made can be found); pollers ask /api/v1/health and a history page. A retrying client (`retry`)
behaves as a careful one should: it sends an Idempotency-Key (its filename) and sends the same request
again, to the next server when there are several, until it is saved or RETRY_SECONDS have passed. The
fault-injection tests and benchmarks/faults.py read the recorded answers afterwards.
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
    attempt: int = 0  # a retrying client's resends of one request count from 1


def digit_bodies(count: int = 40) -> list[str]:
    """Base64 PNGs of real MNIST test digits, black on white like the original client's."""
    images = mnist_sample()[0][:count]
    return [b64(png(255 - pixels)) for pixels in images]


class Load:
    """Clients and pollers against 127.0.0.1:ports[0] until stopped; `answers` holds everything they saw."""

    RETRY_SECONDS = 60.0  # a retrying client gives a request up after this long
    RETRY_PAUSE = 0.2

    def __init__(self, ports: int | list[int], phase: str, *, clients: int = 4, retry: bool = False) -> None:
        self.ports = [ports] if isinstance(ports, int) else ports
        self.port, self.phase, self.clients, self.retry = self.ports[0], phase, clients, retry
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
        server = 0
        conn = http.client.HTTPConnection("127.0.0.1", self.ports[server], timeout=30)
        n = 0
        while not self._stop.is_set() and n < 10_000:
            filename = f"{self.phase}-{number:02d}-{n:05d}.png"  # unique: finds the row it made
            body = json.dumps({"image": self._images[(number * 7 + n) % len(self._images)], "filename": filename})
            headers = {"Content-Type": "application/json"}
            if self.retry:
                headers["Idempotency-Key"] = filename
            n += 1
            first, attempt = time.monotonic(), 0
            while True:
                sent = time.monotonic()
                try:
                    status, answer = self._request(conn, "POST", "/image-predict", body, headers)
                except (OSError, http.client.HTTPException):
                    status, answer = None, None
                    conn.close()
                    server = (server + 1) % len(self.ports)  # no answer: this server may be gone
                    conn = http.client.HTTPConnection("127.0.0.1", self.ports[server], timeout=30)
                self._record(Answer("predict", sent, time.monotonic() - sent, status, answer, filename, attempt))
                saved = status == 200 and answer["saved"]
                if not self.retry or saved or time.monotonic() - first > self.RETRY_SECONDS:
                    break
                attempt += 1
                time.sleep(self.RETRY_PAUSE)
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


def rows_by_filename(database_url: str, like: str, source: str | None = None) -> dict[str, list[int]]:
    """History ids per filename for rows whose filename is LIKE `like` (and from `source`), straight from SQL."""
    engine = create_engine(database_url)
    query = "SELECT id, filename FROM predictions WHERE filename LIKE :p" + (" AND source = :s" if source else "")
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(query), {"p": like, "s": source}).all()
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
