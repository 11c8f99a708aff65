"""Conversation actions: receiving, replying, assigning, resolving. The only place they change."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import bindparam, literal, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.db import outbox
from rapport.db.helpers import insert_object, object_of_row, sync_loaded, table_of
from rapport.db.prepared import Prepared
from rapport.domain import events
from rapport.domain.accounts.models import Account, JoinPolicy
from rapport.domain.agents.models import Team, User
from rapport.domain.contacts.actions import resolve_contact, resolve_sender
from rapport.domain.contacts.models import Contact, Identity
from rapport.domain.conversations.models import (
    OPEN_STATUSES,
    Attachment,
    ContentType,
    Conversation,
    DeliveryStatus,
    Direction,
    Message,
    SenderType,
    Status,
)
from rapport.domain.conversations.queries import (
    last_incoming_at,
    reply_recipient,
    route_identity,
)
from rapport.domain.errors import Conflict, InvalidInput, NotFound
from rapport.domain.inboxes.models import Inbox
from rapport.domain.ports import ChannelPolicy, InboundMessage, ReplyContext, StatusUpdate
from rapport.lib.clock import utcnow

DELIVER_JOB = "message.deliver"
# Our idempotency key for one outgoing message; providers that carry a string of ours back
# (WhatsApp biz_opaque_callback_data, Messenger metadata) return it, so it must be parseable.
REFERENCE_PREFIX = "rapport-msg-"
MAX_MESSAGE_LENGTH = 65_536
# A reply that only matches by sender and subject joins a conversation active this recently.
SUBJECT_THREAD_DAYS = 30
# A chain of merges is followed this far at most (a merge never points back, but be safe).
MAX_MERGE_HOPS = 8

# Delivery statuses only move forward; failed is final and only replaces a not-yet-delivered one.
_RANK = {
    DeliveryStatus.queued: 0,
    DeliveryStatus.sending: 1,
    DeliveryStatus.sent: 2,
    DeliveryStatus.delivered: 3,
    DeliveryStatus.read: 4,
}


@dataclass(frozen=True)
class StoredFile:
    """An attachment already written to the file store."""

    filename: str
    content_type: str
    size: int
    storage_key: str
    content_id: str | None = None


@dataclass(frozen=True)
class Received:
    message: Message
    conversation: Conversation
    duplicate: bool = False


def conversation_scope(conversation: Conversation) -> dict[str, int | None]:
    """What the visibility rule needs, copied onto every conversation event for fan-out."""
    return {
        "conversation_id": conversation.id,
        "contact_id": conversation.contact_id,
        "assignee_id": conversation.assignee_id,
        "team_id": conversation.team_id,
        "inbox_id": conversation.inbox_id,
    }


async def receive_message(
    session: AsyncSession,
    *,
    account: Account,
    inbox: Inbox,
    inbound: InboundMessage,
    files: Sequence[StoredFile] = (),
    look_for_redelivery: bool = True,
) -> Received | None:
    """Store one inbound message: contact, conversation, channel switch, message, events.

    Idempotent by the provider's id: a redelivery returns the stored message marked duplicate.
    With `look_for_redelivery=False` the caller skips that lookup and lets the unique index on
    the provider's id refuse a redelivery with an `IntegrityError` instead (the worker's
    batches, which then roll back and run each payload on its own, with the lookup).
    Returns None for an echo of a send made outside Rapport that has nothing to match.
    """
    if inbound.provider_id and look_for_redelivery:
        duplicate = await _received_before(session, inbox.id, inbound.provider_id)
        if duplicate is not None:
            return duplicate
    if inbound.echo:
        return await _receive_echo(session, account=account, inbox=inbox, inbound=inbound)
    now = utcnow()
    # The contact is locked until commit by the statement that marks it active.
    sender = await resolve_sender(
        session, account=account, claims=inbound.sender, name=inbound.sender_name, active_at=now
    )
    conversation = await _conversation_for(
        session,
        account=account,
        inbox=inbox,
        contact_id=sender.contact_id,
        inbound=inbound,
        now=now,
        new_contact=sender.created,
    )
    message = await _insert_message(
        session,
        account_id=account.id,
        conversation=conversation,
        inbox=inbox,
        inbound=inbound,
        now=now,
    )
    _add_files(session, message, files)
    events.record(
        session,
        account_id=account.id,
        event=events.MessageCreated(
            **conversation_scope(conversation),
            message_id=message.id,
            direction=message.direction,
            private=False,
            channel=inbox.channel,
            sender_type=SenderType.contact,
        ),
    )
    return Received(message, conversation)


async def _received_before(
    session: AsyncSession, inbox_id: int, provider_id: str
) -> Received | None:
    """The stored message of a redelivery, marked duplicate; None (the usual case) after one
    plain-row lookup that loads nothing."""
    found = await _MESSAGE_ID_BY_PROVIDER_ID.first(
        session, {"inbox_id": inbox_id, "provider_id": provider_id}
    )
    if found is None:
        return None
    existing = await session.get(Message, found.id)
    conversation = await session.get(Conversation, found.conversation_id)
    assert existing is not None and conversation is not None
    return Received(existing, conversation, duplicate=True)


async def _insert_message(
    session: AsyncSession,
    *,
    account_id: int,
    conversation: Conversation,
    inbox: Inbox,
    inbound: InboundMessage,
    now: datetime,
) -> Message:
    """Write a customer's message with one Core INSERT (no unit-of-work flush) and mark its
    arrival on its conversation (`_touch_on_incoming`). On PostgreSQL, when the conversation
    takes a Core UPDATE, both are one statement: the update is a CTE of the insert."""
    values: dict[str, object] = {
        "account_id": account_id,
        "conversation_id": conversation.id,
        "inbox_id": inbox.id,
        "channel": inbox.channel,
        "direction": Direction.incoming,
        "private": False,
        "sender_type": SenderType.contact,
        "sender_user_id": None,
        "content": inbound.content[:MAX_MESSAGE_LENGTH],
        "content_html": inbound.html,
        "content_type": inbound.content_type,
        "payload": _message_payload(inbound),
        "provider_id": inbound.provider_id,
        "client_id": None,
        "status": DeliveryStatus.received,
        "error": None,
        "outbox_job_id": None,
        "created_at": now,
    }
    touch = _touch_on_incoming(conversation, inbox, now)
    if touch is None or session.get_bind().dialect.name != "postgresql":
        message = await insert_object(session, Message, values)
        if touch is not None:
            await _TOUCH_CONVERSATION.all(session, touch)
    else:
        message = await insert_object(session, Message, values, with_cte=_TOUCHED, params=touch)
    if touch is not None:
        sync_loaded(session, Conversation, conversation.id, _touched_values(touch))
    return message


def _message_payload(inbound: InboundMessage) -> dict[str, object]:
    payload = dict(inbound.payload)
    if inbound.subject:
        payload["subject"] = inbound.subject
    if inbound.thread_refs:
        payload["thread_refs"] = list(inbound.thread_refs)
    if inbound.auto_reply:
        payload["auto_reply"] = True
    if inbound.sent_at:
        payload["sent_at"] = inbound.sent_at.isoformat()
    return payload


def _add_files(session: AsyncSession, message: Message, files: Sequence[StoredFile]) -> None:
    for stored in files:
        session.add(
            Attachment(
                account_id=message.account_id,
                message_id=message.id,
                filename=stored.filename,
                content_type=stored.content_type,
                size=stored.size,
                storage_key=stored.storage_key,
                content_id=stored.content_id,
            )
        )


def _touch_on_incoming(
    conversation: Conversation, inbox: Inbox, now: datetime
) -> dict[str, object] | None:
    """Mark the message's arrival on its conversation: the parameters of the Core UPDATE that
    does it (`_TOUCH_CONVERSATION`), or None when nothing is left to write. A conversation with
    another change pending (a status change) takes the values at its flush, in one UPDATE for
    both; a new one was created with these values."""
    values = {
        "last_activity_at": now,
        "last_incoming_at": now,
        "inbox_id": inbox.id,
        "channel": inbox.channel,
    }
    if all(getattr(conversation, name) == value for name, value in values.items()):
        return None
    if sa_inspect(conversation).modified:
        for name, value in values.items():
            setattr(conversation, name, value)
        return None
    return {
        "touched_id": conversation.id,
        "at": now,
        "by_inbox_id": inbox.id,
        "by_channel": inbox.channel,
    }


def _touched_values(touch: dict[str, object]) -> dict[str, object]:
    return {
        "last_activity_at": touch["at"],
        "last_incoming_at": touch["at"],
        "inbox_id": touch["by_inbox_id"],
        "channel": touch["by_channel"],
    }


def outgoing_reference(message_id: int) -> str:
    """The idempotency key of one outgoing message, the same on every attempt."""
    return f"{REFERENCE_PREFIX}{message_id}"


async def _outgoing_by_reference(
    session: AsyncSession, inbox_id: int, reference: str
) -> Message | None:
    ident = reference.removeprefix(REFERENCE_PREFIX)
    if not reference.startswith(REFERENCE_PREFIX) or not ident.isdigit():
        return None
    message = await session.get(Message, int(ident), with_for_update=True)
    if message is None or message.inbox_id != inbox_id or message.direction != Direction.outgoing:
        return None
    return message


# The statements every inbound message runs are built once with their values bound: SQLAlchemy
# then reuses their compiled form instead of building and keying a new statement each time.
# Those on plain tables are Core statements: rows in, rows out, no ORM loading or flushing. No
# value bound to an UPDATE is named like a column: Core would add it to the SET clause.
_MESSAGES = table_of(Message)
_CONVERSATIONS = table_of(Conversation)
# The two of one row go straight to the driver (`Prepared`, ADR 11).
_MESSAGE_ID_BY_PROVIDER_ID = Prepared(
    select(_MESSAGES.c.id, _MESSAGES.c.conversation_id).where(
        _MESSAGES.c.inbox_id == bindparam("inbox_id"),
        _MESSAGES.c.provider_id == bindparam("provider_id"),
    )
)
_TOUCH = (
    update(_CONVERSATIONS)
    .where(_CONVERSATIONS.c.id == bindparam("touched_id"))
    .values(
        last_activity_at=bindparam("at"),
        last_incoming_at=bindparam("at"),
        inbox_id=bindparam("by_inbox_id"),
        channel=bindparam("by_channel"),
    )
)
_TOUCH_CONVERSATION = Prepared(_TOUCH)
# PostgreSQL: the same UPDATE as a data-modifying CTE of the message's INSERT (one round trip).
_TOUCHED = _TOUCH.cte("touched")
# Status updates read-modify-write the status: concurrent ones must queue.
_MESSAGE_BY_PROVIDER_ID_LOCKED = (
    select(Message)
    .where(
        Message.inbox_id == bindparam("inbox_id"), Message.provider_id == bindparam("provider_id")
    )
    .with_for_update()
    .execution_options(populate_existing=True)
)


async def _locked_message_by_provider_id(
    session: AsyncSession, inbox_id: int, provider_id: str
) -> Message | None:
    return await session.scalar(
        _MESSAGE_BY_PROVIDER_ID_LOCKED, {"inbox_id": inbox_id, "provider_id": provider_id}
    )


async def _conversation_for(
    session: AsyncSession,
    *,
    account: Account,
    inbox: Inbox,
    contact_id: int,
    inbound: InboundMessage,
    now: datetime,
    new_contact: bool = False,
) -> Conversation:
    """The conversation a message joins: threaded, named by token, by subject, open, or new.

    A contact created for this message has no conversation yet: only a conversation named by
    token is looked for."""
    conversation = await _named_or_threaded(
        session,
        account=account,
        inbox=inbox,
        contact_id=contact_id,
        inbound=inbound,
        now=now,
        new_contact=new_contact,
    )
    if conversation is None and not new_contact:
        conversation = await _open_conversation(
            session, account=account, inbox=inbox, contact_id=contact_id, now=now
        )
    if conversation is None:
        return await _start_conversation(
            session,
            account=account,
            inbox=inbox,
            contact_id=contact_id,
            subject=inbound.subject,
            incoming_at=now,
        )
    if conversation.status not in OPEN_STATUSES or conversation.status == Status.snoozed:
        _change_status(session, conversation, Status.open, actor=None)
    if conversation.channel != inbox.channel:
        events.record(
            session,
            account_id=account.id,
            event=events.ChannelSwitched(
                **{**conversation_scope(conversation), "inbox_id": inbox.id},
                from_channel=conversation.channel,
                to_channel=inbox.channel,
                from_inbox_id=conversation.inbox_id,
            ),
            at=now,
        )
    return conversation


async def _named_or_threaded(
    session: AsyncSession,
    *,
    account: Account,
    inbox: Inbox,
    contact_id: int,
    inbound: InboundMessage,
    now: datetime,
    new_contact: bool = False,
) -> Conversation | None:
    """Threading that neither splits nor mixes conversations, strongest evidence first.

    1. References (email In-Reply-To/References, quoted replies) to a message of the sender's
       own conversations: a reference someone else learnt never carries them into a stranger's.
    2. A conversation named by a verified token (signed reply address, widget session).
    3. The sender's recent conversation with the same subject (email clients that drop the
       references keep the subject).
    """
    if not new_contact:
        threaded = await _by_references(
            session, account=account, contact_id=contact_id, inbound=inbound
        )
        if threaded is not None:
            return threaded
    if inbound.conversation_id is not None:
        named = await session.get(Conversation, inbound.conversation_id)
        if named is not None and named.account_id == account.id:
            return await follow_merges(session, named)
    if inbound.subject and not new_contact:
        by_subject = await _by_subject(
            session,
            account=account,
            inbox=inbox,
            contact_id=contact_id,
            subject=inbound.subject,
            now=now,
        )
        return await follow_merges(session, by_subject) if by_subject else None
    return None


async def follow_merges(session: AsyncSession, conversation: Conversation) -> Conversation:
    """The conversation a merged one now lives in (itself when it was never merged)."""
    for _ in range(MAX_MERGE_HOPS):
        if conversation.merged_into_id is None:
            return conversation
        following = await session.get(Conversation, conversation.merged_into_id)
        if following is None:
            return conversation
        conversation = following
    return conversation


async def _by_references(
    session: AsyncSession, *, account: Account, contact_id: int, inbound: InboundMessage
) -> Conversation | None:
    if not inbound.thread_refs:
        return None
    return await session.scalar(
        select(Conversation)
        .join(Message, Message.conversation_id == Conversation.id)
        .where(
            Message.account_id == account.id,
            Message.provider_id.in_(list(inbound.thread_refs)),
            Conversation.contact_id == contact_id,
        )
        .order_by(Message.id.desc())
        .limit(1)
    )


async def _by_subject(
    session: AsyncSession,
    *,
    account: Account,
    inbox: Inbox,
    contact_id: int,
    subject: str,
    now: datetime,
) -> Conversation | None:
    query = (
        select(Conversation)
        .where(
            Conversation.contact_id == contact_id,
            Conversation.subject == subject[:500],
            Conversation.last_activity_at >= now - timedelta(days=SUBJECT_THREAD_DAYS),
        )
        .order_by(Conversation.last_activity_at.desc())
        .limit(1)
    )
    if account.join_policy == JoinPolicy.never:
        query = query.where(Conversation.inbox_id == inbox.id)
    return await session.scalar(query)


def _open_conversation_statements() -> dict[str, Prepared]:
    """The contact's latest open conversation as a plain row, one statement per join policy,
    built once and sent straight to the driver (ADR 11)."""
    table = _CONVERSATIONS
    latest_open = (
        select(table)
        .where(
            table.c.contact_id == bindparam("contact_id"),
            # Fixed values, not a list bound at execution (which a prepared statement refuses).
            table.c.status.in_([literal(status.value) for status in OPEN_STATUSES]),
        )
        .order_by(table.c.last_activity_at.desc())
        .limit(1)
    )
    return {
        JoinPolicy.always: Prepared(latest_open),
        JoinPolicy.never: Prepared(latest_open.where(table.c.inbox_id == bindparam("inbox_id"))),
        JoinPolicy.window: Prepared(
            latest_open.where(table.c.last_activity_at >= bindparam("since"))
        ),
    }


_OPEN_CONVERSATION = _open_conversation_statements()


async def _open_conversation(
    session: AsyncSession, *, account: Account, inbox: Inbox, contact_id: int, now: datetime
) -> Conversation | None:
    # A conversation changed in this session (reopened, resolved by an earlier payload of the
    # batch) is written first, as an ORM query's autoflush would: the read must see it.
    await session.flush()
    statement = _OPEN_CONVERSATION.get(account.join_policy, _OPEN_CONVERSATION[JoinPolicy.always])
    row = await statement.first(
        session,
        {
            "contact_id": contact_id,
            "inbox_id": inbox.id,
            "since": now - timedelta(hours=account.join_window_hours),
        },
    )
    return None if row is None else object_of_row(session, Conversation, row)


async def _start_conversation(
    session: AsyncSession,
    *,
    account: Account,
    inbox: Inbox,
    contact_id: int,
    subject: str | None,
    incoming_at: datetime | None = None,
) -> Conversation:
    """A new open conversation; `incoming_at` when a customer's message starts it, so that
    marking the message's arrival afterwards (`_touch_on_incoming`) changes nothing."""
    now = utcnow()
    conversation = await insert_object(
        session,
        Conversation,
        {
            "account_id": account.id,
            "contact_id": contact_id,
            "inbox_id": inbox.id,
            "channel": inbox.channel,
            "status": Status.open,
            "assignee_id": None,
            "team_id": inbox.team_id,
            "subject": (subject or "")[:500],
            "priority": 0,
            "snoozed_until": None,
            "created_at": now,
            "last_activity_at": incoming_at or now,
            "last_incoming_at": incoming_at,
            "first_reply_at": None,
            "resolved_at": None,
            "merged_into_id": None,
        },
    )
    events.record(
        session,
        account_id=account.id,
        event=events.ConversationCreated(**conversation_scope(conversation), channel=inbox.channel),
    )
    return conversation


