"""The website widget's messages: the visitor reads their one conversation and writes into it.

A visitor's message is stored as an inbound event (the webchat envelope) keyed by the
client-generated id, exactly like a provider call, and the worker runs `receive_message`; a retry
with the same id changes nothing. Receipts (delivered, read) take the same path as status updates.
"""

from __future__ import annotations

import mimetypes
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from rapport.channels.webchat.adapter import ENVELOPE_TYPE, message_envelope, receipt_envelope
from rapport.domain import events
from rapport.domain.conversations.models import DeliveryStatus, Direction
from rapport.domain.inboxes.actions import store_inbound
from rapport.domain.visitors import actions as visitor_actions
from rapport.domain.visitors.models import VisitorSession
from rapport.domain.visitors.queries import (
    VisitorMessage,
    outgoing_to_acknowledge,
    visitor_message,
    visitor_messages,
)
from rapport.lib.clock import utcnow
from rapport.lib.text import clean_filename
from rapport.services import Services
from rapport.web.deps import DbSession, Svc
from rapport.web.schemas import (
    WidgetAttachmentRead,
    WidgetMessageCreate,
    WidgetMessagePage,
    WidgetMessageRead,
    WidgetReceipt,
    WidgetSender,
)
from rapport.web.widget_access import ACCEPTED_TYPES, VisitDep, Widget, WidgetDep, limit_visit

router = APIRouter(include_in_schema=False)

# Magic numbers: the declared type must match what the bytes are.
SIGNATURES = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
    "application/pdf": (b"%PDF-",),
}


def message_read(services: Services, item: VisitorMessage) -> WidgetMessageRead:
    m = item.message
    outgoing = m.direction == Direction.outgoing
    return WidgetMessageRead(
        id=m.id,
        mine=not outgoing,
        content=m.content,
        content_type=m.content_type,
        channel=m.channel,
        status=m.status,
        client_id=None if outgoing else m.payload.get("client_id"),
        sender=WidgetSender(name=item.sender_name, avatar_url=item.sender_avatar)
        if outgoing and item.sender_name
        else None,
        attachments=[
            WidgetAttachmentRead(
                id=a.id,
                filename=a.filename,
                content_type=a.content_type,
                size=a.size,
                url=services.attachment_link(a.id),
            )
            for a in item.attachments
        ],
        created_at=m.created_at,
    )


@router.get("/widget/api/{public_token}/messages", response_model=WidgetMessagePage)
async def list_messages(
    visit: VisitDep, session: DbSession, services: Svc, before: int | None = None
) -> WidgetMessagePage:
    items, has_more = await visitor_messages(session, visit=visit, before_id=before)
    return WidgetMessagePage(
        conversation_id=visit.conversation_id,
        messages=[message_read(services, i) for i in items],
        has_more=has_more,
    )


@router.get("/widget/api/{public_token}/messages/{message_id}", response_model=WidgetMessageRead)
async def one_message(
    message_id: int, visit: VisitDep, session: DbSession, services: Svc
) -> WidgetMessageRead:
    return message_read(
        services, await visitor_message(session, visit=visit, message_id=message_id)
    )


async def _store_message(
    session: AsyncSession,
    widget: Widget,
    visit: VisitorSession,
    *,
    client_id: str,
    content: str,
    files: list[tuple[str, str, bytes]],
) -> JSONResponse:
    conversation = await visitor_actions.bind_conversation(
        session, account=widget.account, inbox=widget.inbox, visit=visit
    )
    body = message_envelope(
        visit_id=visit.id,
        visitor_id=visit.visitor_id,
        conversation_id=conversation.id,
        client_id=client_id,
        content=content,
        name=str(visit.details.get("name") or ""),
        sent_at=utcnow(),
        files=files,
    )
    await store_inbound(
        session,
        inbox=widget.inbox,
        dedupe_key=f"msg:{visit.id}:{client_id}",
        body=body,
        content_type=ENVELOPE_TYPE,
    )
    await events.commit(session)
    return JSONResponse(
        {"client_id": client_id, "conversation_id": conversation.id}, status_code=202
    )


@router.post("/widget/api/{public_token}/messages", status_code=202)
async def post_message(
    body: WidgetMessageCreate,
    widget: WidgetDep,
    visit: VisitDep,
    session: DbSession,
    services: Svc,
) -> JSONResponse:
    await limit_visit(services, services.settings.widget_message_rate_limit, "widget-msg", visit)
    return await _store_message(
        session, widget, visit, client_id=body.client_id, content=body.content, files=[]
    )


async def _checked_file(services: Services, upload: UploadFile) -> tuple[str, str, bytes]:
    limit = services.settings.widget_max_upload_bytes
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(413, "the file is too large")
    declared = (upload.content_type or "").split(";")[0].strip().lower()
    if declared not in ACCEPTED_TYPES or not data.startswith(SIGNATURES[declared]):
        raise HTTPException(415, "send an image (PNG, JPEG, GIF, WebP) or a PDF")
    extension = mimetypes.guess_extension(declared) or ""
    name = clean_filename(upload.filename or "", fallback="file" + extension)
    return name, declared, data


@router.post("/widget/api/{public_token}/attachments", status_code=202)
async def post_attachment(
    widget: WidgetDep,
    visit: VisitDep,
    session: DbSession,
    services: Svc,
    client_id: Annotated[str, Form(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")],
    file: Annotated[UploadFile, File()],
    content: Annotated[str, Form(max_length=10_000)] = "",
) -> JSONResponse:
    """A file from the visitor (images and PDF only), as one message with optional text."""
    await limit_visit(services, services.settings.widget_message_rate_limit, "widget-msg", visit)
    checked = await _checked_file(services, file)
    return await _store_message(
        session, widget, visit, client_id=client_id, content=content, files=[checked]
    )


@router.post("/widget/api/{public_token}/receipts", status_code=202)
async def post_receipt(
    body: WidgetReceipt, widget: WidgetDep, visit: VisitDep, session: DbSession
) -> JSONResponse:
    """The widget showed our replies (delivered) or the visitor saw them (read)."""
    status = DeliveryStatus(body.status)
    ids = await outgoing_to_acknowledge(
        session, visit=visit, inbox_id=widget.inbox.id, up_to_id=body.up_to, below=status
    )
    if ids:
        await store_inbound(
            session,
            inbox=widget.inbox,
            dedupe_key=f"{status}:{visit.id}:{ids[-1]}:{len(ids)}",
            body=receipt_envelope(status=status.value, message_ids=ids, at=utcnow()),
            content_type=ENVELOPE_TYPE,
        )
        await events.commit(session)
    return JSONResponse({"acknowledged": len(ids)}, status_code=202)
