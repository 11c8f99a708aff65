"""Job `webhook.deliver`: POST one event to one subscriber, signed, and log how it went.

The body is signed like every Rapport call (lib/signatures: HMAC-SHA256 over "timestamp.body"),
and carries X-Rapport-Delivery, the same on every attempt, so receivers can drop repeats. A
failure (network error, timeout, any non-2xx answer) is retried with exponential backoff until
`webhook_max_attempts`; then the delivery is given up and stays in the log with a retry button.
A target the guarded client refuses (a private or loopback address) is given up at once.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.db import outbox
from rapport.db.outbox import ClaimedJob
from rapport.domain import events
from rapport.domain.webhooks import actions, queries
from rapport.domain.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from rapport.lib import signatures
from rapport.lib.http import BlockedTarget, retry_after_seconds
from rapport.services import Services
from rapport.settings import Settings

EVENT_HEADER = "X-Rapport-Event"


def backoff_seconds(settings: Settings, attempts: int) -> float:
    """Seconds before attempt `attempts + 1`: base * 2^(attempts - 1), capped."""
    delay = settings.webhook_retry_base_seconds * (2 ** max(attempts - 1, 0))
    return float(min(delay, settings.webhook_retry_max_seconds))


def signed_request(secret: str, delivery: WebhookDelivery) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    headers = signatures.signed_headers(secret, body, delivery_id=delivery.delivery_id)
    return body, {**headers, EVENT_HEADER: delivery.event_type}


async def _post(
    services: Services, url: str, body: bytes, headers: dict[str, str]
) -> tuple[actions.Attempt, float | None, bool]:
    """(how it went, the receiver's Retry-After if any, whether trying again can help)."""
    started = time.perf_counter()
    code: int | None = None
    retry_after: float | None = None
    error: str | None
    retryable: bool
    try:
        response = await services.http.post(
            url, content=body, headers=headers, timeout=services.settings.webhook_timeout_seconds
        )
    except BlockedTarget as exc:
        error, retryable = f"refused target: {exc}", False
    except httpx.TimeoutException:
        error, retryable = "the receiver did not answer in time", True
    except httpx.HTTPError as exc:
        error, retryable = f"{type(exc).__name__}: {exc}", True
    else:
        code = response.status_code
        ok = 200 <= code < 300
        error, retryable = (None, False) if ok else (f"the receiver answered {code}", True)
        if code in (429, 503):
            retry_after = retry_after_seconds(response, default=0) or None
    elapsed = int((time.perf_counter() - started) * 1000)
    return actions.Attempt(code, elapsed, error), retry_after, retryable


async def deliver_webhook(services: Services, job: ClaimedJob) -> None:
    delivery_id = str(job.payload["delivery_id"])
    # Read and sign in a reading session: on SQLite a writing one holds the write lock.
    async with services.read_session() as reader:
        delivery = await queries.delivery_by_id(reader, delivery_id)
        subscription = (
            await reader.get(WebhookSubscription, delivery.subscription_id) if delivery else None
        )
        finished = (
            delivery is None or subscription is None or delivery.status != DeliveryStatus.pending
        )
        paused = subscription is not None and not subscription.active
        if not (finished or paused):
            assert delivery is not None and subscription is not None
            url = subscription.url
            body, headers = signed_request(
                actions.subscription_secret(services.box, subscription), delivery
            )
    if finished or paused:
        async with services.session() as session:
            pending = None if finished else await queries.delivery_by_id(session, delivery_id)
            if pending is not None and pending.status == DeliveryStatus.pending:
                await actions.give_up(
                    session, delivery=pending, reason="the subscription is paused"
                )
            await outbox.complete(session, job.id)  # deleted, or finished by an earlier job
            await events.commit(session)
        return

    attempt, retry_after, retryable = await _post(services, url, body, headers)

    async with services.session() as session:
        delivery = await queries.delivery_by_id(session, delivery_id)
        if delivery is None:  # the subscription was deleted meanwhile
            await outbox.complete(session, job.id)
            await events.commit(session)
            return
        await _settle(services, session, delivery, job, attempt, retry_after, retryable)
        await events.commit(session)


async def _settle(
    services: Services,
    session: AsyncSession,
    delivery: WebhookDelivery,
    job: ClaimedJob,
    attempt: actions.Attempt,
    retry_after: float | None,
    retryable: bool,
) -> None:
    settings = services.settings
    again = attempt.error is not None and retryable and job.attempts < settings.webhook_max_attempts
    if not again:
        await actions.record_attempt(session, delivery=delivery, attempt=attempt, retry_in=None)
        await outbox.complete(session, job.id)
        await actions.prune_deliveries_when_due(
            session,
            account_id=delivery.account_id,
            older_than=timedelta(days=settings.webhook_log_retention_days),
        )
        return
    delay = max(backoff_seconds(settings, job.attempts), retry_after or 0)
    await actions.record_attempt(session, delivery=delivery, attempt=attempt, retry_in=delay)
    await outbox.retry_later(
        session,
        job_id=job.id,
        attempts=job.attempts,
        error=attempt.error or "",
        max_attempts=job.attempts + 1,
        delay_seconds=delay,
    )