async def start_conversation(
    session: AsyncSession, *, account: Account, inbox: Inbox, contact: Contact, subject: str = ""
) -> Conversation:
    """Open a new conversation with a contact (an agent starting outreach, a widget session)."""
    if contact.account_id != account.id or inbox.account_id != account.id:
        raise NotFound("contact or inbox")
    return await _start_conversation(
        session, account=account, inbox=inbox, contact_id=contact.id, subject=subject
    )


async def find_open_conversation(
    session: AsyncSession, *, account: Account, inbox: Inbox, contact: Contact
) -> Conversation | None:
    """The open conversation a new message from this contact on this inbox would join, if any."""
    return await _open_conversation(
        session, account=account, inbox=inbox, contact_id=contact.id, now=utcnow()
    )


async def conversation_for_contact(
    session: AsyncSession, *, account: Account, inbox: Inbox, contact: Contact
) -> Conversation:
    """The conversation `receive_message` would put this contact's next message in, started if
    none is open: channels that name the conversation up front (a widget session) bind to it."""
    if contact.account_id != account.id or inbox.account_id != account.id:
        raise NotFound("contact or inbox")
    found = await find_open_conversation(session, account=account, inbox=inbox, contact=contact)
    if found is not None:
        return found
    return await _start_conversation(
        session, account=account, inbox=inbox, contact_id=contact.id, subject=None
    )


