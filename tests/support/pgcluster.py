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
import time
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

    def _postmaster(self) -> int:
        return int((self.folder / "data" / "postmaster.pid").read_text().split()[0])

    @staticmethod
    def _stat(pid: int) -> list[str]:
        """/proc/PID/stat after the command name: [state, ppid, ...]; [] once the process is gone."""
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return []

    def _children(self, postmaster: int) -> list[int]:
        """The postmaster's children (backends, checkpointer, ...), each a session of its own."""
        pids = (int(stat.parent.name) for stat in Path("/proc").glob("[0-9]*/stat"))
        return [pid for pid in pids if self._stat(pid)[1:2] == [str(postmaster)]]

    def signal(self, signum: int) -> None:
        """Send `signum` to the postmaster, then to its children; a SIGSTOP is sent until all have stopped.

        kill() returns before the signal has taken effect: a postmaster in the middle of fork() can still
        finish a new backend after it, so the children are listed again until every one is stopped.
        """
        postmaster = self._postmaster()
        os.kill(postmaster, signum)
        if signum != signal.SIGSTOP:
            for pid in self._children(postmaster):
                with suppress(ProcessLookupError):  # it ended meanwhile
                    os.kill(pid, signum)
            return
        deadline = time.monotonic() + 10
        while True:
            running = [
                pid for pid in [postmaster, *self._children(postmaster)] if self._stat(pid)[:1] not in (["T"], [])
            ]
            if not running:
                return
            assert time.monotonic() < deadline, f"PostgreSQL processes would not stop: {running}"
            for pid in running:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
            time.sleep(0.01)

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
