"""Job `message.deliver`: send one queued reply through its channel adapter.

queued -> sending (committed before the provider call) -> sent(provider id). A crash after the
provider accepted the message but before `sent` was recorded leaves the job's lease to expire;
the retry carries the same idempotency key, so the provider (or the integration) drops the
second copy. An attempt still `sending` is "in doubt" for the next one (`_delivery_metadata`);
a refusal that certainly sent nothing (`SendError.not_sent`) puts the reply back to `queued`.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.channels.base import SendContext
from rapport.channels.registry import adapter_for, inbox_adapter
from rapport.db import outbox
from rapport.db.outbox import ClaimedJob
from rapport.domain import events
from rapport.domain.agents.models import User
from rapport.domain.contacts.models import Identity
from rapport.domain.conversations import actions
from rapport.domain.conversations.models import (
    Attachment,
    Conversation,
    DeliveryStatus,
    Direction,
    Message,
)
from rapport.domain.conversations.queries import (
    last_incoming_at,
    reply_recipient,
    route_identity,
    thread_subject,
)
from rapport.domain.inboxes.models import Inbox
from rapport.domain.ports import ChannelPolicy, OutboundAttachment, OutboundMessage, SendError
from rapport.services import Services


def smtp_relay(services: Services) -> dict[str, object] | None:
    """The instance-wide SMTP relay (RAPPORT_SMTP_*), for channels that send mail."""
    settings = services.settings
    if not settings.smtp_host:
        return None
    return {
        "host": settings.smtp_host,
        "port": settings.smtp_port,
        "username": settings.smtp_username or "",
        "password": settings.smtp_password.get_secret_value() if settings.smtp_password else "",
        "starttls": settings.smtp_starttls,
    }


def idempotency_key(message_id: int) -> str:
    """The same for every attempt at one message: our id, namespaced."""
    return actions.outgoing_reference(message_id)


async def _outbound(
    services: Services, session: AsyncSession, message: Message, inbox: Inbox
) -> OutboundMessage:
    conversation = await session.get(Conversation, message.conversation_id)
    assert conversation is not None
    adapter = adapter_for(inbox.channel)
    recipient = await _recipient(session, conversation, message, adapter.policy)
    if adapter.policy.identity_kind is not None and recipient is None:
        raise SendError("the contact has no address on this channel", retryable=False)
    opted_out = recipient is not None and recipient.opted_out_at is not None
    if adapter.policy.consent_required and opted_out:
        raise SendError("the contact opted out on this channel", retryable=False)
    files = list(
        await session.scalars(select(Attachment).where(Attachment.message_id == message.id))
    )
    refs = list(
        await session.scalars(
            select(Message.provider_id)
            .where(
                Message.conversation_id == conversation.id,
                Message.inbox_id == inbox.id,
                Message.provider_id.is_not(None),
                Message.id < message.id,
            )
            .order_by(Message.id)
        )
    )
    sender = await session.get(User, message.sender_user_id) if message.sender_user_id else None
    return OutboundMessage(
        message_id=message.id,
        conversation_id=conversation.id,
        idempotency_key=idempotency_key(message.id),
        to=recipient.value if recipient else "",
        content=message.content,
        subject=str(message.payload.get("subject") or "")
        or await thread_subject(session, conversation, inbox_id=inbox.id)
        or None,
        attachments=tuple(
            OutboundAttachment(
                filename=f.filename,
                content_type=f.content_type,
                storage_key=f.storage_key,
                size=f.size,
                url=services.attachment_link(f.id),
            )
            for f in files
        ),
        template=message.payload.get("template"),
        thread_refs=tuple(r for r in refs if r),
        sender_name=sender.name if sender else None,
        last_incoming_at=await last_incoming_at(session, conversation, inbox.id),
        metadata=_delivery_metadata(services, message, inbox),
    )


async def _recipient(
    session: AsyncSession, conversation: Conversation, message: Message, policy: ChannelPolicy
) -> Identity | None:
    """The address the agent chose in the reply box, else the contact's most recent one."""
    chosen = message.payload.get("recipient_identity_id")
    if isinstance(chosen, int):
        return await route_identity(
            session, conversation=conversation, policy=policy, identity_id=chosen
        )
    return await reply_recipient(session, conversation=conversation, policy=policy)


def _delivery_metadata(services: Services, message: Message, inbox: Inbox) -> dict[str, object]:
    """What adapters of providers without idempotency keys need to never send twice."""
    return {
        # An earlier attempt reached the provider call and may have been accepted (a timeout
        # can hide an accepted send): such adapters look for it before sending again.
        "in_doubt": message.status == DeliveryStatus.sending,
        "queued_at": message.created_at.isoformat(),
        # Where the provider reports delivery statuses for this inbox.
        "webhook_url": services.settings.public_url
        + adapter_for(inbox.channel).webhook_path(inbox.id),
    }


async def deliver_message(services: Services, job: ClaimedJob) -> None:
    message_id = int(job.payload["message_id"])
    async with services.session() as session:
        message = await session.get(Message, message_id)
        if (
            message is None
            or message.direction != Direction.outgoing
            or message.private
            or message.status not in (DeliveryStatus.queued, DeliveryStatus.sending)
            or message.inbox_id is None
        ):
            await outbox.complete(session, job.id)  # already delivered, failed or gone
            await events.commit(session)
            return
        inbox = await session.get(Inbox, message.inbox_id)
        assert inbox is not None
        adapter, config = inbox_adapter(inbox, services.box)
        try:
            outbound = await _outbound(services, session, message, inbox)
        except SendError as exc:
            await _fail(services, session, message, job, exc)
            return
        await actions.mark_sending(session, message=message)
        await events.commit(session)

    ctx = SendContext(
        http=services.http,
        read_file=services.files.read,
        public_url=services.settings.public_url,
        extra={"smtp_relay": smtp_relay(services)},
    )
    try:
        receipt = await adapter.send(outbound, config, ctx)
    except SendError as exc:
        async with services.session() as session:
            message = await session.get(Message, message_id)
            assert message is not None
            await _fail(services, session, message, job, exc)
        return

    async with services.session() as session:
        message = await session.get(Message, message_id)
        assert message is not None
        await actions.record_sent(
            session, message=message, provider_id=receipt.provider_id, status=receipt.status
        )
        await outbox.complete(session, job.id)
        await events.commit(session)


async def _fail(
    services: Services, session: AsyncSession, message: Message, job: ClaimedJob, exc: SendError
) -> None:
    """Retry with backoff (honouring Retry-After), or make it a dead letter the agent can see."""
    dead = not exc.retryable or job.attempts >= services.settings.outbox_max_attempts
    if dead:
        await outbox.retry_later(
            session, job_id=job.id, attempts=job.attempts, error=str(exc), max_attempts=0
        )
    else:
        await outbox.retry_later(
            session,
            job_id=job.id,
            attempts=job.attempts,
            error=str(exc),
            max_attempts=services.settings.outbox_max_attempts,
            delay_seconds=exc.retry_after,
        )
    await actions.record_send_failure(
        session, message=message, error=str(exc), final=dead, not_sent=exc.not_sent
    )
    await events.commit(session)