@dataclass(frozen=True)
class Reply:
    """What an agent wrote, and where it should go."""

    content: str
    private: bool = False
    inbox: Inbox | None = None
    policy: ChannelPolicy | None = None
    client_id: str | None = None
    template: dict[str, object] | None = None
    files: Sequence[StoredFile] = ()
    # The contact's identity to send to (one of several numbers or addresses); None: the most
    # recent one on the channel.
    recipient_id: int | None = None
    # Email: the subject line (the conversation's by default), kept on the message.
    subject: str | None = None


async def send_reply(
    session: AsyncSession, *, conversation: Conversation, author: User, reply: Reply
) -> Message:
    """Queue an agent's reply (or store a private note). Idempotent by the client's id."""
    if reply.client_id:
        again = await session.scalar(
            select(Message).where(
                Message.conversation_id == conversation.id, Message.client_id == reply.client_id
            )
        )
        if again is not None:
            return again
    content = reply.content.strip()
    if not content and not reply.files and not reply.template:
        raise InvalidInput("write a message first", field="content")
    if len(content) > MAX_MESSAGE_LENGTH:
        raise InvalidInput("the message is too long", field="content")
    if reply.private:
        return await _add_note(session, conversation=conversation, author=author, reply=reply)
    return await _queue_outgoing(session, conversation=conversation, author=author, reply=reply)


