"""JSON API v1: outbound webhook subscriptions and their delivery log (admins' tokens only).

A foreign or unknown id is a 404 before the role is checked, so nothing about other accounts
shows through; a non-admin token then gets a 403.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from rapport.domain import events
from rapport.domain.webhooks import actions, queries
from rapport.domain.webhooks.models import WebhookSubscription
from rapport.web.deps import ApiAgent, DbSession, Svc
from rapport.web.routes.api_v1._common import PathId, errors, require_admin
from rapport.web.schemas import (
    MAX_ID,
    WebhookCreate,
    WebhookDeliveryRead,
    WebhookRead,
    WebhookSecretRead,
    WebhookUpdate,
)

router = APIRouter(tags=["webhooks"])


def _with_secret(subscription: WebhookSubscription, secret: str) -> WebhookSecretRead:
    read = WebhookRead.model_validate(subscription)
    return WebhookSecretRead(**read.model_dump(), secret=secret)


@router.get("/webhooks/event-types", response_model=list[str], responses=errors())
async def event_types(agent: ApiAgent) -> list[str]:
    """The event catalogue a subscription chooses from."""
    return actions.event_catalogue()


@router.get("/webhooks", response_model=list[WebhookRead], responses=errors(403))
async def list_webhooks(agent: ApiAgent, session: DbSession) -> list[WebhookRead]:
    require_admin(agent)
    found = await queries.subscriptions_of(session, account_id=agent.account.id)
    return [WebhookRead.model_validate(s) for s in found]


@router.post("/webhooks", response_model=WebhookSecretRead, status_code=201, responses=errors(403))
async def create_webhook(
    body: WebhookCreate, agent: ApiAgent, session: DbSession, services: Svc
) -> WebhookSecretRead:
    """Subscribe a URL to event types. The signing secret is in this answer only."""
    require_admin(agent)
    subscription, secret = await actions.create_subscription(
        session,
        actor=agent.user,
        url=body.url,
        event_types=body.event_types,
        description=body.description,
        active=body.active,
        box=services.box,
    )
    await events.commit(session)
    return _with_secret(subscription, secret)


async def _subscription(
    agent: ApiAgent, session: DbSession, webhook_id: int
) -> WebhookSubscription:
    found = await queries.get_subscription(
        session, account_id=agent.account.id, subscription_id=webhook_id
    )
    require_admin(agent)
    return found


@router.get("/webhooks/{webhook_id}", response_model=WebhookRead, responses=errors(403, 404))
async def get_webhook(webhook_id: PathId, agent: ApiAgent, session: DbSession) -> WebhookRead:
    return WebhookRead.model_validate(await _subscription(agent, session, webhook_id))


@router.patch("/webhooks/{webhook_id}", response_model=WebhookRead, responses=errors(403, 404))
async def update_webhook(
    webhook_id: PathId, body: WebhookUpdate, agent: ApiAgent, session: DbSession
) -> WebhookRead:
    subscription = await _subscription(agent, session, webhook_id)
    await actions.update_subscription(
        session,
        subscription=subscription,
        actor=agent.user,
        url=body.url,
        event_types=body.event_types,
        description=body.description,
        active=body.active,
    )
    await events.commit(session)
    return WebhookRead.model_validate(subscription)


@router.post(
    "/webhooks/{webhook_id}/rotate-secret",
    response_model=WebhookSecretRead,
    responses=errors(403, 404),
)
async def rotate_webhook_secret(
    webhook_id: PathId, agent: ApiAgent, session: DbSession, services: Svc
) -> WebhookSecretRead:
    """A new signing secret, in this answer only; the old one stops signing at once."""
    subscription = await _subscription(agent, session, webhook_id)
    secret = await actions.rotate_secret(
        session, subscription=subscription, actor=agent.user, box=services.box
    )
    await events.commit(session)
    return _with_secret(subscription, secret)


@router.delete(
    "/webhooks/{webhook_id}",
    status_code=204,
    response_class=Response,
    responses=errors(403, 404),
)
async def delete_webhook(webhook_id: PathId, agent: ApiAgent, session: DbSession) -> Response:
    subscription = await _subscription(agent, session, webhook_id)
    await actions.delete_subscription(session, subscription=subscription, actor=agent.user)
    await events.commit(session)
    return Response(status_code=204)


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    response_model=list[WebhookDeliveryRead],
    responses=errors(403, 404),
)
async def list_deliveries(
    webhook_id: PathId,
    agent: ApiAgent,
    session: DbSession,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> list[WebhookDeliveryRead]:
    """The delivery log, newest first; page back with `before` (a delivery's `id`)."""
    subscription = await _subscription(agent, session, webhook_id)
    found = await queries.deliveries_of(
        session,
        account_id=agent.account.id,
        subscription_id=subscription.id,
        before=before,
        limit=limit,
    )
    return [WebhookDeliveryRead.model_validate(d) for d in found]


@router.post(
    "/webhooks/deliveries/{delivery_id}/retry",
    response_model=WebhookDeliveryRead,
    responses=errors(403, 404, 409),
)
async def retry_delivery(
    delivery_id: PathId, agent: ApiAgent, session: DbSession
) -> WebhookDeliveryRead:
    """Send a finished delivery again: same delivery id, same body, a fresh set of attempts."""
    delivery = await queries.get_delivery(
        session, account_id=agent.account.id, delivery_row_id=delivery_id
    )
    require_admin(agent)
    await actions.retry_delivery(session, delivery=delivery)
    await events.commit(session)
    return WebhookDeliveryRead.model_validate(delivery)
