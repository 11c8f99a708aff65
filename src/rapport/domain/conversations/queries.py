"""Conversation reads: the inbox list with its counts, reply routes. The timeline is in
`timeline.py`."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Select,
    bindparam,
    func,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.db.helpers import object_of_row, table_of
from rapport.db.prepared import Prepared
from rapport.domain.agents.models import Team, User
from rapport.domain.contacts.models import Contact, Identity
from rapport.domain.conversations.models import (
    Conversation,
    Direction,
    Message,
    Status,
)
from rapport.domain.conversations.policies import (
    Viewer,
    can_see,
    visibility_kind,
    visibility_params,
    visible_condition,
)
from rapport.domain.errors import NotFound
from rapport.domain.inboxes.models import Inbox
from rapport.domain.ports import ChannelPolicy, ReplyCheck, ReplyContext
from rapport.lib.clock import utcnow


class Scope(StrEnum):
    mine = "mine"
    unassigned = "unassigned"
    all = "all"


@dataclass(frozen=True)
class ConversationFilter:
    scope: Scope = Scope.mine
    status: Status | None = Status.open
    inbox_id: int | None = None
    team_id: int | None = None
    channel: str | None = None
    contact_id: int | None = None


@dataclass(frozen=True)
class ListItem:
    conversation: Conversation
    contact_name: str
    assignee_name: str | None
    preview: str
    preview_direction: str | None
    preview_private: bool


@dataclass(frozen=True)
class ConversationPage:
    items: list[ListItem]
    counts: dict[Scope, int]
    next_cursor: str | None


PAGE_SIZE = 25


# The list and its counts are read on every inbox view and every live refresh, so their
# statements are built once per shape (which filters are set, which kind of viewer) and cached;
# a call only binds its values. Filters that are set compare with bound parameters, and the
# visibility rule comes from `policies.visible_condition`.
_FILTERS = ("status", "inbox_id", "team_id", "channel", "contact_id")
_CONVERSATIONS = table_of(Conversation)


@dataclass(frozen=True)
class _Shape:
    visibility: str
    filters: tuple[str, ...]  # the names of the filters that are set


def _shape(viewer: Viewer, flt: ConversationFilter) -> _Shape:
    set_filters = tuple(name for name in _FILTERS if getattr(flt, name) is not None)
    return _Shape(visibility_kind(viewer), set_filters)


def _params(viewer: Viewer, flt: ConversationFilter) -> dict[str, Any]:
    params: dict[str, Any] = visibility_params(viewer)
    for name in _shape(viewer, flt).filters:
        params[f"filter_{name}"] = getattr(flt, name)
    return params


def _conditions(shape: _Shape) -> list[Any]:
    """The list's WHERE clause on `conversations`: visibility and the filters, without scope."""
    conditions: list[Any] = [visible_condition(shape.visibility)]
    for name in shape.filters:
        column = _CONVERSATIONS.c[name]
        conditions.append(column == bindparam(f"filter_{name}", type_=column.type))
    return conditions


def _in_scope(scope: Scope) -> Any:
    if scope == Scope.mine:
        return Conversation.assignee_id == bindparam("viewer_user_id")
    if scope == Scope.unassigned:
        return Conversation.assignee_id.is_(None)
    return true()


@functools.cache
def _page_statement(shape: _Shape, scope: Scope, after: bool) -> Select[Conversation, str, str]:
    query = (
        select(Conversation, Contact.name, User.name)
        .where(*_conditions(shape), _in_scope(scope))
        .join(Contact, Contact.id == Conversation.contact_id)
        .outerjoin(User, User.id == Conversation.assignee_id)
        .order_by(Conversation.last_activity_at.desc(), Conversation.id.desc())
        .limit(bindparam("limit"))
    )
    if not after:
        return query
    stamp = bindparam("after_stamp", type_=Conversation.last_activity_at.type)
    return query.where(
        (Conversation.last_activity_at < stamp)
        | ((Conversation.last_activity_at == stamp) & (Conversation.id < bindparam("after_id")))
    )


@functools.cache
def _counts_statement(shape: _Shape) -> Select[Any]:
    """The three scope counts in one round trip: one scalar subquery per scope, so each is
    planned on its own and answered from the index that fits it (a single pass with
    count(*) FILTER would have to read every matching row for its assignee).

    count(*) rather than count(id), so a count can come from an index alone."""
    return select(
        *(
            select(func.count())
            .select_from(Conversation)
            .where(*_conditions(shape), _in_scope(scope))
            .scalar_subquery()
            for scope in Scope
        )
    )


def _cursor(conversation: Conversation) -> str:
    return f"{conversation.last_activity_at.timestamp():.6f}:{conversation.id}"


def _parse_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    if not cursor:
        return None
    try:
        stamp, _, ident = cursor.partition(":")
        return datetime.fromtimestamp(float(stamp), tz=UTC), int(ident)
    except ValueError:
        return None