async def _add_note(
    session: AsyncSession, *, conversation: Conversation, author: User, reply: Reply
) -> Message:
    note = Message(
        account_id=conversation.account_id,
        conversation_id=conversation.id,
        direction=Direction.outgoing,
        private=True,
        sender_type=SenderType.user,
        sender_user_id=author.id,
        content=reply.content.strip(),
        client_id=reply.client_id,
        status=DeliveryStatus.sent,
    )
    session.add(note)
    await session.flush()
    _add_files(session, note, reply.files)
    conversation.last_activity_at = utcnow()
    _record_created(session, conversation, note, actor=author.id)
    return note


async def _queue_outgoing(
    session: AsyncSession, *, conversation: Conversation, author: User, reply: Reply
) -> Message:
    inbox, policy = reply.inbox, reply.policy
    if inbox is None or policy is None:
        raise InvalidInput("choose a channel to reply on", field="inbox")
    if inbox.account_id != conversation.account_id:
        raise NotFound("inbox")
    recipient = await _chosen_recipient(session, conversation=conversation, reply=reply)
    _check_route(
        policy,
        inbox,
        reply,
        ReplyContext(
            now=utcnow(),
            last_incoming_at=await last_incoming_at(session, conversation, inbox.id),
            recipient=recipient.value if recipient else None,
            opted_out=bool(recipient and recipient.opted_out_at),
        ),
    )
    message = Message(
        account_id=conversation.account_id,
        conversation_id=conversation.id,
        inbox_id=inbox.id,
        channel=inbox.channel,
        direction=Direction.outgoing,
        private=False,
        sender_type=SenderType.user,
        sender_user_id=author.id,
        content=reply.content.strip(),
        content_type=ContentType.template if reply.template else ContentType.text,
        payload=_outgoing_payload(reply, policy, recipient),
        client_id=reply.client_id,
        status=DeliveryStatus.queued,
    )
    session.add(message)
    await session.flush()
    _add_files(session, message, reply.files)
    job = outbox.enqueue(
        session,
        kind=DELIVER_JOB,
        payload={"message_id": message.id},
        account_id=conversation.account_id,
    )
    await session.flush()
    message.outbox_job_id = job.id
    now = utcnow()
    conversation.last_activity_at = now
    conversation.first_reply_at = conversation.first_reply_at or now
    _record_created(session, conversation, message, actor=author.id)
    return message


