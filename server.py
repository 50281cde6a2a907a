"""One server, one port: the Streamlit dashboard (app.py) with the JSON API (mnist.api) beside it.

`streamlit run server.py` finds the `st.App` below and serves it with uvicorn (that is what
`make run` does). Streamlit's own routes (/_stcore/..., the page, its static files) are
untouched; requests for /api/... and /image-predict go to the FastAPI app unchanged, so
it answers exactly as it does alone under `uvicorn mnist.api:app`.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import streamlit as st
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import ASGIApp, Receive, Scope, Send

from mnist.api import app as api


class Forward(BaseRoute):
    """Route every HTTP path under `path` to an ASGI app, without the prefix stripping a Mount does.

    A Mount("/api", api) would hand FastAPI "/v1/..." and a root_path, so the API would need
    different route paths inside and outside the dashboard; forwarding keeps them identical.
    """

    def __init__(self, path: str, app: ASGIApp) -> None:
        self.path = path
        self.app = app

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """Full match for the path itself and anything below it."""
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == self.path or path.startswith(self.path + "/")):
            return Match.FULL, {}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Hand the request over as is."""
        await self.app(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: object) -> None:
        """Names inside the API are not reachable through the dashboard's router."""
        raise NoMatchFound(name, path_params)


@asynccontextmanager
async def lifespan(_app: object) -> AsyncIterator[None]:
    """Run the API's own startup (load the model, migrate the history) inside the dashboard's."""
    async with api.router.lifespan_context(api):
        yield


app = st.App(
    "app.py",
    routes=[Forward("/api", api), Forward("/image-predict", api)],
    lifespan=lifespan,
)
