"""Two faults side by side under the same load, with careful clients: is anything lost or stored twice?

    sudo .venv/bin/python -m benchmarks.faults        (root: it runs a throwaway PostgreSQL cluster)

Both runs use a throwaway PostgreSQL cluster of their own and 4 clients that post /image-predict with
an Idempotency-Key and send the same request again until it is saved (tests/support/load.py):
- kill: two app processes (`python server.py`, as `make run` starts them); the one the clients use is
  SIGKILLed mid-load, and they carry on with the other;
- outage: one app process; the database is stopped with SIGSTOP for HUNG_SECONDS mid-load, then resumed.
Afterwards every row is read back from PostgreSQL: each acknowledged save must be exactly one row with
its id, and every request the clients gave up on is counted. Exits 1 when anything was lost.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

from benchmarks.api_load import ROOT, free_port, stop_process, wait_until_ready
from tests.support.load import Load, percentiles, rows_by_filename
from tests.support.pgcluster import Cluster, throwaway_cluster

BEFORE_SECONDS, AFTER_SECONDS, HUNG_SECONDS = 4.0, 8.0, 5.0


@contextmanager
def server(database_url: str, log: Path) -> Iterator[tuple[int, subprocess.Popen]]:
    """`python server.py` on a free port (as `make run` starts it), ready; stopped afterwards."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url}
    env.pop("MNIST_API_TOKEN", None)
    command = [sys.executable, "server.py", "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            wait_until_ready(f"http://127.0.0.1:{port}", proc, 300, path="/api/v1/health")
            yield port, proc
        finally:
            stop_process(proc)


def fresh_database(cluster: Cluster, name: str) -> str:
    admin = create_engine(cluster.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return cluster.url.rsplit("/", 1)[0] + "/" + name


def run(load: Load, fault: Callable[[], None]) -> None:
    """BEFORE_SECONDS of load, the fault, AFTER_SECONDS more, then the clients finish their retries."""
    load.start()
    try:
        time.sleep(BEFORE_SECONDS)
        fault()
        time.sleep(AFTER_SECONDS)
    finally:
        load.stop()


def kill_run(cluster: Cluster, folder: Path) -> dict[str, str]:
    url = fresh_database(cluster, "kill")
    with ExitStack() as stack:
        port_a, proc_a = stack.enter_context(server(url, folder / "kill_a.log"))
        port_b, _ = stack.enter_context(server(url, folder / "kill_b.log"))
        load = Load([port_a, port_b], "kill", retry=True)
        run(load, lambda: os.killpg(proc_a.pid, signal.SIGKILL))
    return tally(load, url, "kill -9 of the serving process")


def outage_run(cluster: Cluster, folder: Path) -> dict[str, str]:
    url = fresh_database(cluster, "outage")
    with server(url, folder / "outage.log") as (port, _):
        load = Load(port, "outage", retry=True)

        def hang() -> None:
            with cluster.hung():
                time.sleep(HUNG_SECONDS)

        run(load, hang)
    return tally(load, url, f"database hung {HUNG_SECONDS:.0f} s (SIGSTOP)")


def tally(load: Load, database_url: str, title: str) -> dict[str, str]:
    """What the clients saw and what PostgreSQL holds, as the rows of the side-by-side table."""
    predicts = [a for a in load.answers if a.kind == "predict"]
    requests = {a.filename for a in predicts}
    acknowledged = {a.filename: a.body["id"] for a in predicts if a.status == 200 and a.body["saved"]}
    rows = rows_by_filename(database_url, f"{load.phase}-%")
    lost = [f for f, record_id in acknowledged.items() if rows.get(f) != [record_id]]
    doubled = [f for f, ids in rows.items() if len(ids) > 1]
    first_tries = [a for a in predicts if a.attempt == 0]
    return {
        "fault": title,
        "requests (distinct)": f"{len(requests)}",
        "sent, with resends": f"{len(predicts)}",
        "first try: no answer": f"{sum(a.status is None for a in first_tries)}",
        "first try: saved: false": f"{sum(a.status == 200 and not a.body['saved'] for a in first_tries)}",
        "first try: other status": f"{sum(a.status not in (None, 200) for a in first_tries)}",
        "acknowledged saves": f"{len(acknowledged)}",
        "given up (never saved)": f"{len(requests - set(acknowledged))}",
        "rows in PostgreSQL": f"{sum(map(len, rows.values()))}",
        "lost (acknowledged, no row)": f"{len(lost)}",
        "stored twice": f"{len(doubled)}",
        "latency, every answer": percentiles([a.seconds for a in predicts if a.status is not None]),
        "ok": "yes" if not lost and not doubled and requests == set(acknowledged) else "NO",
    }


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp, throwaway_cluster() as cluster:
        columns = [kill_run(cluster, Path(tmp)), outage_run(cluster, Path(tmp))]
    width = max(len(k) for k in columns[0]) + 2
    cell = max(len(v) for c in columns for v in c.values()) + 2
    print("4 clients with an Idempotency-Key, resending until saved; PostgreSQL read back afterwards\n")
    for key in columns[0]:
        print(key.ljust(width) + "".join(c[key].ljust(cell) for c in columns).rstrip())
    return 0 if all(c["ok"] == "yes" for c in columns) else 1


if __name__ == "__main__":
    sys.exit(main())
