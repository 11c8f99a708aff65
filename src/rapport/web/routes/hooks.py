"""Provider webhooks: verify against the raw request, store, answer at once.

Everything else (parsing, contacts, conversations) happens in a worker after commit, so the
provider gets its answer in milliseconds and a redelivery of the same call is a no-op.

These are plain Starlette routes, served by `web/app.ProviderWebhooks` past the browser
middleware and FastAPI's per-request machinery (ADR 0009): a provider's call needs no
dependency injection, no body model and no OpenAPI entry.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from rapport.channels.base import BadPayload, Channel, RawRequest, VerificationFailed
from rapport.channels.registry import adapter_for, inbox_adapter
from rapport.domain.errors import NotFound
from rapport.domain.inboxes.actions import InboundCall, Kept
from rapport.domain.inboxes.models import Inbox
from rapport.domain.inboxes.queries import inbox_for_hook, inbox_memory, still_as_read
from rapport.services import Services

MAX_WEBHOOK_BYTES = 5 * 1024 * 1024


async def _raw(request: Request) -> RawRequest:
    body = await request.body()
    return RawRequest(
        method=request.method,
        url=str(request.url),
        headers={k.lower(): v for k, v in request.headers.items()},
        query_string=request.scope.get("query_string", b""),
        body=body,
    )


def _adapter(channel: str) -> Channel[Any]:
    try:
        return adapter_for(channel)
    except KeyError:
        raise NotFound("channel") from None


async def _inbox_and_adapter(
    services: Services, channel: str, inbox_id: int
) -> tuple[Inbox, Channel[Any], Any]:
    adapter = _adapter(channel)
    async with services.read_session() as session:
        inbox = await inbox_for_hook(session, inbox_id=inbox_id, channel=channel)
    return inbox, adapter, inbox_adapter(inbox, services.box)[1]


def _verified_key(adapter: Channel[Any], raw: RawRequest, config: Any) -> str | Response:
    """The call's dedupe key once its signature holds; otherwise the answer to give."""
    try:
        adapter.verify(raw, config)
    except VerificationFailed as exc:
        return PlainTextResponse("signature verification failed", status_code=exc.status_code)
    try:
        return adapter.dedupe_key(raw, config)
    except BadPayload as exc:
        return PlainTextResponse(str(exc), status_code=422)


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def handshake(request: Request) -> Response:
    """GET verification handshakes (Meta's hub.challenge); 403 for anything else."""
    channel, inbox_id = request.path_params["channel"], request.path_params["inbox_id"]
    services = _services(request)
    _inbox, adapter, config = await _inbox_and_adapter(services, channel, inbox_id)
    try:
        answer = adapter.handshake(await _raw(request), config)
    except VerificationFailed as exc:
        return PlainTextResponse("forbidden", status_code=exc.status_code)
    if answer is None:
        return PlainTextResponse("forbidden", status_code=403)
    return PlainTextResponse(answer)


async def receive(request: Request) -> Response:
    channel, inbox_id = request.path_params["channel"], request.path_params["inbox_id"]
    services = _services(request)
    if int(request.headers.get("content-length") or 0) > MAX_WEBHOOK_BYTES:
        return PlainTextResponse("payload too large", status_code=413)
    adapter = _adapter(channel)
    raw = await _raw(request)
    # The inbox as this process remembers it, or read now. The signature is checked before any
    # write (on SQLite the write lock is taken at the session's first statement, so unsigned
    # calls never queue in front of real writes), and the insert requires the inbox to be
    # unchanged since it was read (`store_inbound_calls`).
    memory = inbox_memory(services.db.engine)
    inbox = memory.get(inbox_id)
    fresh = inbox is None or inbox.channel != channel
    if fresh:
        inbox = await _read_inbox(services, memory, inbox_id, channel)
    assert inbox is not None
    for _attempt in range(3):
        config = inbox_adapter(inbox, services.box)[1]
        key = _verified_key(adapter, raw, config)
        if not isinstance(key, Response):
            kept = await services.intake.store(inbox, InboundCall(key, raw.body, raw.content_type))
            if kept is not Kept.INBOX_CHANGED:  # stored now, or a redelivery
                return _ack(adapter, raw, config)
        elif fresh or await _still_as_read(services, inbox):  # one small statement
            return key  # refused on the inbox as it is
        # The inbox changed since it was read: judge the call again on a fresh copy.
        inbox, fresh = await _read_inbox(services, memory, inbox_id, channel), True
    # Changed under every attempt: the provider retries later.
    return PlainTextResponse("busy, retry", status_code=503, headers={"Retry-After": "1"})


async def _still_as_read(services: Services, inbox: Inbox) -> bool:
    async with services.read_session() as session:
        return await still_as_read(session, inbox)


async def _read_inbox(
    services: Services, memory: dict[int, Inbox], inbox_id: int, channel: str
) -> Inbox:
    """The inbox from the database (NotFound unless active on this channel), remembered."""
    memory.pop(inbox_id, None)
    async with services.read_session() as session:
        inbox = await inbox_for_hook(session, inbox_id=inbox_id, channel=channel)
    memory[inbox_id] = inbox
    return inbox


def _ack(adapter: Channel[Any], raw: RawRequest, config: Any) -> Response:
    ack = adapter.ack(raw, config)
    return Response(ack.body, status_code=ack.status_code, media_type=ack.content_type)


routes = [
    Route("/hooks/{channel}/{inbox_id:int}", handshake, methods=["GET"]),
    Route("/hooks/{channel}/{inbox_id:int}", receive, methods=["POST"]),
]
