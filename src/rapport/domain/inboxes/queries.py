"""Inbox reads."""

from __future__ import annotations

import weakref
from typing import Any

from sqlalchemy import and_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.db.helpers import table_of
from rapport.db.prepared import Prepared
from rapport.domain.errors import NotFound
from rapport.domain.inboxes.models import InboundEvent, Inbox
from rapport.lib.crypto import SecretBox


async def inboxes_of(session: AsyncSession, account_id: int) -> list[Inbox]:
    rows = await session.scalars(
        select(Inbox).where(Inbox.account_id == account_id).order_by(Inbox.name)
    )
    return list(rows)


async def get_inbox(session: AsyncSession, *, account_id: int, inbox_id: int) -> Inbox:
    inbox = await session.get(Inbox, inbox_id)
    if inbox is None or inbox.account_id != account_id:
        raise NotFound("inbox")
    return inbox


async def inbox_for_hook(session: AsyncSession, *, inbox_id: int, channel: str) -> Inbox:
    """The active inbox a provider is calling; NotFound for any mismatch (no hint given)."""
    inbox = await session.get(Inbox, inbox_id)
    if inbox is None or inbox.channel != channel or not inbox.is_active:
        raise NotFound("inbox")
    return inbox


# Provider calls name their inbox on every request. A process remembers the inboxes it has read
# for them (one memory per database, as tests and tools open several in one process), and a
# call verified against a remembered inbox is stored with `actions.store_inbound_calls`: the
# insert itself requires the row to be still active with the same settings (a changed secret
# is a new ciphertext: Fernet never repeats one), so a remembered copy is never trusted past a
# change, with no message between processes. The same statement says whether the row is still
# as read, so a redelivery needs no other; a call refused against a remembered copy makes
# `web/routes/hooks.py` ask (`still_as_read`), and the row is read again only when it changed.
_MEMORY: weakref.WeakKeyDictionary[Any, dict[int, Inbox]] = weakref.WeakKeyDictionary()
MEMORY_MAX_INBOXES = 10_000


def inbox_memory(engine: Any) -> dict[int, Inbox]:
    """This process's remembered inboxes for provider calls on `engine`, by id."""
    memory = _MEMORY.get(engine)
    if memory is None or len(memory) > MEMORY_MAX_INBOXES:
        memory = _MEMORY[engine] = {}
    return memory


_INBOXES = table_of(Inbox)
# The inbox row still as a copy of it was read: active, with the same settings ciphertext.
# Bound values: `inbox_id_as_read`, `config_as_read` (`as_read_values`).
AS_READ = and_(
    _INBOXES.c.id == bindparam("inbox_id_as_read", type_=_INBOXES.c.id.type),
    _INBOXES.c.is_active.is_(True),
    _INBOXES.c.config_encrypted
    == bindparam("config_as_read", type_=_INBOXES.c.config_encrypted.type),
)
_STILL_AS_READ = Prepared(select(_INBOXES.c.id).where(AS_READ))


def as_read_values(inbox: Inbox) -> dict[str, Any]:
    return {"inbox_id_as_read": inbox.id, "config_as_read": inbox.config_encrypted}


async def still_as_read(session: AsyncSession, inbox: Inbox) -> bool:
    """Whether the inbox is unchanged since `inbox` was read (one small statement, no load):
    a call not stored with a remembered copy is then a redelivery, and its answer stands."""
    return await _STILL_AS_READ.first(session, as_read_values(inbox)) is not None


async def inbox_by_public_token(session: AsyncSession, token: str) -> Inbox:
    inbox = await session.scalar(select(Inbox).where(Inbox.public_token == token))
    if inbox is None or not inbox.is_active:
        raise NotFound("inbox")
    return inbox


def inbox_config(inbox: Inbox, box: SecretBox) -> dict[str, Any]:
    return box.decrypt_json(inbox.config_encrypted) if inbox.config_encrypted else {}


async def failed_inbound(
    session: AsyncSession, *, account_id: int, limit: int = 50
) -> list[InboundEvent]:
    rows = await session.scalars(
        select(InboundEvent)
        .where(InboundEvent.account_id == account_id, InboundEvent.status == "failed")
        .order_by(InboundEvent.received_at.desc())
        .limit(limit)
    )
    return list(rows)
