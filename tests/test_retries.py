"""A client's retry never duplicates: the first request's process is killed mid-save, the retry goes elsewhere.

The first request goes to a real server process (uvicorn mnist.api:app on PostgreSQL), which is killed
with SIGKILL at a chosen moment of its save, found in pg_stat_activity: while its COMMIT is in flight
(a deferred trigger makes COMMIT sleep, so the row lands after the process is gone), or while its
INSERT waits for a lock (so the row never lands). The client saw no answer either way; its retry with
the same Idempotency-Key, to another process, must leave exactly one row and answer with its id.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from benchmarks import api_load
from mnist.api import create_app
from mnist.store import Store
from tests.support.api import ORIGINAL_DIGIT, ORIGINAL_REQUEST
from tests.support.history import make_commits_slow
from tests.support.load import rows_by_filename

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
LIVENESS_SECONDS = 120  # bounds the waits below; none is a speed figure


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + LIVENESS_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def the_servers_backend(admin, database: str) -> dict | None:
    """What the app's PostgreSQL backend is doing (application_name mnist-dashboard), if it has one busy."""
    with admin.connect() as conn:
        row = conn.execute(
            text(
                "SELECT query, wait_event_type, wait_event FROM pg_stat_activity "
                "WHERE datname = :db AND application_name = 'mnist-dashboard' AND state = 'active'"
            ),
            {"db": database},
        ).first()
    return None if row is None else dict(row._mapping)


@pytest.mark.parametrize("moment", ["in COMMIT", "before COMMIT"])
def test_a_retry_after_the_process_died_mid_save_leaves_one_row(postgres_url: str, tmp_path: Path, moment: str) -> None:
    Store(postgres_url).migrate()
    database = make_url(postgres_url).database
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    blocker = create_engine(postgres_url).connect()
    if moment == "in COMMIT":
        make_commits_slow(postgres_url, 3.0)
        caught = lambda b: b is not None and b["query"] == "COMMIT" and b["wait_event"] == "PgSleep"  # noqa: E731
    else:
        blocker.execute(text("LOCK TABLE predictions IN EXCLUSIVE MODE"))  # the INSERT waits for this transaction
        caught = lambda b: b is not None and b["query"].startswith("INSERT") and b["wait_event_type"] == "Lock"  # noqa: E731

    port = api_load.free_port()
    # Long deadlines, so the first request is still waiting for its save when the process is killed.
    env = {**os.environ, "DATABASE_URL": postgres_url, "MNIST_SAVE_TIMEOUT": "60", "MNIST_HISTORY_TIMEOUT": "60"}
    env.pop("MNIST_API_TOKEN", None)
    command = [sys.executable, "-m", "uvicorn", "mnist.api:app", "--host", "127.0.0.1", f"--port={port}"]
    key = "retry-after-kill-3f9d"
    body = {**ORIGINAL_REQUEST, "filename": f"killed-{moment.replace(' ', '-')}.png"}
    first: list[BaseException | int] = []

    def post_once() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=LIVENESS_SECONDS)
        try:
            conn.request(
                "POST", "/image-predict", json.dumps(body), {"Content-Type": "application/json", "Idempotency-Key": key}
            )
            first.append(conn.getresponse().status)
        except (OSError, http.client.HTTPException) as exc:
            first.append(exc)
        finally:
            conn.close()

    try:
        with open(tmp_path / "server.log", "wb") as log:
            server = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
            try:
                api_load.wait_until_ready(f"http://127.0.0.1:{port}", server, LIVENESS_SECONDS, path="/api/v1/health")
                client = threading.Thread(target=post_once)
                client.start()

                def at_the_moment() -> bool:
                    assert not first, f"the first request was answered: {first}"
                    return caught(the_servers_backend(admin, database))

                wait_until(at_the_moment, f"its save was {moment}")
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=30)
                client.join(timeout=LIVENESS_SECONDS)
            finally:
                api_load.stop_process(server)
        assert len(first) == 1 and isinstance(first[0], OSError | http.client.HTTPException), first  # no answer
        blocker.rollback()  # nothing is held any more; the dead process's INSERT now finishes, or fails
        wait_until(lambda: the_servers_backend(admin, database) is None, "the dead process's backend finished")
        landed = rows_by_filename(postgres_url, body["filename"]).get(body["filename"], [])
        assert len(landed) == (1 if moment == "in COMMIT" else 0), landed

        with TestClient(create_app(store=Store(postgres_url))) as other_process:
            retries = [
                other_process.post("/image-predict", json=body, headers={"Idempotency-Key": key}) for _ in range(2)
            ]
        answers = [r.json() for r in retries]
        assert all(r.status_code == 200 for r in retries), answers
        assert answers[0] == answers[1] and answers[0]["prediction"] == ORIGINAL_DIGIT and answers[0]["saved"]
        rows = rows_by_filename(postgres_url, body["filename"])[body["filename"]]
        assert rows == (landed or [answers[0]["id"]]) and answers[0]["id"] == rows[0]  # one row, the first if any
    finally:
        blocker.close()
        admin.dispose()
