"""Attachments: downloads for signed-in agents, and signed links providers can fetch."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from rapport.domain.conversations.models import Attachment, Message
from rapport.domain.conversations.queries import get_visible_conversation
from rapport.domain.errors import NotFound
from rapport.services import Services
from rapport.web.deps import CurrentAgent, DbSession, Svc

router = APIRouter(include_in_schema=False)

# Types a browser may show inline; everything else is a download.
INLINE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"}


async def _file_response(services: Services, attachment: Attachment) -> Response:
    data = await services.files.read(attachment.storage_key)
    inline = attachment.content_type in INLINE_TYPES
    disposition = "inline" if inline else "attachment"
    safe_name = attachment.filename.replace('"', "")
    return Response(
        data,
        media_type=attachment.content_type if inline else "application/octet-stream",
        headers={
            "Content-Disposition": f'{disposition}; filename="{safe_name}"',
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, max-age=3600",
        },
    )


@router.get("/attachments/{attachment_id}")
async def download(
    attachment_id: int, agent: CurrentAgent, session: DbSession, services: Svc
) -> Response:
    attachment = await session.get(Attachment, attachment_id)
    if attachment is None or attachment.account_id != agent.account.id:
        raise NotFound("attachment")
    message = await session.get(Message, attachment.message_id)
    assert message is not None
    await get_visible_conversation(
        session, viewer=agent.viewer, conversation_id=message.conversation_id
    )
    return await _file_response(services, attachment)


@router.get("/public/attachments/{attachment_id}/{token}")
async def public_download(
    attachment_id: int, token: str, session: DbSession, services: Svc
) -> Response:
    """Signed links for providers that fetch our media (WhatsApp, Twilio MMS, the API)."""
    if not services.attachment_link_valid(attachment_id, token):
        raise NotFound("attachment")
    attachment = await session.get(Attachment, attachment_id)
    if attachment is None:
        raise NotFound("attachment")
    return await _file_response(services, attachment)
