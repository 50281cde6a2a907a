"""One server, one port: the Streamlit dashboard (app.py) with the JSON API (mnist.api) beside it.

`make run` runs `python server.py --host H --port P`: it warms up first (models loaded, history
migrated), and only then binds the port and serves (st.App.run, the same uvicorn runner as
`streamlit run`). `streamlit run server.py` binds the port before it even imports this file, so for
the whole warm-up a connection is accepted and never answered, which a proxy cannot tell from a
slow, live process; with nothing listening its connect fails and nginx tries the next process.

Requests for /api/..., /image-predict and /metrics go to the FastAPI app unchanged; everything else
(the page, /_stcore/..., static files, the websocket) is Streamlit's.
"""

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import streamlit as st
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from mnist.api import app as api
from mnist.api.main import warm_up
from mnist.api.middleware import BodyLimit, SecurityHeaders
from mnist.config import get_settings

API_PREFIXES = ("/api", "/image-predict", "/metrics")


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
        yield


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


def main() -> None:
    """Warm up, then bind HOST:PORT and serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(description="Serve the dashboard and the API on one port.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=8501)
    args = parser.parse_args()
    warm_up(api.state.provider)  # the lifespan's own warm-up then finds everything loaded
    app.run(config={"server.address": args.host, "server.port": args.port})


if __name__ == "__main__":
    main()
