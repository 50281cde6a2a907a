"""Load test of POST /image-predict: N keep-alive clients for a fixed time, loopback only.

    python -m benchmarks.api_load --database-url postgresql+psycopg2://postgres@127.0.0.1:5432/bench
    python -m benchmarks.api_load --url http://127.0.0.1:8501 --database-url <the server's DATABASE_URL>

Without --url it starts the server exactly as `make run` does (on a free port, DATABASE_URL set to
--database-url) and stops it afterwards. Prints requests/s, p50/p99 latency, errors, the rows the
history gained (counted through the Store before and after), which must equal the saved responses,
and the dashboard's /_stcore/health latency under the load. Exits 1 on errors or lost rows.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import ipaddress
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from PIL import Image

from mnist.store import Store
from tests.support.sample import mnist_sample

ROOT = Path(__file__).resolve().parent.parent

MAX_REQUESTS = 200_000  # hard bound on the whole run, whatever the duration


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_ready(url: str, proc: subprocess.Popen, timeout: float, path: str = "/_stcore/health") -> None:
    """Poll a health endpoint (Streamlit's by default) until it answers 200, the server dies, or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"{url}{path}", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"server not ready after {timeout:.0f} s")


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM a process group started with start_new_session, SIGKILL it if it lingers."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@contextmanager
def make_run(port: int, env: dict[str, str], log_path: Path, timeout: float = 180.0) -> Iterator[str]:
    """Start `make run` (its own command line, HOST/PORT overridden) and yield its URL; stop it after.

    make runs in a new session so SIGTERM can reach it and the server it started, and nothing else.
    """
    command = ["make", "--no-print-directory", "run", "HOST=127.0.0.1", f"PORT={port}"]
    with serving(command, port, env, log_path, timeout) as url:
        wait_for_workers(log_path, timeout)
        yield url


def wait_for_workers(log_path: Path, timeout: float) -> None:
    """Until every API worker the server started says it is ready (its log says both): figures of the API
    come from the server as it runs, not from its main process alone while the workers warm up."""
    deadline = time.monotonic() + timeout
    while True:
        text = log_path.read_text(errors="replace")
        if text.count('"event": "api_worker_ready"') >= text.count('"event": "api_worker_started"'):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"API workers not ready after {timeout:.0f} s")
        time.sleep(0.25)


@contextmanager
def serving(
    command: list[str],
    port: int,
    env: dict[str, str] | None,
    log_path: Path,
    timeout: float,
    path: str = "/_stcore/health",
) -> Iterator[str]:
    """Run a server's command in a session of its own (output to log_path), yield its URL once `path` answers
    200, stop it afterwards."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_ready(url, proc, timeout, path)
            yield url
        finally:
            stop_process(proc)


def request_bodies(count: int = 200) -> list[bytes]:
    """JSON bodies like the original client's: real MNIST test digits, black ink on white, as base64 PNG."""
    images = mnist_sample()[0][:count]
    bodies = []
    for i, image in enumerate(images):
        buffer = io.BytesIO()
        Image.fromarray(255 - image).save(buffer, format="PNG")
        payload = {"image": base64.b64encode(buffer.getvalue()).decode(), "filename": f"bench_{i}.png"}
        bodies.append(json.dumps(payload).encode())
    return bodies


