"""Domain errors and auth failures turned into HTTP answers, for pages and for the API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from rapport.db.engine import database_unavailable
from rapport.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from rapport.web.deps import AdminRequired, ApiAuthFailed, LoginRequired
from rapport.web.i18n import N_
from rapport.web.templating import gettext_for, render


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith(("/api/", "/widget/api/"))


def _error(request: Request, status: int, message: str, field: str | None = None) -> Response:
    if _wants_json(request):
        body: dict[str, object] = {"detail": message}
        if field:
            body["field"] = field
        return JSONResponse(body, status_code=status)
    if request.url.path.startswith("/hooks/"):
        # A provider's server reads no pages (and its calls skip the session middleware).
        return PlainTextResponse(message, status_code=status)
    text = str(gettext_for(request)(message))
    if request.headers.get("hx-request") == "true":
        # htmx shows this in the page's toast area instead of swapping the target.
        return PlainTextResponse(text, status_code=status, headers={"HX-Reswap": "none"})
    return render(request, "error.html", {"status": status, "message": text}, status_code=status)


async def _login(request: Request, exc: Exception) -> Response:
    if _wants_json(request):
        return JSONResponse({"detail": "not signed in"}, status_code=401)
    target = "/login?next=" + quote(request.url.path)
    if request.headers.get("hx-request") == "true":
        return Response(status_code=401, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


async def _api_auth(request: Request, exc: Exception) -> Response:
    return JSONResponse(
        {"detail": "a valid API token is required"},
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


async def _domain(request: Request, exc: Exception) -> Response:
    if isinstance(exc, NotFound | AdminRequired):
        return _error(request, 404, N_("Not found"))
    if isinstance(exc, Forbidden):
        return _error(request, 403, str(exc) or N_("You cannot do that"))
    if isinstance(exc, Conflict):
        return _error(request, 409, str(exc))
    assert isinstance(exc, InvalidInput)
    return _error(request, 422, str(exc), exc.field)


async def _validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if _wants_json(request):
        return JSONResponse(
            {"detail": [{k: e.get(k) for k in ("loc", "msg", "type")} for e in errors]},
            status_code=422,
        )
    first = errors[0] if errors else {}
    where = ".".join(str(p) for p in first.get("loc", ())[1:])
    return _error(request, 422, f"{where}: {first.get('msg', 'invalid input')}")


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return _error(request, 404, N_("Not found"))
    response = _error(request, exc.status_code, str(exc.detail))
    response.headers.update(exc.headers or {})  # Retry-After, Allow, WWW-Authenticate...
    return response


# How long a client should wait before trying again while the database is away.
UNAVAILABLE_RETRY_AFTER_SECONDS = 5

log = structlog.get_logger(__name__)


async def _unavailable(request: Request, exc: Exception) -> Response:
    """The database is restarting or failing over: a 503 the caller retries, not a 500.

    Providers retry webhooks they get no 2xx for, so nothing is lost; browsers and API clients
    get a clear answer instead of a traceback. Any other database error is a bug: re-raised.
    """
    if not database_unavailable(exc):
        raise exc
    log.warning("web.database_unavailable", path=request.url.path, error=str(exc)[:200])
    response = _error(request, 503, N_("Rapport is briefly unavailable. Try again in a moment."))
    response.headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER_SECONDS)
    return response


HANDLERS: dict[type[Exception], Callable[[Request, Exception], Awaitable[Response]]] = {
    DBAPIError: _unavailable,
    ConnectionError: _unavailable,
    LoginRequired: _login,
    ApiAuthFailed: _api_auth,
    AdminRequired: _domain,
    NotFound: _domain,
    Forbidden: _domain,
    Conflict: _domain,
    InvalidInput: _domain,
    RequestValidationError: _validation,
    StarletteHTTPException: _http,
}


def install(app: FastAPI) -> None:
    for exc_class, handler in HANDLERS.items():
        app.add_exception_handler(exc_class, handler)
