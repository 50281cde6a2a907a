"""GET /metrics: the server's Prometheus metrics (mnist.metrics), in Prometheus' text format."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from mnist.metrics import exposition

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    """Request latencies per route, predictions by verdict, failed saves, outages, the models in use."""
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST)
