"""An agent's reply going out through a channel, and the provider's status callbacks for it."""

from __future__ import annotations

from sqlalchemy import func, select

from rapport.channels.registry import adapter_for
from rapport.db.outbox import OutboxJob
from rapport.domain import events
from rapport.domain.accounts.models import Account
from rapport.domain.agents.models import User
from rapport.domain.conversations import actions
from rapport.domain.conversations.actions import StoredFile
from rapport.domain.conversations.models import Conversation, Message
from rapport.domain.inboxes.models import Inbox
from rapport.web.sandbox.common import SignedCall
from rapport.web.sandbox.providers.twilio import signed, status_params
from tests.support.fakes import BUSINESS_NUMBER, TWILIO_SID, TWILIO_TOKEN


async def agent_of(services, factory, account_id: int) -> User:
    async with services.read_session() as session:
        user = await session.scalar(select(User).where(User.account_id == account_id).limit(1))
        account = await session.get(Account, account_id)
    return user or await factory.user(account)


async def latest_conversation(services, account_id: int) -> Conversation:
    async with services.read_session() as session:
        return await session.scalar(
            select(Conversation)
            .where(Conversation.account_id == account_id)
            .order_by(Conversation.id.desc())
            .limit(1)
        )


async def reply(
    services, factory, inbox: Inbox, text: str, conversation_id=None, files=()
) -> Message:
    """The agent answers the latest conversation on this inbox's channel (queued, not sent).

    `files` are (filename, content type, data) attached to the reply.
    """
    author = await agent_of(services, factory, inbox.account_id)
    stored = [
        StoredFile(name, kind, len(data), await services.files.save(data))
        for name, kind, data in files
    ]
    if conversation_id is None:
        conversation_id = (await latest_conversation(services, inbox.account_id)).id
    async with services.session() as session:
        conversation = await session.get(Conversation, conversation_id)
        message = await actions.send_reply(
            session,
            conversation=conversation,
            author=author,
            reply=actions.Reply(
                content=text,
                inbox=await session.merge(inbox),
                policy=adapter_for(inbox.channel).policy,
                files=stored,
            ),
        )
        await events.commit(session)
        return message


async def reply_and_deliver(services, factory, worker, inbox: Inbox, text: str) -> Message:
    message = await reply(services, factory, inbox, text)
    await worker.drain()
    async with services.read_session() as session:
        return await session.get(Message, message.id)


def status_call(
    url: str, sid: str, status: str, *, error_code: str = "", to: str = "+14155550123"
) -> SignedCall:
    params = status_params(
        account_sid=TWILIO_SID,
        sid=sid,
        status=status,
        sender=BUSINESS_NUMBER,
        to=to,
        error_code=error_code,
    )
    return signed(url, TWILIO_TOKEN, params)


async def claimed_deliveries(services) -> int:
    """How many `message.deliver` jobs a worker holds right now (claimed, lease running)."""
    async with services.read_session() as session:
        return await session.scalar(
            select(func.count())
            .select_from(OutboxJob)
            .where(
                OutboxJob.kind == actions.DELIVER_JOB,
                OutboxJob.locked_by.is_not(None),
                OutboxJob.attempts == 1,
            )
        )
