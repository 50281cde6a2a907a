"""API worker processes behind the one port of `make run`: an API connection is served by a worker process.

Why: one Python process is held to about one core by the GIL. Under 16 API clients `make run` used ~1.1 of
the 2 cores and answered 1.4x the original Flask service (issue 24). So server.py starts MNIST_API_WORKERS
processes that run the same FastAPI app (mnist.api.app) and the main process, which still accepts every
connection, passes them the API's connections:

- Between two requests on a connection (nothing half-read, nothing unsent), the process holding it looks at
  the next request line. An API path (API_PREFIXES) goes to a ready worker, any other path to the main
  process; the socket itself and the bytes read so far travel over a Unix socket (SCM_RIGHTS), and the
  receiving process serves that request and the ones after it until a request for the other side comes.
- So the dashboard's Streamlit sessions (their websocket, uploads and media, all kept in the main process's
  memory) never leave the main process, and an API client's keep-alive connection costs the main process
  one look at its first request line, not the work of every request.
- Until a worker is ready (warming up), or after it died, the main process answers the API itself, as it
  did without workers; a dead worker is started again.

Each process keeps its own database pool, micro-batcher and group commit; the registry's active model is
read by each (ActiveModelWatcher), as with several processes behind nginx. /metrics adds up every process's
counts (mnist.metrics, PROMETHEUS_MULTIPROC_DIR).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mnist import logs, registry

log = logging.getLogger(__name__)

API_PREFIXES = ("/api", "/image-predict", "/metrics")
METHODS = frozenset((b"GET", b"POST", b"PUT", b"PATCH", b"DELETE", b"HEAD", b"OPTIONS"))
READY = b"ready"
ACTIVATED = b"activated"  # a process activated a model version: the others look at the registry now
# The bytes read so far travel in one datagram with the socket; a bigger first read (a large upload's headers
# and first body bytes) is served where it arrived.
MAX_PASSED_BYTES = 64 * 1024
RESTART_DELAY_SECONDS = 2.0
STOP_SECONDS = 15.0  # a worker's graceful shutdown (in-flight requests answered) before it is killed


def is_api_path(path: str) -> bool:
    """True for the API's paths: /api/..., /image-predict, /metrics (the dashboard has everything else)."""
    return any(path == prefix or path.startswith(prefix + "/") for prefix in API_PREFIXES)


def request_path(data: bytes) -> str | None:
    """The path in the request line `data` starts with ("POST /image-predict HTTP/1.1"), None when it has none.

    The raw path: percent-decoding can only add API paths (ApiFirst routes on the decoded one), never turn
    an API prefix into another path, so either process answers a passed request as the other would.
    """
    line, found, _ = data[:8192].partition(b"\r\n")
    parts = line.split(b" ")
    if not found or len(parts) != 3 or parts[0] not in METHODS or not parts[2].startswith(b"HTTP/1."):
        return None
    return parts[1].partition(b"?")[0].decode("latin-1")


class PassingProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol, which passes its connection to another process between two requests.

    `destination(path)` names the channel to pass a request for `path` to (None: serve it here); `home` is
    this process's uvicorn config and state, which passed-in connections are served with.
    """

    destination: ClassVar[Callable[[str], socket.socket | None]] = staticmethod(lambda _path: None)
    home: ClassVar[dict[str, Any] | None] = None

    def __init__(self, *args: Any, pending: bytes = b"", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending = pending
        self._in_message = False
        if PassingProtocol.home is None:
            PassingProtocol.home = {
                "config": self.config, "server_state": self.server_state, "app_state": self.app_state,
            }  # fmt: skip

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self._pending:  # a passed connection: its first bytes came with it
            pending, self._pending = self._pending, b""
            self.data_received(pending)

    def on_message_begin(self) -> None:
        self._in_message = True
        super().on_message_begin()

    def on_message_complete(self) -> None:
        self._in_message = False
        super().on_message_complete()

    def data_received(self, data: bytes) -> None:
        if self._between_requests() and (path := request_path(data)) is not None:
            channel = type(self).destination(path)
            if channel is not None and self._pass(channel, data):
                return
        super().data_received(data)

    def _between_requests(self) -> bool:
        """Nothing of a request parsed, no response owed or unsent: the connection can change hands."""
        idle = self.cycle is None or self.cycle.response_complete
        return (
            idle and not self._in_message and not self.pipeline
            and not self.transport.is_closing() and self.transport.get_write_buffer_size() == 0
        )  # fmt: skip

    def _pass(self, channel: socket.socket, data: bytes) -> bool:
        """Send the socket and `data` down `channel`, then let go of it here; False (kept) when that can't be done."""
        sock = self.transport.get_extra_info("socket")
        if sock is None or len(data) > MAX_PASSED_BYTES or self.transport.get_extra_info("sslcontext") is not None:
            return False
        try:
            socket.send_fds(channel, [data], [sock.fileno()], socket.MSG_DONTWAIT)
        except OSError:  # the other process is busy (its channel full) or gone: serve it here
            return False
        self._unset_keepalive_if_required()
        self.transport.close()  # closes this process's descriptor only: the connection lives on in the other
        return True


