"""Webhook reads, always scoped to one account."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.domain.errors import NotFound
from rapport.domain.webhooks.models import WebhookDelivery, WebhookSubscription


async def subscriptions_of(session: AsyncSession, *, account_id: int) -> list[WebhookSubscription]:
    rows = await session.scalars(
        select(WebhookSubscription)
        .where(WebhookSubscription.account_id == account_id)
        .order_by(WebhookSubscription.id)
    )
    return list(rows)


async def get_subscription(
    session: AsyncSession, *, account_id: int, subscription_id: int
) -> WebhookSubscription:
    found = await session.get(WebhookSubscription, subscription_id)
    if found is None or found.account_id != account_id:
        raise NotFound("webhook")
    return found


async def deliveries_of(
    session: AsyncSession,
    *,
    account_id: int,
    subscription_id: int,
    before: int | None = None,
    limit: int = 50,
) -> list[WebhookDelivery]:
    """A subscription's delivery log, newest first (`before` pages by delivery row id)."""
    query = select(WebhookDelivery).where(
        WebhookDelivery.account_id == account_id,
        WebhookDelivery.subscription_id == subscription_id,
    )
    if before is not None:
        query = query.where(WebhookDelivery.id < before)
    rows = await session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit))
    return list(rows)


async def get_delivery(
    session: AsyncSession, *, account_id: int, delivery_row_id: int
) -> WebhookDelivery:
    found = await session.get(WebhookDelivery, delivery_row_id)
    if found is None or found.account_id != account_id:
        raise NotFound("delivery")
    return found


async def delivery_by_id(session: AsyncSession, delivery_id: str) -> WebhookDelivery | None:
    """The delivery a job names (by its public delivery id); None once it was deleted."""
    result: WebhookDelivery | None = await session.scalar(
        select(WebhookDelivery).where(WebhookDelivery.delivery_id == delivery_id)
    )
    return result
