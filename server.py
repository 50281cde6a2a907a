"""One server, one port: the Streamlit dashboard (app.py) with the JSON API (mnist.api) beside it.

`make run` runs `python server.py --host H --port P`: it warms up first (models loaded, history
migrated), and only then binds the port and serves (st.App.run, the same uvicorn runner as
`streamlit run`). `streamlit run server.py` binds the port before it even imports this file, so for
the whole warm-up a connection is accepted and never answered, which a proxy cannot tell from a
slow, live process; with nothing listening its connect fails and nginx tries the next process.

Requests for /api/..., /image-predict and /metrics go to the FastAPI app unchanged; everything else
(the page, /_stcore/..., static files, the websocket) is Streamlit's. API connections are passed to
MNIST_API_WORKERS worker processes running the same FastAPI app (mnist.api.workers): one process is held
to about one core by the GIL.
"""

import argparse
import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mnist.config import get_settings

# Before prometheus_client is imported (by mnist.api): the processes then keep their counts in files there,
# which /metrics adds up.
_METRICS_DIR = None
if __name__ == "__main__" and get_settings().api_workers and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _METRICS_DIR = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="mnist-metrics-")

import streamlit as st  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402
from starlette.types import ASGIApp, Receive, Scope, Send  # noqa: E402
from streamlit.web.server.starlette import starlette_server  # noqa: E402

from mnist.api import app as api  # noqa: E402
from mnist.api.main import warm_up  # noqa: E402
from mnist.api.middleware import BodyLimit, SecurityHeaders  # noqa: E402
from mnist.api.workers import API_PREFIXES, PassingProtocol, Workers  # noqa: E402

WORKERS: Workers | None = None  # main() starts them; the lifespan connects them to the server's event loop


class ApiFirst:
    """Send API paths straight to the API app, ahead of Streamlit's own middleware and router.

    Not a Mount: a Mount strips its prefix, so FastAPI would need other paths than it has under
    `uvicorn mnist.api:app`. Ahead of Streamlit's session, gzip and path-security layers (which
    serve its pages and files), the API answers exactly as it does alone, and ~5% cheaper per
    request (py-spy under load).
    """

    def __init__(self, app: ASGIApp, api: ASGIApp, prefixes: tuple[str, ...] = API_PREFIXES) -> None:
        self.app = app
        self.api = api
        self.prefixes = prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and any(path == p or path.startswith(p + "/") for p in self.prefixes):
            await self.api(scope, receive, send)
        else:
            await self.app(scope, receive, send)


@asynccontextmanager
async def lifespan(_app: object) -> AsyncIterator[None]:
    """Run the API's own startup (load the model, migrate the history) inside the dashboard's."""
    async with api.router.lifespan_context(api):
        if WORKERS is not None:
            WORKERS.attach(asyncio.get_running_loop())
        yield
        if WORKERS is not None:
            await WORKERS.stop()


# The API brings its own middleware; the dashboard's pages, files and uploads get the same headers and the
# same cut-off for stalled bodies (Streamlit enforces its own upload size).
app = st.App(
    "app.py",
    middleware=[
        Middleware(ApiFirst, api=api),
        Middleware(SecurityHeaders),
        Middleware(BodyLimit, limit=None, stall_seconds=get_settings().body_timeout),
    ],
    lifespan=lifespan,
)


def serve_with_passing() -> None:
    """Streamlit's uvicorn with PassingProtocol, uvicorn's own HTTP protocol that can pass a connection on.

    st.App.run takes no uvicorn settings, so the kwargs function its runner reads them from is wrapped.
    """
    uvicorn_kwargs = starlette_server._get_uvicorn_config_kwargs
    starlette_server._get_uvicorn_config_kwargs = lambda: {**uvicorn_kwargs(), "http": PassingProtocol}


def main() -> None:
    """Start the API workers, warm up, then bind HOST:PORT and serve until SIGTERM/SIGINT."""
    global WORKERS
    parser = argparse.ArgumentParser(description="Serve the dashboard and the API on one port.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=8501)
    args = parser.parse_args()
    count = get_settings().api_workers
    if count:
        WORKERS = Workers(count).start()  # they warm up meanwhile; the main process answers until they are ready
        serve_with_passing()
    try:
        warm_up(api.state.provider)  # the lifespan's own warm-up then finds everything loaded
        app.run(config={"server.address": args.host, "server.port": args.port})
    finally:
        if _METRICS_DIR is not None:
            shutil.rmtree(_METRICS_DIR, ignore_errors=True)


if __name__ == "__main__":
    main()
