"""API worker processes behind the one port (mnist.api.workers), on the real server started like `make run`."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from benchmarks import api_load
from mnist.api.workers import is_api_path, request_path
from tests.support.api import ORIGINAL_DIGIT, ORIGINAL_REQUEST

BODY = json.dumps(ORIGINAL_REQUEST)


def test_request_path_reads_only_a_whole_request_line() -> None:
    assert request_path(b"POST /image-predict HTTP/1.1\r\nHost: x\r\n\r\n{}") == "/image-predict"
    assert request_path(b"GET /api/v1/predictions?page=2 HTTP/1.1\r\n") == "/api/v1/predictions"
    assert request_path(b"GET /_stcore/stream HTTP/1.1\r\nUpgrade: websocket\r\n") == "/_stcore/stream"
    assert request_path(b"POST /image-pre") is None  # the line is not complete yet
    assert request_path(b"BREW /api HTTP/1.1\r\n") is None  # not a method
    assert request_path(b"\x16\x03\x01\x02\x00\x01\x00") is None  # a TLS hello
    assert request_path(b'{"image": "iVBOR"}\r\n') is None  # body bytes
    assert is_api_path("/api/v1/health") and is_api_path("/image-predict") and is_api_path("/metrics")
    assert not is_api_path("/") and not is_api_path("/_stcore/stream") and not is_api_path("/apiary")


def processes(match: Callable[[str], bool]) -> list[int]:
    """Pids of the processes whose command line `match` accepts."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if match(command):
                found.append(int(entry.name))
    return found


def parent_of(pid: int) -> int:
    return int((Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split())[1])


def server_and_workers(port: int) -> tuple[int, list[int]]:
    [server] = processes(lambda command: "server.py" in command and f"--port {port}" in command)
    workers = [pid for pid in processes(lambda command: "mnist.api.workers" in command) if parent_of(pid) == server]
    return server, sorted(workers)


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(0.2)


def ready_lines(log_path: Path) -> int:
    return len(re.findall(r'"event": "api_worker_ready"', log_path.read_text(errors="replace")))


def alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return False


def predict(conn: http.client.HTTPConnection) -> dict:
    conn.request("POST", "/image-predict", BODY, {"Content-Type": "application/json"})
    response = conn.getresponse()
    answer = json.loads(response.read())
    assert response.status == 200, answer
    return answer


def get(conn: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read()


def predictions_counted(port: int) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        status, body = get(conn, "/metrics")
    finally:
        conn.close()
    assert status == 200
    return sum(float(v) for v in re.findall(rb"^mnist_predictions_total\{[^}]*\} (\S+)$", body, re.M))


@pytest.mark.slow
def test_api_connections_are_served_by_workers_and_the_dashboard_by_the_main_process(tmp_path: Path) -> None:
    port = api_load.free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'history.sqlite3'}", "MNIST_API_WORKERS": "2"}
    env.pop("MNIST_API_TOKEN", None)
    log_path = tmp_path / "server.log"
    with api_load.make_run(port, env, log_path):
        wait_for(lambda: ready_lines(log_path) == 2, 120, "two workers ready")
        server, workers = server_and_workers(port)
        assert len(workers) == 2

        # A keep-alive API connection moves to a worker: with the main process stopped it is still answered.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        first = predict(conn)
        assert first["prediction"] == ORIGINAL_DIGIT and first["saved"] is True
        os.kill(server, signal.SIGSTOP)
        try:
            second = predict(conn)
        finally:
            os.kill(server, signal.SIGCONT)
        assert second["saved"] is True and second["id"] != first["id"]

        # A dashboard request on that connection goes back to the main process (Streamlit's own answer),
        # and the next API request on it to a worker again.
        assert get(conn, "/_stcore/health") == (200, b"ok")
        status, page = get(conn, "/")
        assert status == 200 and b"<noscript>" in page
        assert predict(conn)["saved"] is True
        status, body = get(conn, f"/api/v1/predictions/{first['id']}")
        assert status == 200 and json.loads(body)["filename"] == "request_test.png"

        # /metrics adds up every process's counts, whichever process answers it.
        before = predictions_counted(port)
        connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(4)]
        for _ in range(5):
            for other in connections:
                predict(other)
        for _ in range(3):
            assert predictions_counted(port) == before + 20

        # A worker that dies loses only its own connections (and one passed to it as it died); once the main
        # process has seen it go, new connections are answered, and it is started again.
        os.kill(workers[0], signal.SIGKILL)
        wait_for(lambda: '"event": "api_worker_exited"' in log_path.read_text(), 30, "the main process sees it")
        for _ in range(6):
            fresh = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            assert predict(fresh)["saved"] is True
            fresh.close()
        wait_for(lambda: ready_lines(log_path) == 3, 120, "a new worker ready")
        _, replaced = server_and_workers(port)
        assert len(replaced) == 2 and workers[0] not in replaced and workers[1] in replaced

        # SIGTERM to the main process alone (as `docker stop` sends it) stops its workers too.
        os.kill(server, signal.SIGTERM)
        wait_for(lambda: not any(alive(pid) for pid in [server, *replaced]), 30, "the server and its workers gone")
        for other in [conn, *connections]:
            other.close()


@pytest.mark.slow
def test_workers_leave_when_the_main_process_is_killed(tmp_path: Path) -> None:
    port = api_load.free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'history.sqlite3'}", "MNIST_API_WORKERS": "1"}
    log_path = tmp_path / "server.log"
    with api_load.make_run(port, env, log_path):
        wait_for(lambda: ready_lines(log_path) == 1, 120, "the worker ready")
        server, workers = server_and_workers(port)
        os.kill(server, signal.SIGKILL)
        wait_for(lambda: not any(alive(pid) for pid in workers), 30, "the orphaned worker gone")
