"""The engine's typed errors -> HTTP statuses with a string `detail`; anything else is a logged 500."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import DEFAULT_MAX_HEADER_SIZE as MAX_PART_HEADER
from starlette.exceptions import HTTPException as StarletteHTTPException

from mnist.api.middleware import routes_for
from mnist.errors import (
    EngineError,
    IdempotencyConflict,
    ImageTooLarge,
    InvalidImage,
    ModelConflict,
    ModelNotFound,
    NoDigitFound,
    NothingToLearn,
    RecordNotFound,
    StoreUnavailable,
    TooManyDigits,
    TrainingDataMissing,
    UnsupportedImageType,
)


def status_of(exc: EngineError) -> tuple[int, str]:
    """The HTTP status and detail for one of the engine's typed errors."""
    if isinstance(exc, UnsupportedImageType):
        return 415, str(exc) or "unsupported image type"
    if isinstance(exc, ImageTooLarge):
        return 413, str(exc) or "image too large"
    if isinstance(exc, InvalidImage):
        return 400, str(exc) or "not an image"
    if isinstance(exc, NoDigitFound):  # the engine's messages already say "no digit found ..."
        message = str(exc)
        if not message.startswith("no digit found"):
            message = f"no digit found: {message}" if message else "no digit found"
        return 422, message
    if isinstance(exc, TooManyDigits | IdempotencyConflict | NothingToLearn):
        return 422, str(exc)
    if isinstance(exc, StoreUnavailable):
        return 503, "the history database is unavailable; try again later"
    if isinstance(exc, RecordNotFound):
        return 404, str(exc) or "no such prediction"
    if isinstance(exc, ModelNotFound):
        return 404, str(exc) or "no such model version"
    if isinstance(exc, ModelConflict):  # one fine-tune at a time, a version without weights, the gate's refusal
        return 409, str(exc)
    if isinstance(exc, TrainingDataMissing):
        return 503, str(exc)
    return 500, "internal error"


def _validation_message(exc: RequestValidationError) -> tuple[int, str]:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return 400, "request body is not valid JSON"
    parts = []
    for e in errors:
        where = ".".join(str(x) for x in e.get("loc", ()) if x not in ("body", "query", "path"))
        parts.append(f"{where}: {e.get('msg', 'invalid')}" if where else str(e.get("msg", "invalid")))
    return 422, "; ".join(parts) or "invalid request"


async def on_validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """400 for a body that is not JSON, 422 naming each invalid field."""
    status, detail = _validation_message(exc)
    return JSONResponse({"detail": detail}, status)


async def on_engine_error(_request: Request, exc: EngineError) -> JSONResponse:
    """The status and detail status_of gives."""
    status, detail = status_of(exc)
    return JSONResponse({"detail": detail}, status)


async def on_http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """405 and OPTIONS name every method the path takes; a bad multipart body says what is wrong with it."""
    if exc.status_code == 405:
        methods = {m for route in routes_for(request.app.state.routes, request.scope) for m in route.methods}
        allow = ", ".join(sorted(methods | {"OPTIONS"}))
        if request.method == "OPTIONS":  # what this resource takes (a CORS preflight never gets here)
            return Response(status_code=204, headers={"Allow": allow})
        return JSONResponse({"detail": f"{request.method} is not allowed here; use {allow}"}, 405, {"Allow": allow})
    if exc.status_code == 400 and exc.detail == "Invalid multipart data.":
        # Starlette drops python-multipart's reason ("Maximum header size exceeded" for a filename of
        # thousands of characters, say); it is still on the exception chain.
        reason = next((str(e) for e in _chain(exc) if isinstance(e, FormParserError)), None)
        if reason:
            if "header size" in reason:
                reason += f" (a part's headers, its filename among them, may be at most {MAX_PART_HEADER:,} bytes)"
            return JSONResponse({"detail": f"invalid multipart data: {reason}"}, 400)
    return await http_exception_handler(request, exc)


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and the ones it was raised from or during, innermost last."""
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


async def on_unexpected(_request: Request, _exc: Exception) -> JSONResponse:
    """A bug: Starlette still logs the traceback server-side; the client never sees it."""
    return JSONResponse({"detail": "internal error"}, 500)


def install(app: FastAPI) -> None:
    """Register the handlers above on `app`."""
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(EngineError, on_engine_error)
    app.add_exception_handler(Exception, on_unexpected)
