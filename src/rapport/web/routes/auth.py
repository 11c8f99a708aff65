"""Sign in and out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from rapport.domain.agents.queries import authenticate
from rapport.web.deps import DbSession, Svc, load_agent
from rapport.web.ratelimit import login_allowed
from rapport.web.templating import gettext_for, render

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Only local paths: an open redirect after login is a phishing gift."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


@router.get("/login")
async def login_form(request: Request, session: DbSession, next: str | None = None) -> Response:
    if await load_agent(session, dict(request.session)) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return render(request, "login.html", {"next": _safe_next(next), "error": None, "email": ""})


@router.post("/login")
async def login(
    request: Request,
    session: DbSession,
    services: Svc,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1024)],
    next: Annotated[str, Form()] = "/",
) -> Response:
    _ = gettext_for(request)
    client = request.client.host if request.client else "unknown"
    if not await login_allowed(services, client=client, email=email):
        context = {
            "next": _safe_next(next),
            "email": email,
            "error": _("Too many attempts. Wait a few minutes and try again."),
        }
        return render(request, "login.html", context, status_code=429)
    user = await authenticate(session, email=email, password=password)
    if user is None:
        context = {
            "next": _safe_next(next),
            "email": email,
            "error": _("That email and password do not match."),
        }
        return render(request, "login.html", context, status_code=401)
    request.session.clear()
    request.session.update({"uid": user.id, "ver": user.session_version})
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout")
async def logout(request: Request) -> Response:
    request.session.clear()
    return RedirectResponse("/login", status_code=303)