def receive(loop: asyncio.AbstractEventLoop, channel: socket.socket, on_message: Callable[[bytes], None],
            on_closed: Callable[[], None]) -> None:  # fmt: skip
    """Read `channel` on the event loop: serve the connections passed down it, hand other messages to on_message."""

    def readable() -> None:
        while True:
            try:
                data, fds, _flags, _address = socket.recv_fds(channel, MAX_PASSED_BYTES, 1)
            except BlockingIOError:
                return
            except OSError:
                data, fds = b"", []
            if fds:
                _keep(loop.create_task(_adopt(loop, socket.socket(fileno=fds[0]), data)))
            elif data:
                on_message(data)
            else:  # the other process closed its end: it is gone
                loop.remove_reader(channel.fileno())
                on_closed()
                return

    channel.setblocking(False)
    loop.add_reader(channel.fileno(), readable)


_RUNNING: set[asyncio.Task[None]] = set()


def _keep(task: asyncio.Task[None]) -> None:
    """Hold a reference to `task` until it ends (the event loop only keeps weak ones)."""
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)


async def _adopt(loop: asyncio.AbstractEventLoop, sock: socket.socket, pending: bytes) -> None:
    """Serve a passed connection here, starting with the bytes that came with it."""
    home = PassingProtocol.home
    try:
        if home is None:
            raise OSError("no server here yet")
        await loop.connect_accepted_socket(lambda: PassingProtocol(**home, pending=pending), sock)
    except OSError as exc:  # the client left meanwhile
        logs.event(log, "connection_not_adopted", level=logging.DEBUG, detail=str(exc))
        sock.close()


@dataclass
class Worker:
    index: int
    process: subprocess.Popen[bytes]
    channel: socket.socket
    ready: bool = False


