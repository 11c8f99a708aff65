"""Webhook actions: subscriptions change here, and committed events become deliveries here.

`fan_out` runs inside `events.commit`, after the events are numbered and before the commit, so a
delivery (its log row and its outbox job) exists exactly when its event does: one transaction,
the same outbox every other job goes through.
"""

from __future__ import annotations

import time
import uuid
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.db import outbox
from rapport.domain import events
from rapport.domain.agents.models import User
from rapport.domain.errors import Conflict, InvalidInput
from rapport.domain.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from rapport.domain.webhooks.targets import Target, targets_for
from rapport.lib.clock import utcnow
from rapport.lib.crypto import SecretBox, random_token

WEBHOOK_JOB = "webhook.deliver"
SECRET_PREFIX = "whsec_"
MAX_URL_LENGTH = 2000
# How often a process prunes one account's delivery log, at most (see `prune_deliveries_when_due`).
PRUNE_EVERY_SECONDS = 3600.0


def event_catalogue() -> list[str]:
    """Every event type a subscription may choose, in a stable order."""
    return sorted(events.EVENT_TYPES)


def _valid_url(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(
            "the URL must start with http:// or https:// and name a host", field="url"
        )
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput("the URL is too long", field="url")
    if parts.username or parts.password:
        raise InvalidInput("put credentials in your receiver, not in the URL", field="url")
    return url


def _valid_types(event_types: Iterable[str]) -> list[str]:
    chosen = sorted(set(event_types))
    if not chosen:
        raise InvalidInput("choose at least one event type", field="event_types")
    unknown = [t for t in chosen if t not in events.EVENT_TYPES]
    if unknown:
        raise InvalidInput(f"unknown event type {unknown[0]!r}", field="event_types")
    return chosen


def _new_secret(box: SecretBox) -> tuple[str, str]:
    plain = SECRET_PREFIX + random_token(24)
    return plain, box.encrypt_json({"secret": plain})


def subscription_secret(box: SecretBox, subscription: WebhookSubscription) -> str:
    return str(box.decrypt_json(subscription.secret_encrypted)["secret"])


def _changed(
    session: AsyncSession, subscription: WebhookSubscription, change: str, actor: User
) -> None:
    events.record(
        session,
        account_id=subscription.account_id,
        event=events.WebhookSubscriptionChanged(subscription_id=subscription.id, change=change),
        actor_user_id=actor.id,
    )


async def create_subscription(
    session: AsyncSession,
    *,
    actor: User,
    url: str,
    event_types: Iterable[str],
    box: SecretBox,
    description: str = "",
    active: bool = True,
) -> tuple[WebhookSubscription, str]:
    """A new subscription of the actor's account; the plain secret is returned once."""
    plain, encrypted = _new_secret(box)
    subscription = WebhookSubscription(
        account_id=actor.account_id,
        url=_valid_url(url),
        description=description.strip()[:200],
        secret_encrypted=encrypted,
        event_types=_valid_types(event_types),
        active=active,
        created_by_user_id=actor.id,
    )
    session.add(subscription)
    await session.flush()
    _changed(session, subscription, "created", actor)
    return subscription, plain


async def update_subscription(
    session: AsyncSession,
    *,
    subscription: WebhookSubscription,
    actor: User,
    url: str | None = None,
    event_types: Iterable[str] | None = None,
    description: str | None = None,
    active: bool | None = None,
) -> WebhookSubscription:
    """Change what a subscription receives and where; fields left as None stay as they are.

    Everything is checked before anything changes, so a refused edit leaves no trace."""
    new_url = _valid_url(url) if url is not None else subscription.url
    new_types = _valid_types(event_types) if event_types is not None else None
    subscription.url = new_url
    if new_types is not None:
        subscription.event_types = new_types
    if description is not None:
        subscription.description = description.strip()[:200]
    if active is not None:
        subscription.active = active
    subscription.updated_at = utcnow()
    _changed(session, subscription, "updated", actor)
    return subscription


async def rotate_secret(
    session: AsyncSession, *, subscription: WebhookSubscription, actor: User, box: SecretBox
) -> str:
    """A new signing secret (returned once); deliveries from now on are signed with it."""
    plain, subscription.secret_encrypted = _new_secret(box)
    subscription.updated_at = utcnow()
    _changed(session, subscription, "secret_rotated", actor)
    return plain


async def delete_subscription(
    session: AsyncSession, *, subscription: WebhookSubscription, actor: User
) -> None:
    """Remove a subscription and its delivery log; queued attempts find nothing and stop."""
    _changed(session, subscription, "deleted", actor)
    await session.delete(subscription)
    await session.flush()


async def fan_out(session: AsyncSession, published: Sequence[events.PublishedEvent]) -> None:
    """A delivery (log row + outbox job) for every active subscription that wants each event.

    The subscriptions come from `targets.targets_for`, which reads them only when this process
    cannot prove it already knows them (most commits read nothing)."""
    if not published:
        return
    found = await targets_for(session, published)
    for item in published:
        for target in found.get(item.account_id, ()):
            if item.type in target.event_types:
                _enqueue_delivery(session, target, item)


def _enqueue_delivery(session: AsyncSession, target: Target, item: events.PublishedEvent) -> None:
    delivery_id = str(uuid.uuid4())
    session.add(
        WebhookDelivery(
            account_id=target.account_id,
            subscription_id=target.id,
            delivery_id=delivery_id,
            event_type=item.type,
            event_seq=item.seq,
            payload={"id": delivery_id, **item.to_wire()},
            status=DeliveryStatus.pending,
            next_attempt_at=utcnow(),
        )
    )
    outbox.enqueue(
        session,
        kind=WEBHOOK_JOB,
        payload={"delivery_id": delivery_id},
        account_id=target.account_id,
    )


@dataclass(frozen=True)
class Attempt:
    """How one POST to the receiver went."""

    response_code: int | None
    duration_ms: int
    error: str | None  # None when the receiver answered 2xx


async def record_attempt(
    session: AsyncSession,
    *,
    delivery: WebhookDelivery,
    attempt: Attempt,
    retry_in: float | None,
) -> None:
    """Log one attempt: succeeded, to be tried again in `retry_in` seconds, or given up (None)."""
    now = utcnow()
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.response_code = attempt.response_code
    delivery.duration_ms = attempt.duration_ms
    delivery.last_error = attempt.error[:2000] if attempt.error else None
    if attempt.error is None:
        delivery.status = DeliveryStatus.succeeded
        delivery.next_attempt_at = None
    elif retry_in is None:
        delivery.status = DeliveryStatus.failed
        delivery.next_attempt_at = None
    else:
        delivery.status = DeliveryStatus.pending
        delivery.next_attempt_at = now + timedelta(seconds=retry_in)


async def give_up(session: AsyncSession, *, delivery: WebhookDelivery, reason: str) -> None:
    """Stop without an attempt (the subscription was paused before the delivery went out)."""
    delivery.status = DeliveryStatus.failed
    delivery.next_attempt_at = None
    delivery.last_error = reason


async def retry_delivery(session: AsyncSession, *, delivery: WebhookDelivery) -> None:
    """Send a finished delivery again, with the same delivery id and body (the retry button)."""
    if delivery.status == DeliveryStatus.pending:
        raise Conflict("this delivery is already waiting for its next attempt")
    delivery.status = DeliveryStatus.pending
    delivery.next_attempt_at = utcnow()
    outbox.enqueue(
        session,
        kind=WEBHOOK_JOB,
        payload={"delivery_id": delivery.delivery_id},
        account_id=delivery.account_id,
    )


async def prune_deliveries(session: AsyncSession, *, account_id: int, older_than: timedelta) -> int:
    """Forget finished deliveries older than the retention period; returns how many."""
    cutoff = utcnow() - older_than
    result = await session.execute(
        delete(WebhookDelivery).where(
            WebhookDelivery.account_id == account_id,
            WebhookDelivery.created_at < cutoff,
            WebhookDelivery.status != DeliveryStatus.pending,
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


# When each account's log was last pruned by this process: one memory per database (engine),
# as tests and tools open several in one process.
_PRUNED_AT: weakref.WeakKeyDictionary[Any, dict[int, float]] = weakref.WeakKeyDictionary()


async def prune_deliveries_when_due(
    session: AsyncSession, *, account_id: int, older_than: timedelta
) -> int | None:
    """`prune_deliveries`, at most once per `PRUNE_EVERY_SECONDS` per account in this process;
    None when it was not due.

    Called as deliveries finish: a DELETE on every finish was a statement per delivery for a
    log that moves by days. While an account's deliveries keep finishing, a row therefore goes
    at most an hour after it passes the retention period (each process prunes on its first
    finish for an account, then hourly). The time is noted before the transaction commits: if
    that rolls back, the next prune comes an hour later, which only delays it."""
    pruned_at = _PRUNED_AT.setdefault(session.get_bind(), {})
    now = time.monotonic()
    last = pruned_at.get(account_id)
    if last is not None and now - last < PRUNE_EVERY_SECONDS:
        return None
    pruned_at[account_id] = now
    return await prune_deliveries(session, account_id=account_id, older_than=older_than)
