"""The real server, started the way `make run` starts it: dashboard and API on one port."""

from __future__ import annotations

import http.client
import json
import os
import re
import select
import socket
import time
from pathlib import Path

import pytest

from benchmarks import api_load  # the benchmark and this test start the server with the same code
from tests.support.api import ORIGINAL_DIGIT, ORIGINAL_REQUEST

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def get(port: int, path: str) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        conn.close()


def head(port: int, path: str) -> dict[str, str]:
    """The response headers of GET path, names lower-cased."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()


def post_json(port: int, path: str, body: dict) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def endless_chunked_post(port: int, cap_bytes: int) -> tuple[int, int]:
    """Stream a chunked body with no Content-Length until the server answers (or cap_bytes); (status, bytes sent)."""
    chunk = b"A" * 65536
    framed = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            b"POST /image-predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        try:
            while sent < cap_bytes:
                if select.select([sock], [], [], 0)[0]:
                    break  # the server has answered
                sock.sendall(framed)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # it answered and closed while we were still sending
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, sent


MULTIPART_START = '--x\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n\x89PNG'


def stalled_request(
    port: int, method: str, path: str, content_type: str, start: str = '{"image": "iVBO'
) -> tuple[int, float, dict[str, str]]:
    """Announce 1,000 body bytes, send the first few, go quiet: (status, seconds until the answer, headers)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        started = time.monotonic()
        sock.sendall(
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: 1000\r\n\r\n{start}".encode()
        )
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, time.monotonic() - started, {k.lower(): v for k, v in response.getheaders()}


BODY_TIMEOUT = 3  # seconds; the default is 10, the most MNIST_BODY_TIMEOUT allows


def test_make_run_serves_dashboard_and_api_on_one_port(tmp_path: Path) -> None:
    port = api_load.free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'history.sqlite3'}",
        "MNIST_BODY_TIMEOUT": str(BODY_TIMEOUT),
    }
    env.pop("MNIST_API_TOKEN", None)
    log_path = tmp_path / "server.log"
    try:
        with api_load.make_run(port, env, log_path):
            status, _, body = get(port, "/_stcore/health")
            assert (status, body) == (200, b"ok")

            status, content_type, body = get(port, "/")
            assert status == 200 and content_type.startswith("text/html") and b"<noscript>" in body

            status, _, body = get(port, "/api/v1/health")
            health = json.loads(body)
            assert status == 200 and health["status"] == "ok" and health["database"] == "ok"

            status, answer = post_json(port, "/image-predict", ORIGINAL_REQUEST)
            assert status == 200, answer
            assert answer["prediction"] == ORIGINAL_DIGIT and answer["img_shape"] == [28, 28]
            assert answer["saved"] is True
            status, _, body = get(port, f"/api/v1/predictions/{answer['id']}")
            assert status == 200 and json.loads(body)["filename"] == "request_test.png"

            status, _, body = get(port, "/api/docs")
            assert status == 200 and b"/api/openapi.json" in body

            status, content_type, body = get(port, "/metrics")  # Prometheus, beside the API
            assert status == 200 and content_type.startswith("text/plain")
            assert (
                b'mnist_http_request_duration_seconds_count{method="POST",route="/image-predict",status="200"}' in body
            )

            # A server that buffered the whole body would wait for the end of a stream that never ends;
            # ours answers 413 once it has counted 5 MB (what else was sent sits in socket buffers).
            cap = 64 * 1024 * 1024
            status, sent = endless_chunked_post(port, cap)
            assert status == 413 and sent < cap

            # A body that stops arriving (a lying Content-Length) is cut off, on the API and the dashboard alike,
            # and counted; the bound is 10 s.
            stalled = [
                stalled_request(port, "POST", "/image-predict", "application/json"),
                stalled_request(
                    port, "POST", "/api/v1/predictions", "multipart/form-data; boundary=x", MULTIPART_START
                ),
                stalled_request(
                    port, "PUT", "/_stcore/upload_file/s/f", "multipart/form-data; boundary=x", MULTIPART_START
                ),
            ]
            for status, seconds, headers in stalled[:2]:
                assert status == 408 and BODY_TIMEOUT <= seconds < 10 and headers["connection"] == "close"
            status, seconds, _ = stalled[2]  # Streamlit's upload route refuses it unread, or it is cut like the rest
            assert status in (400, 403, 408) and seconds < 10, stalled[2]
            _, _, body = get(port, "/metrics")
            assert re.search(rb"^mnist_request_body_timeouts_total ([2-9]|\d\d)", body, re.M), body[-2000:]

            # Security headers on the dashboard's page and files as on the API's answers.
            for path in ("/", "/_stcore/health", "/api/v1/health"):
                headers = head(port, path)
                assert (
                    headers.get("x-frame-options") == "SAMEORIGIN"
                    and headers.get("x-content-type-options") == "nosniff"
                )
                assert "frame-ancestors 'self'" in headers.get("content-security-policy", "")

            status, _, _ = get(port, "/_stcore/health")  # still serving after all that
            assert status == 200
            started = time.monotonic()
    finally:
        log = log_path.read_text(errors="replace") if log_path.exists() else ""
    # A liveness bound, not a speed figure: a server that ignored SIGTERM or hung in shutdown would never
    # stop; a healthy one stops in a few seconds. 60 s tells the two apart on a busy 2-core machine.
    assert time.monotonic() - started < 60, "the server did not stop after SIGTERM"
    assert "Traceback" not in log, log[-4000:]
    events = [json.loads(line) for line in log.splitlines() if line.startswith("{")]  # the JSON-lines log
    started = next(e for e in events if e["event"] == "started")
    assert started["database"].startswith("SQLite") and started["database_ready"] is True
    requests = [(e["method"], e["route"], e["status"]) for e in events if e["event"] == "request"]
    assert ("POST", "/image-predict", 200) in requests and ("GET", "/api/v1/health", 200) in requests