@dataclass
class Workers:
    """The main process's side: start `count` workers, pass them API connections in turn, restart one that dies."""

    count: int
    workers: list[Worker] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _turn: int = 0
    _stopping: bool = False

    def start(self) -> Workers:
        """Start the processes now (they warm up while the main process does); connections go to them once ready."""
        self.workers = [self._spawn(index) for index in range(self.count)]
        return self

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Listen to the workers on the server's event loop and start passing them connections."""
        self._loop = loop
        for worker in self.workers:
            self._listen(worker)
        PassingProtocol.destination = staticmethod(self.destination)
        registry.on_activation(lambda: self._tell(ACTIVATED))  # the dashboard's Model page activated one

    def _tell(self, message: bytes, skip: Worker | None = None) -> None:
        """Send `message` to every worker but `skip`; one that can't take it now learns at its next poll."""
        for worker in self.workers:
            if worker is not skip and worker.ready:
                _send_quietly(worker.channel, message)

    def destination(self, path: str) -> socket.socket | None:
        """The next ready worker's channel for an API path; None (the main process serves it) otherwise."""
        ready = [worker for worker in self.workers if worker.ready] if is_api_path(path) else []
        if not ready:
            return None
        self._turn = (self._turn + 1) % len(ready)
        return ready[self._turn].channel

    async def stop(self) -> None:
        """Stop passing connections, let every worker finish what it is answering, then reap it."""
        self._stopping = True
        for worker in self.workers:
            worker.ready = False
            if worker.process.poll() is None:
                worker.process.terminate()
        for worker in self.workers:
            await _reap(worker.process, STOP_SECONDS)
            self._close(worker)

    def _spawn(self, index: int) -> Worker:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            command = [sys.executable, "-m", "mnist.api.workers", str(theirs.fileno())]
            process = subprocess.Popen(command, pass_fds=[theirs.fileno()])  # noqa: S603 (our own module)
        logs.event(log, "api_worker_started", worker=index, pid=process.pid)
        return Worker(index, process, ours)

    def _listen(self, worker: Worker) -> None:
        assert self._loop is not None
        receive(self._loop, worker.channel, lambda message: self._heard(worker, message), lambda: self._lost(worker))

    def _close(self, worker: Worker) -> None:
        if worker.channel.fileno() != -1:
            if self._loop is not None:
                self._loop.remove_reader(worker.channel.fileno())
            worker.channel.close()

    def _heard(self, worker: Worker, message: bytes) -> None:
        if message == READY:
            worker.ready = True
            logs.event(log, "api_worker_ready", worker=worker.index, pid=worker.process.pid)
        elif message == ACTIVATED:
            registry.look_again()
            self._tell(ACTIVATED, skip=worker)

    def _lost(self, worker: Worker) -> None:
        """A worker's channel closed: it exited (or is about to). Unless stopping, reap it and start another."""
        worker.ready = False
        self._close(worker)
        if not self._stopping:
            assert self._loop is not None
            _keep(self._loop.create_task(self._replace(worker)))

    async def _replace(self, worker: Worker) -> None:
        code = await _reap(worker.process, 5.0)
        forget_process(worker.process.pid)
        logs.event(log, "api_worker_exited", level=logging.WARNING, worker=worker.index, returncode=code)
        await asyncio.sleep(RESTART_DELAY_SECONDS)
        if not self._stopping:
            fresh = self._spawn(worker.index)
            self.workers[self.workers.index(worker)] = fresh
            self._listen(fresh)


async def _reap(process: subprocess.Popen[bytes], timeout: float) -> int:
    """Wait (off the event loop) for `process` to exit, killing it after `timeout` seconds; its exit code."""
    try:
        return await asyncio.to_thread(process.wait, timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return await asyncio.to_thread(process.wait)


def _send_quietly(channel: socket.socket, message: bytes) -> None:
    with contextlib.suppress(OSError):  # the main process is gone or busy: the others learn at their next poll
        channel.send(message)


def _ignore() -> None:
    pass


def forget_process(pid: int) -> None:
    """Drop a dead process's live gauges from the shared metrics (its counters keep counting in the totals)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def serve(channel_fd: int) -> None:
    """A worker's life: warm up the API app, say so, serve the connections passed to it until told to stop
    (SIGTERM/SIGINT, as uvicorn handles them) or until the main process is gone."""
    import uvicorn
    from uvicorn._compat import asyncio_run

    from mnist.api import app

    channel = socket.socket(fileno=channel_fd)
    PassingProtocol.destination = staticmethod(lambda path: None if is_api_path(path) else channel)
    registry.on_activation(lambda: _send_quietly(channel, ACTIVATED))
    config = uvicorn.Config(app, http=PassingProtocol, access_log=False, log_level="warning")
    server = uvicorn.Server(config)

    def stop() -> None:
        server.should_exit = True

    async def run() -> None:
        serving = asyncio.create_task(server.serve(sockets=[]))  # no socket of its own: only passed connections
        while not server.started and not serving.done():
            await asyncio.sleep(0.05)
        if server.started:
            PassingProtocol.home = {
                "config": config, "server_state": server.server_state, "app_state": server.lifespan.state,
            }  # fmt: skip
            heard = {ACTIVATED: registry.look_again}
            receive(asyncio.get_running_loop(), channel, lambda message: heard.get(message, _ignore)(), stop)
            channel.send(READY)
        await serving

    asyncio_run(run(), loop_factory=config.get_loop_factory())


if __name__ == "__main__":
    serve(int(sys.argv[1]))
