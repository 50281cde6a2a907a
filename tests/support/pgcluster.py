"""A throwaway PostgreSQL cluster of a test's own, to stop (SIGSTOP) and resume without touching the shared one.

initdb + pg_ctl from Debian's packages, run as the `postgres` user, on a free loopback port, its data and
socket in a temporary folder. `hung()` stops the postmaster and every backend (each is its own session,
so they are signalled one by one) and resumes them however the test ends; the cluster is stopped and
removed afterwards, also when the test fails.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest


def _binary(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        pytest.fail(
            f"PostgreSQL's {name} is not installed (Debian's postgresql package puts it in /usr/lib/postgresql)"
        )
    return found[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(*command: str) -> subprocess.CompletedProcess:
    """Run a PostgreSQL tool as the postgres user (initdb refuses root)."""
    if os.geteuid() != 0:
        pytest.skip("a throwaway PostgreSQL cluster needs root, to run its tools as the postgres user")
    return subprocess.run(
        ["runuser", "-u", "postgres", "--", *command], capture_output=True, text=True, timeout=120, check=False
    )


class Cluster:
    """A running throwaway cluster: its URL, and stop/resume of all its processes."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port = folder, port
        self.url = f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"

    def processes(self) -> list[int]:
        """The postmaster and its children (backends, checkpointer, ...)."""
        postmaster = int((self.folder / "data" / "postmaster.pid").read_text().split()[0])
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # the process ended meanwhile
            if int(fields[1]) == postmaster:
                children.append(int(stat.parent.name))
        return [postmaster, *children]

    def signal(self, signum: int) -> None:
        """Send `signum` to the postmaster first (no new backends after that), then to every child."""
        for pid in self.processes():
            with suppress(ProcessLookupError):  # it ended meanwhile
                os.kill(pid, signum)

    @contextmanager
    def hung(self) -> Iterator[None]:
        """Every process of the cluster stopped (SIGSTOP): TCP still accepts, nothing answers. Resumed after."""
        self.signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self.signal(signal.SIGCONT)


@contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    """initdb + pg_ctl start on a free port; stopped (resumed first, if it was stopped) and deleted afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="mnist-pg-"))
    shutil.chown(folder, "postgres")
    port = _free_port()
    cluster = Cluster(folder, port)
    data = folder / "data"
    try:
        made = _as_postgres(_binary("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
        assert made.returncode == 0, made.stderr
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60"
        started = _as_postgres(
            _binary("pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"
        )
        assert started.returncode == 0, started.stderr + (folder / "log").read_text(errors="replace")
        yield cluster
    finally:
        if (data / "postmaster.pid").exists():
            cluster.signal(signal.SIGCONT)  # a stopped cluster cannot shut down
            _as_postgres(_binary("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)
