"""Prometheus metrics, all in one place: GET /metrics serves them (prometheus-client's default registry).

Each app process counts its own; scrape every process (behind the proxy they are several).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, Info

REQUEST_SECONDS = Histogram(
    "mnist_http_request_duration_seconds",
    "API requests by method, route template and status, and how long they took to answer",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
PREDICTIONS = Counter("mnist_predictions_total", "Single-digit predictions made, by verdict", ["verdict"])
SAVES_FAILED = Counter("mnist_saves_failed_total", "Predictions answered but not saved, by reason", ["reason"])
LATE_COMMITS = Counter("mnist_late_commits_total", "Changes committed after their caller had stopped waiting")
DATABASE_OUTAGE = Gauge("mnist_database_outage", "1 while the history database is in an outage", ["database"])
BODY_TIMEOUTS = Counter("mnist_request_body_timeouts_total", "Requests cut off because their body stalled")
CROSS_ORIGIN_REFUSED = Counter("mnist_cross_origin_refused_total", "Cross-origin writes refused (origin not allowed)")
MODEL = Info("mnist_model", "The models answering: the digit classifier's and the number reader's versions")