class Tally:
    """What the client threads saw, under one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.saved = 0
        self.errors: dict[str, int] = {}
        self.sent = 0

    def claim(self) -> bool:
        with self.lock:
            if self.sent >= MAX_REQUESTS:
                return False
            self.sent += 1
            return True

    def error(self, what: str) -> None:
        with self.lock:
            self.errors[what] = self.errors.get(what, 0) + 1


def client(
    host: str,
    port: int,
    bodies: list[bytes],
    offset: int,
    stop_at: float,
    tally: Tally,
    saved_when: Callable[[dict], bool],
) -> None:
    """One keep-alive connection posting /image-predict until time is up; `saved_when(answer)`: was it saved?"""
    conn = http.client.HTTPConnection(host, port, timeout=30)
    headers = {"Content-Type": "application/json"}
    i = offset
    while time.monotonic() < stop_at and tally.claim():
        body = bodies[i % len(bodies)]
        i += 1
        started = time.perf_counter()
        try:
            conn.request("POST", "/image-predict", body, headers)
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            tally.error(type(exc).__name__)
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=30)
            continue
        elapsed = time.perf_counter() - started
        if response.status != 200:
            tally.error(f"HTTP {response.status}")
            continue
        saved = saved_when(json.loads(data))
        with tally.lock:
            tally.latencies.append(elapsed)
            tally.saved += saved
    conn.close()


def watch_health(host: str, port: int, stop: threading.Event, latencies: list[float]) -> None:
    """The dashboard's own health endpoint, polled during the load: is the event loop still free?"""
    conn = http.client.HTTPConnection(host, port, timeout=10)
    while not stop.wait(0.1):
        started = time.perf_counter()
        try:
            conn.request("GET", "/_stcore/health")
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=10)
            continue
        if response.status == 200:
            latencies.append(time.perf_counter() - started)
    conn.close()


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) of values, in the same unit."""
    return float(np.percentile(values, q)) if values else float("nan")


@dataclass
class Figures:
    """One load run, as seen by the clients and counted in the database."""

    requests: int
    errors: dict[str, int]
    wall: float
    latencies_ms: list[float]
    saved: int
    gained: int
    health_ms: list[float] = field(default_factory=list)

    @property
    def ok(self) -> int:
        return len(self.latencies_ms)

    @property
    def throughput(self) -> float:
        return self.ok / self.wall

    @property
    def passed(self) -> bool:
        """No errors, and every acknowledged save is exactly one row."""
        return not self.errors and self.gained == self.saved == self.ok

    def print(self, target: str, database: str) -> None:
        ms = self.latencies_ms
        errors = sum(self.errors.values())
        print(f"target              {target}")
        print(f"database            {database}")
        print(f"requests            {self.ok + errors}  ok {self.ok}  errors {errors} {self.errors or ''}")
        print(f"throughput          {self.throughput:.1f} requests/s")
        p50, p99, worst = percentile(ms, 50), percentile(ms, 99), max(ms, default=0.0)
        print(f"latency             p50 {p50:.1f} ms  p99 {p99:.1f} ms  max {worst:.1f} ms")
        if ms:
            print(f"                    mean {statistics.fmean(ms):.1f} ms")
        print(f"saved responses     {self.saved}")
        print(f"rows gained         {self.gained}  (lost: {self.saved - self.gained})")
        if self.health_ms:
            h50, h99 = percentile(self.health_ms, 50), percentile(self.health_ms, 99)
            print(f"/_stcore/health     p50 {h50:.1f} ms  p99 {h99:.1f} ms during the load")


def measure(
    url: str,
    count_rows: Callable[[], int],
    bodies: list[bytes],
    clients: int,
    duration: float,
    warmup: float,
    saved_when: Callable[[dict], bool] = lambda answer: answer.get("saved") is True,
    watch: bool = True,
) -> Figures:
    """Warm up, load for `duration` seconds; the figures, with the rows `count_rows` saw added meanwhile."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    if warmup > 0:  # first requests load the model and open pool connections: not part of the figures
        run_clients(host, port, bodies, min(clients, 4), warmup, Tally(), saved_when)
    before = count_rows()
    tally = Tally()
    health: list[float] = []
    stop = threading.Event()
    watcher = threading.Thread(target=watch_health, args=(host, port, stop, health), daemon=True)
    if watch:
        watcher.start()
    started = time.perf_counter()
    run_clients(host, port, bodies, clients, duration, tally, saved_when)
    wall = time.perf_counter() - started
    stop.set()
    if watch:
        watcher.join(timeout=15)
    gained = count_rows() - before
    latencies = [v * 1000 for v in tally.latencies]
    health_ms = [v * 1000 for v in health]
    return Figures(tally.sent, dict(tally.errors), wall, latencies, tally.saved, gained, health_ms)


def run_load(url: str, store: Store, clients: int, duration: float, warmup: float) -> bool:
    """Warm up, load for `duration` seconds, print the figures; True when there were no errors and no lost rows."""
    figures = measure(url, lambda: store.page(0, 1).total, request_bodies(), clients, duration, warmup)
    figures.print(f"{url}/image-predict  ({clients} clients, {duration:.0f} s, keep-alive)", store.describe())
    return figures.passed


def run_clients(
    host: str,
    port: int,
    bodies: list[bytes],
    clients: int,
    duration: float,
    tally: Tally,
    saved_when: Callable[[dict], bool],
) -> None:
    """`clients` threads posting until `duration` seconds have passed."""
    stop_at = time.monotonic() + duration
    threads = [
        threading.Thread(target=client, args=(host, port, bodies, i * 17, stop_at, tally, saved_when), daemon=True)
        for i in range(clients)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=duration + 60)


def is_loopback(url: str) -> bool:
    """Only this machine is ever loaded: the benchmark must not become a tool to flood someone else."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running server (loopback only); default: start one like `make run`")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"), help="the server's DATABASE_URL")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load (max 600)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of untimed load first")
    args = parser.parse_args()
    if not 1 <= args.clients <= 256 or not 0 < args.duration <= 600:
        parser.error("--clients must be 1..256 and --duration 0..600 s")
    if not args.database_url:
        parser.error("--database-url (or DATABASE_URL) is needed to count the rows the history gains")
    store = Store(args.database_url)
    if args.url:
        if not is_loopback(args.url):
            parser.error("--url must point at this machine (127.0.0.1, ::1 or localhost)")
        return 0 if run_load(args.url.rstrip("/"), store, args.clients, args.duration, args.warmup) else 1
    env = {**os.environ, "DATABASE_URL": args.database_url}
    env.pop("MNIST_API_TOKEN", None)
    with tempfile.TemporaryDirectory() as tmp:
        log_path = Path(tmp) / "server.log"
        try:
            with make_run(free_port(), env, log_path) as url:
                passed = run_load(url, store, args.clients, args.duration, args.warmup)
        except (RuntimeError, TimeoutError):
            sys.stdout.write(log_path.read_text(errors="replace")[-4000:])
            raise
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