async def list_conversations(
    session: AsyncSession,
    *,
    viewer: Viewer,
    flt: ConversationFilter,
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
) -> ConversationPage:
    """One page of the inbox list, newest activity first, with the three scope counts.

    The conditions sit on the main query (not a subquery of ids joined back), so PostgreSQL
    walks the (account, status, last activity) index backwards and stops after one page.
    """
    after = _parse_cursor(cursor)
    shape = _shape(viewer, flt)
    params = _params(viewer, flt)
    params["limit"] = limit + 1
    if after is not None:
        params["after_stamp"], params["after_id"] = after
    query = _page_statement(shape, flt.scope, after is not None)
    rows = (await session.execute(query, params)).all()
    has_more = len(rows) > limit
    rows = rows[:limit]
    previews = await _last_messages(session, [row[0].id for row in rows])
    items = [
        ListItem(
            conversation=conv,
            contact_name=contact_name or f"Contact #{conv.contact_id}",
            assignee_name=assignee_name,
            preview=previews[conv.id].content if conv.id in previews else "",
            preview_direction=previews[conv.id].direction if conv.id in previews else None,
            preview_private=previews[conv.id].private if conv.id in previews else False,
        )
        for conv, contact_name, assignee_name in rows
    ]
    counts = await scope_counts(session, viewer=viewer, flt=flt)
    next_cursor = _cursor(rows[-1][0]) if has_more and rows else None
    return ConversationPage(items, counts, next_cursor)


async def scope_counts(
    session: AsyncSession, *, viewer: Viewer, flt: ConversationFilter
) -> dict[Scope, int]:
    """How many conversations each scope holds under this filter, in one statement."""
    statement = _counts_statement(_shape(viewer, flt))
    row = (await session.execute(statement, _params(viewer, flt))).one()
    return {scope: int(count or 0) for scope, count in zip(Scope, row, strict=True)}


_LAST_MESSAGES = select(
    Message.conversation_id, Message.content, Message.direction, Message.private
).where(
    Message.id.in_(
        select(func.max(Message.id))
        .where(Message.conversation_id.in_(bindparam("conversation_ids", expanding=True)))
        .group_by(Message.conversation_id)
    )
)


async def _last_messages(session: AsyncSession, conversation_ids: list[int]) -> dict[int, Any]:
    """The latest message of each conversation, each found through the (conversation, id) index:
    only what the list shows of it, as rows (an email's body is never loaded for a preview)."""
    if not conversation_ids:
        return {}
    rows = await session.execute(_LAST_MESSAGES, {"conversation_ids": conversation_ids})
    return {row.conversation_id: row for row in rows}


# Every conversation view and action reads it: a plain row straight from the driver (ADR 11),
# made the session's object by `object_of_row`.
_CONVERSATIONS = table_of(Conversation)
_CONVERSATION_BY_ID = Prepared(
    select(_CONVERSATIONS).where(
        _CONVERSATIONS.c.id == bindparam("conversation_id"),
        _CONVERSATIONS.c.account_id == bindparam("account_id"),  # tenant isolation in the query
    )
)


async def get_visible_conversation(
    session: AsyncSession, *, viewer: Viewer, conversation_id: int
) -> Conversation:
    """The conversation if this viewer may see it; NotFound otherwise (never 'forbidden').

    The row is read by a statement built once and judged by `can_see`, the Python half of the
    one visibility rule, rather than by building its SQL half into a new select() each time.
    """
    row = await _CONVERSATION_BY_ID.first(
        session, {"conversation_id": conversation_id, "account_id": viewer.account_id}
    )
    if row is None or not can_see(
        viewer, account_id=row.account_id, assignee_id=row.assignee_id, team_id=row.team_id
    ):
        raise NotFound("conversation")
    return object_of_row(session, Conversation, row)


async def names_by_id(session: AsyncSession, account_id: int) -> dict[str, dict[int, str]]:
    """Agent, team and inbox names of an account, for rendering events and filters."""
    result: dict[str, dict[int, str]] = defaultdict(dict)
    for kind, model in (("users", User), ("teams", Team), ("inboxes", Inbox)):
        rows = await session.execute(
            select(model.id, model.name).where(model.account_id == account_id)
        )
        result[kind] = {int(i): str(n) for i, n in rows.all()}
    return result


@dataclass(frozen=True)
class ReplyRoute:
    """One way to answer: an inbox, the contact's address on it, and the channel's verdict."""

    inbox: Inbox
    identity: Identity | None
    check: ReplyCheck
    is_default: bool
    # When the channel's reply window (WhatsApp's 24 hours) closes, if it is open now.
    window_closes_at: datetime | None = None

    @property
    def recipient(self) -> str | None:
        return self.identity.value if self.identity else None

    @property
    def key(self) -> str:
        """The reply box's value for this route: `inbox id:identity id`."""
        return f"{self.inbox.id}:{self.identity.id if self.identity else ''}"


INBOX_DISABLED = ReplyCheck(False, "this inbox is disabled")


