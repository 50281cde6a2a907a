"""The app factory: routers, error handlers, middleware (access log and metrics, body limit), a warm start.

Handlers are thin: they validate with typed models, call mnist.service / mnist.store, and the
engine's typed errors become HTTP statuses with a string `detail` (errors.py). Nothing that touches
the model or the database runs on the event loop (which the dashboard shares when served by
server.py): predictions go to worker threads of their own, and the other endpoints are plain `def`,
which FastAPI runs in its pool.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import CapacityLimiter, to_thread
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.routing import Mount, Route

from mnist import logs
from mnist.api import errors
from mnist.api.middleware import AccessLog, BodyLimit, CrossOriginWrites, SecurityHeaders
from mnist.api.routes import docs, health, history, metrics, models, numbers, predictions
from mnist.config import get_settings
from mnist.errors import EngineError
from mnist.metrics import MODEL
from mnist.predict import get_predictor
from mnist.reader import get_reader
from mnist.registry import ActiveModelWatcher, serve_active
from mnist.store import Store, StoreProvider, shared_provider

log = logging.getLogger(__name__)

# Predictions get worker threads of their own, at most PREDICT_THREADS at once, never the thread tokens
# Streamlit's file serving and the other endpoints draw on. Saves go through the Store's one writer thread
# (group commit), so these threads hold no database connection; 16 rather than 8 gave an API worker
# under 16 clients 390 against 321-343 requests/s (4.4-4.9 -> 3.9 ms of CPU per request, 2026-12-07).
PREDICT_THREADS = 16
# How long start-up waits for the history's migration: a database that is hung or down at start costs
# the start that much, then the app serves without a history and migrates once the database answers.
MIGRATION_WAIT_SECONDS = 10.0
ROUTERS = (
    predictions.router, numbers.router, history.router, models.router, health.router, metrics.router, docs.router,
)  # fmt: skip


def create_app(store: Store | None = None) -> FastAPI:
    """Build the API; `store` lets tests inject a database, otherwise DATABASE_URL's shared provider is used."""
    logs.configure()
    provider = StoreProvider(store) if store is not None else shared_provider()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        versions = await to_thread.run_sync(warm_up, provider)
        watcher = ActiveModelWatcher(provider).start()  # serve whichever version the registry makes active
        log_start(provider, versions)
        yield
        await to_thread.run_sync(watcher.stop)

    app = FastAPI(
        title=docs.TITLE,
        version="1",
        description="Handwritten digits in, predictions out; every prediction is kept in a history you can query.",
        docs_url=None,  # routes/docs.py serves Swagger UI and ReDoc without a CDN
        redoc_url=None,
        openapi_url=docs.OPENAPI_URL,
        lifespan=lifespan,
        generate_unique_id_function=lambda route: route.name,  # operationIds are the handlers' names
    )
    app.mount(docs.ASSETS_URL, docs.assets)
    app.state.provider = provider
    app.state.predict_slots = CapacityLimiter(PREDICT_THREADS)
    settings = get_settings()
    # Every operation's route (the docs' too), for the access log's route names and 405's Allow header.
    routes = [route for route in app.routes if isinstance(route, Route)] + [r for rt in ROUTERS for r in rt.routes]
    app.state.routes = routes
    # add_middleware puts each one outside the ones before it: the access log sees every answer.
    app.add_middleware(BodyLimit, limit=settings.max_api_body_bytes, stall_seconds=settings.body_timeout)
    app.add_middleware(CrossOriginWrites, allowed=settings.allowed_origins)
    if settings.allowed_origins:  # the browsers on those origins may read the answers too (and preflight)
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.allowed_origins),
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
            max_age=600,
        )
    app.add_middleware(SecurityHeaders)
    app.add_middleware(AccessLog, routes=routes + [route for route in app.routes if isinstance(route, Mount)])
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)
    return app


def warm_up(provider: StoreProvider) -> dict[str, str]:
    """Load the models, migrate the database and serve the registry's active version before the first request;
    no failure stops the server (the shipped weights serve until the registry answers).

    Returns the models' versions ({} when the weights are missing: /api/v1/health says so).
    """
    try:
        get_predictor().batch_concurrent_calls()  # concurrent requests share forward passes
        reader_version = get_reader().version
    except (OSError, RuntimeError) as exc:  # missing or unreadable weights
        logs.event(log, "model_not_loaded", level=logging.WARNING, detail=str(exc))
        provider.get_or_none(wait=MIGRATION_WAIT_SECONDS)
        return {}
    store = provider.get_or_none(wait=MIGRATION_WAIT_SECONDS)
    if store is not None:
        try:
            serve_active(store)
        except (EngineError, OSError, RuntimeError) as exc:  # the watcher tries again every few seconds
            logs.event(log, "model_not_served", level=logging.WARNING, detail=f"{type(exc).__name__}: {exc}")
    versions = {"model_version": get_predictor().model_version, "reader_version": reader_version}
    MODEL.info(versions)
    return versions


def log_start(provider: StoreProvider, versions: dict[str, str]) -> None:
    """One line saying what this process serves with: models, database (never its password), limits; no secret."""
    settings = get_settings()
    store = provider.store()
    logs.event(
        log,
        "started",
        **versions,
        database=store.describe() if store is not None else "off (DATABASE_URL is not usable)",
        database_ready=provider.get_or_none(wait=0) is not None,
        api_token="set" if settings.api_token else "unset",
        allowed_origins=list(settings.allowed_origins),
        body_timeout_s=settings.body_timeout,
        save_timeout_s=settings.save_timeout,
        history_timeout_s=settings.history_timeout,
        max_api_body_bytes=settings.max_api_body_bytes,
        max_image_bytes=settings.max_image_bytes,
        max_image_pixels=settings.max_image_pixels,
        predict_threads=PREDICT_THREADS,
    )
