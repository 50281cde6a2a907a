"""Prometheus metrics, all in one place: GET /metrics serves them (exposition()).

`make run` serves the API from several processes (mnist.api.workers): it sets PROMETHEUS_MULTIPROC_DIR, where
every process keeps its counts, and /metrics adds them up, whichever process answers. Behind nginx each
`make run` is scraped on its own (it adds up only its own processes).
"""

from __future__ import annotations

import os

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
    multiprocess,
)

REQUEST_SECONDS = Histogram(
    "mnist_http_request_duration_seconds",
    "API requests by method, route template and status, and how long they took to answer",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
PREDICTIONS = Counter("mnist_predictions_total", "Single-digit predictions made, by verdict", ["verdict"])
SAVES_FAILED = Counter("mnist_saves_failed_total", "Predictions answered but not saved, by reason", ["reason"])
LATE_COMMITS = Counter("mnist_late_commits_total", "Changes committed after their caller had stopped waiting")
# 1 while any live process of this server sees the outage.
DATABASE_OUTAGE = Gauge(
    "mnist_database_outage", "1 while the history database is in an outage", ["database"], multiprocess_mode="livemax"
)
BODY_TIMEOUTS = Counter("mnist_request_body_timeouts_total", "Requests cut off because their body stalled")
CROSS_ORIGIN_REFUSED = Counter("mnist_cross_origin_refused_total", "Cross-origin writes refused (origin not allowed)")
# An Info can't be shared between processes: each keeps its own, and /metrics shows the answering process's.
_OWN = CollectorRegistry()
MODEL = Info(
    "mnist_model", "The models answering: the digit classifier's and the number reader's versions", registry=_OWN
)


def exposition() -> bytes:
    """The metrics in Prometheus' text format: every process's counts when several serve, else this process's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(registry) + generate_latest(_OWN)