async def reply_routes(
    session: AsyncSession,
    *,
    conversation: Conversation,
    policies: Mapping[str, ChannelPolicy],
) -> list[ReplyRoute]:
    """Every inbox of the account x every address of the contact it can send to, judged.

    The default (the inbox of the customer's last message, their most recent address there)
    comes first, then the routes that can take a reply, then the ones that cannot, with why.
    """
    inboxes = await session.scalars(
        select(Inbox).where(Inbox.account_id == conversation.account_id).order_by(Inbox.name)
    )
    identities = list(
        await session.scalars(
            select(Identity)
            .where(Identity.contact_id == conversation.contact_id)
            .order_by(Identity.last_seen_at.desc().nulls_last(), Identity.id.desc())
        )
    )
    latest_in = await _last_incoming_by_inbox(session, conversation)
    routes: list[ReplyRoute] = []
    now = utcnow()
    for inbox in inboxes:
        policy = policies.get(inbox.channel)
        if policy is None:
            continue
        last_in = latest_in.get(inbox.id)
        addresses: list[Identity | None] = [
            i for i in identities if i.kind == policy.identity_kind
        ] or [None]
        if policy.identity_kind is None:
            addresses = [None]
        for identity in addresses:
            check = (
                INBOX_DISABLED if not inbox.is_active else _judge(policy, identity, last_in, now)
            )
            closes = last_in + policy.reply_window if policy.reply_window and last_in else None
            routes.append(
                ReplyRoute(
                    inbox,
                    identity,
                    check,
                    is_default=False,
                    window_closes_at=closes if closes and closes > now else None,
                )
            )
    return _with_default(routes, conversation)


def _judge(
    policy: ChannelPolicy, identity: Identity | None, last_in: datetime | None, now: datetime
) -> ReplyCheck:
    return policy.check(
        ReplyContext(
            now=now,
            last_incoming_at=last_in,
            recipient=identity.value if identity else None,
            opted_out=bool(identity and identity.opted_out_at),
        )
    )


def _with_default(routes: list[ReplyRoute], conversation: Conversation) -> list[ReplyRoute]:
    default = next(
        (r for r in routes if r.inbox.id == conversation.inbox_id and r.check.allowed), None
    )
    marked = [
        ReplyRoute(r.inbox, r.identity, r.check, True, r.window_closes_at) if r is default else r
        for r in routes
    ]
    marked.sort(key=lambda r: (not r.is_default, not r.check.allowed, r.inbox.name))
    return marked


async def route_identity(
    session: AsyncSession, *, conversation: Conversation, policy: ChannelPolicy, identity_id: int
) -> Identity | None:
    """The contact's identity with this id if the channel can send to it, else None."""
    identity = await session.get(Identity, identity_id)
    if (
        identity is None
        or identity.contact_id != conversation.contact_id
        or identity.kind != policy.identity_kind
    ):
        return None
    return identity


async def reply_recipient(
    session: AsyncSession, *, conversation: Conversation, policy: ChannelPolicy
) -> Identity | None:
    """The contact's address on the policy's identity kind, strongest and most recent first."""
    if policy.identity_kind is None:
        return None
    rows = await session.scalars(
        select(Identity)
        .where(
            Identity.contact_id == conversation.contact_id, Identity.kind == policy.identity_kind
        )
        .order_by(Identity.last_seen_at.desc().nulls_last(), Identity.id.desc())
    )
    return rows.first()


async def _last_incoming_by_inbox(
    session: AsyncSession, conversation: Conversation
) -> dict[int, datetime]:
    """`last_incoming_at` for every inbox the contact wrote on, in one query."""
    latest = (
        select(func.max(Message.id))
        .where(
            Message.conversation_id == conversation.id,
            Message.direction == Direction.incoming,
            Message.inbox_id.is_not(None),
        )
        .group_by(Message.inbox_id)
    )
    rows = await session.execute(
        select(Message.inbox_id, Message.created_at).where(Message.id.in_(latest))
    )
    return {inbox_id: at for inbox_id, at in rows.all() if inbox_id is not None}


async def last_incoming_at(
    session: AsyncSession, conversation: Conversation, inbox_id: int
) -> datetime | None:
    """When the contact last wrote on this inbox (opens reply windows like WhatsApp's 24 hours)."""
    value = await session.scalar(
        select(Message.created_at)
        .where(
            Message.conversation_id == conversation.id,
            Message.inbox_id == inbox_id,
            Message.direction == Direction.incoming,
        )
        .order_by(Message.id.desc())
        .limit(1)
    )
    return value


async def thread_subject(
    session: AsyncSession, conversation: Conversation, *, inbox_id: int | None = None
) -> str:
    """The subject an email reply keeps: the latest one in the conversation's mail (on this
    inbox when given), else the conversation's own."""
    query = (
        select(Message.payload)
        .where(
            Message.conversation_id == conversation.id,
            Message.channel == "email",
            Message.private.is_(False),
        )
        .order_by(Message.id.desc())
        .limit(20)
    )
    if inbox_id is not None:
        query = query.where(Message.inbox_id == inbox_id)
    for payload in await session.scalars(query):
        subject = (payload or {}).get("subject")
        if isinstance(subject, str) and subject.strip():
            return subject.strip()
    return conversation.subject
