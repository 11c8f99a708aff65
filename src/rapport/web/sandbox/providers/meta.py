"""A fake of Meta's Graph API (WhatsApp Cloud API, Messenger and Instagram Send API) and of the
webhooks Meta sends, following Meta's documents. It serves the sandbox and the tests.

Use:

    fake = FakeMeta(app_secret="...", access_token="...")
    app.include_router(fake.router, prefix="/fake/meta")   # or serve it on its own port
    # point the inbox's `api_base_url` at that address, then:
    hook = fake.whatsapp_text(phone_number_id="1001", wa_id="34600111222", text="¡Hola! 👋")
    await fake.deliver(http, "http://rapport/hooks/whatsapp/7", hook)   # signed as Meta signs
    fake.sent                      # every send Meta accepted (SentMessage), in order
    fake.requests                  # every call Rapport made
    for hook in fake.whatsapp_statuses(fake.sent[-1], "delivered", "read"): ...
    fake.fail_next(status=429, code=130429, retry_after=1)   # answer errors on demand
    fake.hang_next()               # accept the next send but hold its answer (a timeout)
    fake.release()                 # let held answers go

What it plays (routes relative to the mount point):
- `POST /{version}/{node}/messages`: a WhatsApp send when the body says `messaging_product:
  whatsapp` (answers `messages[0].id`, a wamid), else a Messenger/Instagram send (answers
  `recipient_id` and `message_id`). Bearer token required (Graph error 190 otherwise).
- `GET /{version}/{media_id}`: WhatsApp media metadata with a download `url`;
  `GET /media/{media_id}`: the bytes (bearer token required); `GET /cdn/{media_id}`: public
  attachment URLs as Messenger and Instagram give them.
- `GET /{version}/{waba_id}/message_templates`: the `templates` list, paged.

Webhook builders live in `meta_payloads.py` (mixed in here) and return `Webhook` records whose
bytes are serialised as Meta does (non-ASCII as `\\uXXXX`, `/` as `\\/`) and signed with
`X-Hub-Signature-256` (and the legacy `X-Hub-Signature`).

In the sandbox (`attach`), it is one Meta app holding a WhatsApp number, a Page and an Instagram
account (`sandbox_inboxes`); the customer's messages go to the inbox's webhook signed with its
app secret, and every send it accepts is reported back there as Meta reports it: WhatsApp
`sent`, `delivered` and `read` statuses; Messenger the echo, a delivery and a read watermark;
Instagram the echo and `messaging_seen` (Instagram sends no delivery receipts).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
from fastapi import APIRouter, BackgroundTasks, Request
from starlette.responses import JSONResponse, Response

from rapport.web.sandbox.common import Deliver, InboxSpec, Transcript
from rapport.web.sandbox.providers.meta_customer import MetaCustomer, Subscription
from rapport.web.sandbox.providers.meta_payloads import SentMessage, Webhook

__all__ = ["FakeMeta", "Fault", "RecordedRequest", "SentMessage", "Webhook"]

HOLD_SECONDS = 30.0  # a held answer goes out after this even if nobody releases it
SANDBOX_APP_SECRET = "sandbox-meta-app-secret-0123456789"
SANDBOX_ACCESS_TOKEN = "sandbox-meta-access-token-0123456789"
SANDBOX_VERIFY_TOKEN = "sandbox-meta-verify-token-0123456789"
SANDBOX_PHONE_NUMBER_ID = "109000000000001"
SANDBOX_WABA_ID = "102000000000001"
SANDBOX_PAGE_ID = "100000000000001"
SANDBOX_INSTAGRAM_ID = "17841400000000001"
# Approved templates the sandbox's WhatsApp number offers (to answer after 24 hours).
SANDBOX_TEMPLATES = [
    {
        "name": "order_update",
        "language": "en",
        "status": "APPROVED",
        "category": "UTILITY",
        "id": "900000000000001",
        "components": [{"type": "BODY", "text": "Hi {{1}}, your order {{2}} is on its way."}],
    },
    {
        "name": "seguimiento",
        "language": "es",
        "status": "APPROVED",
        "category": "UTILITY",
        "id": "900000000000002",
        "components": [{"type": "BODY", "text": "Hola {{1}}, ¿pudimos resolver tu consulta?"}],
    },
]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Fault:
    """An answer to give instead of the normal one (`status` 0: hold it, then answer)."""

    status: int
    code: int | None = None
    message: str = "Temporary failure"
    retry_after: int | None = None
    accept: bool = False  # hold only: the send is accepted before the answer is held


@dataclass
class _Media:
    data: bytes
    mime_type: str


@dataclass
class FakeMeta(MetaCustomer):
    name: ClassVar[str] = "meta"
    label: ClassVar[str] = "Meta"
    channels: ClassVar[tuple[str, ...]] = ("whatsapp", "messenger", "instagram")

    app_secret: str = SANDBOX_APP_SECRET
    access_token: str = SANDBOX_ACCESS_TOKEN
    base_url: str = ""  # where this fake is reachable, for attachment URLs
    templates: list[dict[str, Any]] = field(default_factory=list)
    sent: list[SentMessage] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    media: dict[str, _Media] = field(default_factory=dict)
    transcript: Transcript = field(default_factory=Transcript)
    # Where accepted sends are reported (the sandbox); None reports nothing (the tests drive it).
    reporter: Deliver | None = None
    subscriptions: dict[str, Subscription] = field(default_factory=dict)  # by account node
    _released: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.router = self._build_router()

    def attach(self, base_url: str, deliver: Deliver) -> None:
        """Serve at base_url; report every accepted send to the app's webhook, as Meta does."""
        self.base_url = base_url
        self.reporter = deliver
        self.templates = self.templates or [dict(t) for t in SANDBOX_TEMPLATES]

    def sandbox_inboxes(self) -> list[InboxSpec]:
        app = {
            "access_token": self.access_token,
            "app_secret": self.app_secret,
            "verify_token": SANDBOX_VERIFY_TOKEN,
            "api_base_url": self.base_url,
        }
        whatsapp = {
            "phone_number_id": SANDBOX_PHONE_NUMBER_ID,
            "business_account_id": SANDBOX_WABA_ID,
        }
        return [
            InboxSpec("WhatsApp", "whatsapp", {**app, **whatsapp}),
            InboxSpec("Messenger", "messenger", {**app, "page_id": SANDBOX_PAGE_ID}),
            InboxSpec(
                "Instagram", "instagram", {**app, "instagram_account_id": SANDBOX_INSTAGRAM_ID}
            ),
        ]

    # --- steering ---------------------------------------------------------------------------

    def fail_next(
        self,
        *,
        status: int = 500,
        code: int | None = None,
        message: str = "Temporary failure",
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """The next `times` sends are refused with this Graph error (nothing is accepted)."""
        self.faults.extend(Fault(status, code, message, retry_after) for _ in range(times))

    def hang_next(self, *, accept: bool = True) -> None:
        """The next send is accepted (or not) but its answer is held until `release()`."""
        self._released.clear()
        self.faults.append(Fault(status=0, accept=accept))

    def release(self) -> None:
        self._released.set()

    def add_media(self, data: bytes, mime_type: str) -> str:
        """Host a file the customer sends; returns its media id."""
        media_id = str(secrets.randbelow(10**15) + 10**15)
        self.media[media_id] = _Media(data, mime_type)
        return media_id

    async def deliver(self, http: httpx.AsyncClient, url: str, hook: Webhook) -> httpx.Response:
        """POST a webhook to Rapport exactly as Meta would."""
        return await hook.to(url).deliver(http)

    # --- the Graph API ----------------------------------------------------------------------

    def _build_router(self) -> APIRouter:
        router = APIRouter(include_in_schema=False)
        router.add_api_route("/{version}/{node}/messages", self._send, methods=["POST"])
        router.add_api_route(
            "/{version}/{waba_id}/message_templates", self._templates, methods=["GET"]
        )
        router.add_api_route(
            "/media/{media_id}", self._download, methods=["GET"], name="fake_meta_download"
        )
        router.add_api_route("/cdn/{media_id}", self._public, methods=["GET"])
        router.add_api_route("/{version}/{media_id}", self._media_info, methods=["GET"])
        return router

    async def _record(self, request: Request) -> Any:
        body: Any = None
        raw = await request.body()
        if raw:
            try:
                body = await request.json()
            except ValueError:
                body = raw.decode("utf-8", "replace")
        self.requests.append(
            RecordedRequest(
                request.method,
                request.url.path,
                {k.lower(): v for k, v in request.headers.items()},
                body,
            )
        )
        return body

    def _authorised(self, request: Request) -> bool:
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        given = given or request.query_params.get("access_token", "")
        return secrets.compare_digest(given.encode(), self.access_token.encode())

    async def _send(
        self, version: str, node: str, request: Request, background: BackgroundTasks
    ) -> Response:
        body = await self._record(request)
        if not self._authorised(request):
            return graph_error(401, 190, "Invalid OAuth access token.")
        if not isinstance(body, dict):
            return graph_error(400, 100, "Invalid parameter")
        fault = self.faults.pop(0) if self.faults else None
        if fault is not None and fault.status:
            return graph_error(fault.status, fault.code, fault.message, fault.retry_after)
        whatsapp = body.get("messaging_product") == "whatsapp"
        record = self._accept(node, body, whatsapp=whatsapp) if not fault or fault.accept else None
        if record is not None:
            background.add_task(self.report, record)  # after the answer, as Meta's webhooks come
        if fault is not None:
            # The answer is lost to the caller: it gives up waiting (a timeout) first.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._released.wait(), HOLD_SECONDS)
        if record is None:
            return graph_error(503, 2, "Service temporarily unavailable")
        return JSONResponse(self._answer(record, whatsapp=whatsapp))

    def _accept(self, node: str, body: dict[str, Any], *, whatsapp: bool) -> SentMessage:
        if whatsapp:
            record = SentMessage(
                product="whatsapp",
                node=node,
                id="wamid." + secrets.token_urlsafe(24),
                to=str(body.get("to", "")),
                body=body,
                reference=body.get("biz_opaque_callback_data"),
            )
        else:
            message = body.get("message") if isinstance(body.get("message"), dict) else {}
            assert isinstance(message, dict)
            record = SentMessage(
                product="messenger",
                node=node,
                id="m_" + secrets.token_urlsafe(32),
                to=str((body.get("recipient") or {}).get("id", "")),
                body=body,
                reference=message.get("metadata"),
            )
        self.sent.append(record)
        text, media = record.shown()
        customer = "+" + record.to.lstrip("+") if whatsapp else record.to
        self.transcript.add((node, customer), "business", text, record.id, media=media)
        return record

    @staticmethod
    def _answer(record: SentMessage, *, whatsapp: bool) -> dict[str, Any]:
        if whatsapp:
            return {
                "messaging_product": "whatsapp",
                "contacts": [{"input": record.to, "wa_id": record.to.lstrip("+")}],
                "messages": [{"id": record.id, "message_status": "accepted"}],
            }
        return {"recipient_id": record.to, "message_id": record.id}

    async def _templates(self, version: str, waba_id: str, request: Request) -> Response:
        await self._record(request)
        if not self._authorised(request):
            return graph_error(401, 190, "Invalid OAuth access token.")
        limit = int(request.query_params.get("limit", "25"))
        start = int(request.query_params.get("after", "0") or 0)
        page = self.templates[start : start + limit]
        paging: dict[str, Any] = {"cursors": {"before": str(start), "after": str(start + limit)}}
        if start + limit < len(self.templates):
            paging["next"] = str(request.url.include_query_params(after=start + limit))
        return JSONResponse({"data": page, "paging": paging})

    async def _media_info(self, version: str, media_id: str, request: Request) -> Response:
        await self._record(request)
        if not self._authorised(request):
            return graph_error(401, 190, "Invalid OAuth access token.")
        media = self.media.get(media_id)
        if media is None:
            return graph_error(404, 100, "Unsupported get request.")
        return JSONResponse(
            {
                "messaging_product": "whatsapp",
                "url": str(request.url_for("fake_meta_download", media_id=media_id)),
                "mime_type": media.mime_type,
                "file_size": len(media.data),
                "id": media_id,
            }
        )

    async def _download(self, media_id: str, request: Request) -> Response:
        await self._record(request)
        if not self._authorised(request):
            return Response(status_code=401)
        media = self.media.get(media_id)
        if media is None:
            return Response(status_code=404)
        return Response(media.data, media_type=media.mime_type)

    async def _public(self, media_id: str, request: Request) -> Response:
        await self._record(request)
        media = self.media.get(media_id)
        if media is None:
            return Response(status_code=404)
        return Response(media.data, media_type=media.mime_type)


def graph_error(
    status: int, code: int | None, message: str, retry_after: int | None = None
) -> JSONResponse:
    """An error answer shaped as the Graph API documents it."""
    error: dict[str, Any] = {
        "message": message,
        "type": "OAuthException",
        "fbtrace_id": secrets.token_urlsafe(8),
    }
    if code is not None:
        error["code"] = code
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse({"error": error}, status_code=status, headers=headers)