async def _chosen_recipient(
    session: AsyncSession, *, conversation: Conversation, reply: Reply
) -> Identity | None:
    assert reply.policy is not None
    if reply.recipient_id is None:
        return await reply_recipient(session, conversation=conversation, policy=reply.policy)
    identity = await route_identity(
        session, conversation=conversation, policy=reply.policy, identity_id=reply.recipient_id
    )
    if identity is None:
        raise InvalidInput("that address is not this contact's on this channel", field="route")
    return identity


def _check_route(policy: ChannelPolicy, inbox: Inbox, reply: Reply, ctx: ReplyContext) -> None:
    """The channel's rules, applied again on the server whatever the reply box showed."""
    if not inbox.is_active:
        raise Conflict("this inbox is disabled")
    check = policy.check(ctx)
    if not check.allowed:
        raise Conflict(check.reason or "this channel cannot take a reply now")
    if reply.template and not policy.templates:
        raise InvalidInput("this channel has no message templates", field="template")
    if check.needs_template and not reply.template:
        raise Conflict("the 24-hour window is closed: choose a template")
    content = reply.content.strip()
    if policy.max_length and not reply.template and len(content) > policy.max_length:
        raise InvalidInput("the message is longer than this channel allows", field="content")


def _outgoing_payload(
    reply: Reply, policy: ChannelPolicy, recipient: Identity | None
) -> dict[str, object]:
    payload: dict[str, object] = {}
    if reply.template:
        payload["template"] = reply.template
    if recipient is not None:
        payload["recipient_identity_id"] = recipient.id
    subject = (reply.subject or "").strip()[:500]
    if policy.threading and subject:
        payload["subject"] = subject
    return payload


