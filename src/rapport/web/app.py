"""The application factory: middleware, routes, static files, lifespan of the running parts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import Router
from starlette.types import ASGIApp, Receive, Scope, Send

from rapport import __version__
from rapport.services import Services, build_services
from rapport.settings import Settings
from rapport.web import errors
from rapport.web.csrf import CsrfMiddleware
from rapport.web.observability import RequestMetricsMiddleware, SecurityHeadersMiddleware
from rapport.web.proxy import TrustedProxyMiddleware
from rapport.web.routes import (
    admin,
    api_docs,
    api_v1,
    auth,
    contact_settings,
    contacts,
    files,
    hooks,
    inbox,
    merges,
    ops,
    profile,
    realtime,
    segments,
    settings_webhooks,
    typing,
    widget,
    widget_messages,
    widget_socket,
)
from rapport.web.sandbox import routes as sandbox_routes
from rapport.web.sandbox.catalog import install_sandbox
from rapport.web.widget_access import WidgetCorsMiddleware

STATIC_DIR = Path(__file__).parent / "static"
SESSION_COOKIE = "rapport_session"

API_DESCRIPTION = """\
Every call needs a personal API token (your profile page): `Authorization: Bearer rpt_...`.
Everything is scoped to the token's account: another account's id is a 404. Errors are JSON,
`{"detail": "..."}`, with 400, 401, 403, 404, 409 or 422. Outbound webhooks are signed with
HMAC-SHA256 over `timestamp.body`; see docs/api.md for how to verify them.
"""

Background = Callable[[Services], AbstractAsyncContextManager[object]]


def vendor_dir(settings: Settings) -> Path:
    if settings.vendor_dir is not None:
        return settings.vendor_dir
    return Path(__file__).resolve().parents[3] / "node_modules"


class ProviderWebhooks:
    """Sends `/hooks/` calls to an app of their own, past the browser middleware.

    Providers' servers carry no cookies, need no CSRF token, no CORS and no page security
    headers, and `/hooks/` is one router, not a walk through every page's route. The proxy
    rewrite (Twilio signs the public URL) and the request metrics still apply: they sit
    outside this split. The routes read the services from the main app's state."""

    def __init__(self, app: ASGIApp, hooks_app: ASGIApp) -> None:
        self.app = app
        self.hooks_app = hooks_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/hooks/"):
            await self.hooks_app(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _webhook_app() -> ASGIApp:
    """The webhook routes with Rapport's error answers, and nothing else."""
    return ExceptionMiddleware(Router(routes=hooks.routes), handlers=errors.HANDLERS)


def create_app(
    settings: Settings,
    *,
    services: Services | None = None,
    background: Sequence[Background] = (),
) -> FastAPI:
    """Build the ASGI app. `background` runs alongside it (the in-process worker)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = services is None
        running = services or build_services(settings, with_hub=True)
        app.state.services = running
        if owned:
            await running.start()
        async with AsyncExitStack() as stack:
            for start in background:
                await stack.enter_async_context(start(running))
            try:
                yield
            finally:
                await stack.aclose()
                if owned:
                    await running.stop()

    app = FastAPI(
        title="Rapport",
        version=__version__,
        lifespan=lifespan,
        summary="The JSON API of Rapport, an omnichannel contact center",
        description=API_DESCRIPTION,
        docs_url=None,  # served by routes/api_docs.py from our own origin
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.settings = settings
    errors.install(app)
    # merges before contacts: its /contacts/merges must not be read as /contacts/{contact_id}.
    for module in (
        ops,
        auth,
        inbox,
        merges,
        contacts,
        profile,
        admin,
        files,
        realtime,
        api_v1,
        api_docs,
    ):
        app.include_router(module.router)
    for module in (contact_settings, segments, settings_webhooks):
        app.include_router(module.router)
    for module in (typing, widget, widget_messages, widget_socket):
        app.include_router(module.router)
    # Demo and development only: the sandbox page and the fake providers it plays.
    app.state.sandbox = install_sandbox(app, settings)
    if app.state.sandbox is not None:
        app.include_router(sandbox_routes.router)
    app.mount(
        "/static/vendor/htmx",
        StaticFiles(directory=vendor_dir(settings) / "htmx.org" / "dist", check_dir=False),
        name="vendor-htmx",
    )
    app.mount(
        "/static/vendor/swagger-ui",
        StaticFiles(directory=vendor_dir(settings) / "swagger-ui-dist", check_dir=False),
        name="vendor-swagger-ui",
    )
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    # Outermost first at runtime: proxy headers, metrics, the split for provider webhooks,
    # security headers, session, CSRF, widget CORS.
    app.add_middleware(WidgetCorsMiddleware)
    app.add_middleware(CsrfMiddleware)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key.get_secret_value(),
        session_cookie=SESSION_COOKIE,
        max_age=settings.session_max_age_seconds,
        same_site="lax",
        https_only=settings.secure_cookies,
    )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(ProviderWebhooks, hooks_app=_webhook_app())
    app.add_middleware(RequestMetricsMiddleware)
    app.add_middleware(TrustedProxyMiddleware, trusted=settings.trusted_proxies)
    return app
