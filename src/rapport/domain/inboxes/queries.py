"""Inbox reads."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

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