def _record_created(
    session: AsyncSession, conversation: Conversation, message: Message, *, actor: int | None
) -> None:
    events.record(
        session,
        account_id=conversation.account_id,
        actor_user_id=actor,
        event=events.MessageCreated(
            **conversation_scope(conversation),
            message_id=message.id,
            direction=message.direction,
            private=message.private,
            channel=message.channel,
            sender_type=message.sender_type,
        ),
    )


async def assign_conversation(
    session: AsyncSession,
    *,
    conversation: Conversation,
    actor: User | None,
    assignee_id: int | None,
    team_id: int | None,
) -> Conversation:
    """Assign to an agent and/or a team (None clears). Both must belong to the account."""
    if assignee_id is not None:
        assignee = await session.get(User, assignee_id)
        if assignee is None or assignee.account_id != conversation.account_id:
            raise NotFound("agent")
        if not assignee.is_active:
            raise InvalidInput("that agent is deactivated", field="assignee_id")
    if team_id is not None:
        team = await session.get(Team, team_id)
        if team is None or team.account_id != conversation.account_id:
            raise NotFound("team")
    if (conversation.assignee_id, conversation.team_id) == (assignee_id, team_id):
        return conversation
    previous = (conversation.assignee_id, conversation.team_id)
    conversation.assignee_id = assignee_id
    conversation.team_id = team_id
    conversation.last_activity_at = utcnow()
    events.record(
        session,
        account_id=conversation.account_id,
        actor_user_id=actor.id if actor else None,
        event=events.ConversationAssigned(
            **conversation_scope(conversation),
            previous_assignee_id=previous[0],
            previous_team_id=previous[1],
        ),
    )
    return conversation


