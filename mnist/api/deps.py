"""What routes share: the store dependency, the history filters, the bearer token and the prediction threads."""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Literal, TypeVar

from anyio import to_thread
from fastapi import Depends, Header, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BeforeValidator

from mnist.config import get_settings
from mnist.errors import InvalidImage
from mnist.results import VERDICTS
from mnist.store import SOURCES, Filters, Store, StoreProvider

_DATA_URL_PREFIX = re.compile(r"^data:image/[\w.+-]+;base64,", re.IGNORECASE)
_WHITESPACE = re.compile(rb"\s+")
T = TypeVar("T")


def provider(request: Request) -> StoreProvider:
    """The app's store provider (set by create_app)."""
    return request.app.state.provider


def store(request: Request) -> Store:
    """The migrated store for a history route, or StoreUnavailable (503)."""
    return provider(request).get()


StoreDep = Annotated[Store, Depends(store)]  # history routes: 503 while the database is down
ProviderDep = Annotated[StoreProvider, Depends(provider)]  # prediction routes: save if the database is up


def _iso_8601(value: object) -> object:
    """An ISO 8601 text, as the schema's date-time says; not the Unix timestamps pydantic would also take."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("expected an ISO 8601 date and time, e.g. 2024-03-01T12:00:00Z") from None
    return value


IsoTime = Annotated[datetime, BeforeValidator(_iso_8601)]


def history_filters(
    digit: Annotated[
        int | None,
        Query(
            ge=0,
            le=9,
            description="Readings that contain this digit: a digit row that read it, or a number row with it "
            'anywhere in its text (4 finds "4096")',
        ),
    ] = None,
    text: Annotated[
        str | None,
        Query(
            pattern=r"^[0-9]{1,64}$",
            description='Readings whose text contains these digits, in this order ("40" finds "4096" and "140"; '
            '"4" also finds a digit row that read 4)',
        ),
    ] = None,
    source: Annotated[Literal[SOURCES] | None, Query()] = None,
    labelled: Annotated[bool | None, Query()] = None,
    since: Annotated[IsoTime | None, Query(description="Saved at or after (ISO 8601; no zone means UTC)")] = None,
    until: Annotated[IsoTime | None, Query(description="Saved before (ISO 8601; no zone means UTC)")] = None,
    min_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
    max_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
    verdict: Annotated[Literal[VERDICTS] | None, Query(description="What the engine made of the picture")] = None,
    model_version: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=64,
            description="Readings made by this model version (GET /api/v1/models lists them)",
        ),
    ] = None,
) -> Filters:
    """The History page's ten filters as query parameters; none given means every row."""
    return Filters(
        digit=digit,
        text=text,
        source=source,
        labelled=labelled,
        since=since,
        until=until,
        min_confidence=min_confidence,
        max_confidence=max_confidence,
        verdict=verdict,
        model_version=model_version,
    )


FiltersDep = Annotated[Filters, Depends(history_filters)]

# Any visible ASCII, 1-255 characters (a UUID is the usual choice); the same key on a retry finds the
# rows the first try made (mnist.service.Idempotency).
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Send the same key again to retry this request: the answer and row ids are the first try's, "
        "and no second row is added. Reusing a key for a different request is a 422.",
    ),
]


# Declared in the OpenAPI schema (security scheme "bearer"); checked below, so a missing or malformed header
# is our 401 with our message, not FastAPI's 403.
bearer = HTTPBearer(
    scheme_name="bearer", auto_error=False, description="MNIST_API_TOKEN; needed only when the server sets it"
)


def authorised(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
    """Pass when MNIST_API_TOKEN is unset or the request carries it as a bearer token; 401 otherwise."""
    token = get_settings().api_token
    if token is None:
        return
    given = credentials.credentials.strip() if credentials is not None else ""
    # compare_digest: the time taken must not reveal how much of the token matched.
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise HTTPException(
            401, "a valid 'Authorization: Bearer <token>' header is required", {"WWW-Authenticate": "Bearer"}
        )


async def in_predict_thread(request: Request, work: Callable[..., T], *args: object) -> T:
    """Run model work on one of the app's own prediction threads (see PREDICT_THREADS in main.py)."""
    return await to_thread.run_sync(work, *args, limiter=request.app.state.predict_slots)


def decode_base64_image(text: str) -> bytes:
    """The original contract's `image` string -> file bytes (data-URL prefix, whitespace, url-safe, no padding ok)."""
    data = _WHITESPACE.sub(b"", _DATA_URL_PREFIX.sub("", text.strip(), count=1).encode("ascii", "replace"))
    if b"-" in data or b"_" in data:
        data = data.replace(b"-", b"+").replace(b"_", b"/")
    data += b"=" * (-len(data) % 4)
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidImage("image is not valid base64") from exc