async def change_status(
    session: AsyncSession,
    *,
    conversation: Conversation,
    actor: User | None,
    status: Status,
    snoozed_until: datetime | None = None,
) -> Conversation:
    """Resolve, reopen, mark pending or snooze a conversation."""
    if status == Status.snoozed and snoozed_until is None:
        raise InvalidInput("choose until when to snooze", field="snoozed_until")
    if conversation.status == status and status != Status.snoozed:
        return conversation
    conversation.snoozed_until = snoozed_until if status == Status.snoozed else None
    _change_status(session, conversation, status, actor=actor.id if actor else None)
    return conversation


def _change_status(
    session: AsyncSession, conversation: Conversation, status: Status, *, actor: int | None
) -> None:
    previous = conversation.status
    now = utcnow()
    conversation.status = status
    conversation.last_activity_at = now
    conversation.resolved_at = now if status == Status.resolved else None
    events.record(
        session,
        account_id=conversation.account_id,
        actor_user_id=actor,
        event=events.ConversationStatusChanged(
            **conversation_scope(conversation), status=status, previous_status=previous
        ),
    )


# --- delivery, driven by the worker and by provider status callbacks ---------------------------


def _status_moves_forward(current: str, new: DeliveryStatus) -> bool:
    if current == DeliveryStatus.failed:
        return False
    if new == DeliveryStatus.failed:
        return current in (DeliveryStatus.queued, DeliveryStatus.sending, DeliveryStatus.sent)
    return _RANK.get(new, -1) > _RANK.get(DeliveryStatus(current), -1)


async def _set_delivery_status(
    session: AsyncSession,
    message: Message,
    status: DeliveryStatus,
    *,
    error: str | None = None,
) -> bool:
    if not _status_moves_forward(message.status, status):
        return False
    message.status = status
    message.error = error
    conversation = await session.get(Conversation, message.conversation_id)
    assert conversation is not None
    events.record(
        session,
        account_id=message.account_id,
        event=events.MessageStatusChanged(
            **conversation_scope(conversation),
            message_id=message.id,
            status=status,
            error=error,
        ),
    )
    return True


async def mark_sending(session: AsyncSession, *, message: Message) -> None:
    """The worker is about to call the provider (the state a crash leaves for reconciliation)."""
    if message.status == DeliveryStatus.queued:
        message.status = DeliveryStatus.sending


async def record_sent(
    session: AsyncSession, *, message: Message, provider_id: str | None, status: DeliveryStatus
) -> None:
    if provider_id and not message.provider_id:
        message.provider_id = provider_id
    await _set_delivery_status(session, message, status)


async def record_send_failure(
    session: AsyncSession, *, message: Message, error: str, final: bool, not_sent: bool = False
) -> None:
    """Show a send failure on the message; a final one is a dead letter the agent can retry.

    `not_sent`: the provider certainly did not take it, so the next attempt is not in doubt
    (back to `queued`, the mirror of `mark_sending`).
    """
    if final:
        await _set_delivery_status(session, message, DeliveryStatus.failed, error=error)
        return
    message.error = error
    if not_sent and message.status == DeliveryStatus.sending:
        message.status = DeliveryStatus.queued


async def retry_delivery(session: AsyncSession, *, message: Message, actor: User) -> None:
    """The agent pressed retry on a failed message: queue it again with a fresh job."""
    if message.status != DeliveryStatus.failed or message.direction != Direction.outgoing:
        raise Conflict("only failed outgoing messages can be retried")
    message.status = DeliveryStatus.queued
    message.error = None
    job = outbox.enqueue(
        session, kind=DELIVER_JOB, payload={"message_id": message.id}, account_id=message.account_id
    )
    await session.flush()
    message.outbox_job_id = job.id
    conversation = await session.get(Conversation, message.conversation_id)
    assert conversation is not None
    events.record(
        session,
        account_id=message.account_id,
        actor_user_id=actor.id,
        event=events.MessageStatusChanged(
            **conversation_scope(conversation), message_id=message.id, status=message.status
        ),
    )


class StatusResult(StrEnum):
    applied = "applied"
    stale = "stale"  # an older or repeated status: ignored, statuses only move forward
    unknown = "unknown"  # no outgoing message with that provider id (yet)


async def apply_status_update(
    session: AsyncSession, *, inbox: Inbox, update: StatusUpdate
) -> StatusResult:
    """A provider's status callback, applied monotonically whatever order they arrive in."""
    if update.up_to is not None:
        return await _apply_watermark(session, inbox=inbox, update=update)
    message = None
    if update.provider_id:
        message = await _locked_message_by_provider_id(session, inbox.id, update.provider_id)
    if message is None and update.reference:
        # The send's answer was lost (a timeout): the provider's status names it by our key.
        message = await _outgoing_by_reference(session, inbox.id, update.reference)
        if message is not None and update.provider_id and not message.provider_id:
            message.provider_id = update.provider_id
    if message is None or message.direction != Direction.outgoing:
        return StatusResult.unknown
    applied = await _set_delivery_status(session, message, update.status, error=update.error)
    return StatusResult.applied if applied else StatusResult.stale


async def _apply_watermark(
    session: AsyncSession, *, inbox: Inbox, update: StatusUpdate
) -> StatusResult:
    """Every message sent to the recipient on this inbox up to the watermark moves forward."""
    assert update.up_to is not None
    if not update.recipient:
        return StatusResult.unknown
    contact_ids = select(Identity.contact_id).where(
        Identity.account_id == inbox.account_id, Identity.value == update.recipient
    )
    messages = await session.scalars(
        select(Message)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(
            Message.inbox_id == inbox.id,
            Message.direction == Direction.outgoing,
            Message.status.in_([DeliveryStatus.sent, DeliveryStatus.delivered]),
            Message.created_at <= update.up_to,
            Conversation.contact_id.in_(contact_ids),
        )
        .order_by(Message.id)
        .with_for_update(of=Message)
        .execution_options(populate_existing=True)
    )
    applied = [await _set_delivery_status(session, m, update.status) for m in messages]
    return StatusResult.applied if any(applied) else StatusResult.stale


async def _receive_echo(
    session: AsyncSession, *, account: Account, inbox: Inbox, inbound: InboundMessage
) -> Received | None:
    """Our own send coming back (it proves the send), or one made outside Rapport.

    An echo is never a customer message. Ours is matched by the key the provider carried back;
    one sent from the provider's own app is kept as an outgoing message marked `sent_elsewhere`.
    """
    ours = None
    if inbound.reference:
        ours = await _outgoing_by_reference(session, inbox.id, inbound.reference)
    if ours is not None:
        await record_sent(
            session, message=ours, provider_id=inbound.provider_id, status=DeliveryStatus.sent
        )
        conversation = await session.get(Conversation, ours.conversation_id)
        assert conversation is not None
        return Received(ours, conversation, duplicate=True)
    if not inbound.sent_elsewhere:
        return None
    return await _store_sent_elsewhere(session, account=account, inbox=inbox, inbound=inbound)


async def _store_sent_elsewhere(
    session: AsyncSession, *, account: Account, inbox: Inbox, inbound: InboundMessage
) -> Received:
    resolved = await resolve_contact(
        session, account=account, claims=inbound.sender, name=inbound.sender_name
    )
    now = utcnow()
    conversation = await _named_or_threaded(
        session,
        account=account,
        inbox=inbox,
        contact_id=resolved.contact.id,
        inbound=inbound,
        now=now,
    )
    conversation = conversation or await _open_conversation(
        session, account=account, inbox=inbox, contact_id=resolved.contact.id, now=now
    )
    conversation = conversation or await _start_conversation(
        session, account=account, inbox=inbox, contact_id=resolved.contact.id, subject=None
    )
    message = Message(
        account_id=account.id,
        conversation_id=conversation.id,
        inbox_id=inbox.id,
        channel=inbox.channel,
        direction=Direction.outgoing,
        private=False,
        sender_type=SenderType.user,
        content=inbound.content[:MAX_MESSAGE_LENGTH],
        content_type=inbound.content_type,
        payload={**_message_payload(inbound), "sent_elsewhere": True},
        provider_id=inbound.provider_id,
        status=DeliveryStatus.sent,
        created_at=now,
    )
    session.add(message)
    await session.flush()
    conversation.last_activity_at = now
    _record_created(session, conversation, message, actor=None)
    return Received(message, conversation)
