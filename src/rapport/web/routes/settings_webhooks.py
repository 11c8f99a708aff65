"""Admin settings: outbound webhook subscriptions and their delivery log (with a retry button).

Forms are read after the subscription is found, so another account's id is a 404 whatever the
form holds. A secret is shown once, on the page that answers its creation or rotation.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from rapport.domain import events
from rapport.domain.errors import InvalidInput
from rapport.domain.webhooks import actions, queries
from rapport.domain.webhooks.models import WebhookSubscription
from rapport.web.deps import AdminAgent, DbSession, Svc
from rapport.web.routes.api_v1._common import PathId
from rapport.web.templating import render

router = APIRouter(prefix="/settings/webhooks", include_in_schema=False)

LOG_PAGE = 50


def _text(form: FormData, name: str, limit: int) -> str:
    value = form.get(name, "")
    return value[:limit] if isinstance(value, str) else ""


def _chosen(form: FormData) -> list[str]:
    return [v for v in form.getlist("event_types") if isinstance(v, str)]


async def _list_page(
    request: Request,
    agent: AdminAgent,
    session: DbSession,
    *,
    error: InvalidInput | None = None,
    draft: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "settings/webhooks.html",
        {
            "subscriptions": await queries.subscriptions_of(session, account_id=agent.account.id),
            "catalogue": actions.event_catalogue(),
            "error": error,
            "draft": draft or {"url": "", "description": "", "event_types": []},
            "section": "webhooks",
        },
        status_code=status_code,
    )


async def _detail_page(
    request: Request,
    agent: AdminAgent,
    session: DbSession,
    subscription: WebhookSubscription,
    *,
    secret: str | None = None,
    error: InvalidInput | None = None,
    status_code: int = 200,
) -> Response:
    before = request.query_params.get("before", "")
    deliveries = await queries.deliveries_of(
        session,
        account_id=agent.account.id,
        subscription_id=subscription.id,
        before=int(before) if before.isdigit() and len(before) < 19 else None,
        limit=LOG_PAGE + 1,
    )
    return render(
        request,
        "settings/webhook.html",
        {
            "subscription": subscription,
            "catalogue": actions.event_catalogue(),
            "deliveries": deliveries[:LOG_PAGE],
            "older": deliveries[LOG_PAGE - 1].id if len(deliveries) > LOG_PAGE else None,
            "secret": secret,
            "error": error,
            "section": "webhooks",
        },
        status_code=status_code,
    )


@router.get("")
async def webhook_list(request: Request, agent: AdminAgent, session: DbSession) -> Response:
    return await _list_page(request, agent, session)


@router.post("")
async def create_webhook(
    request: Request, agent: AdminAgent, session: DbSession, services: Svc
) -> Response:
    form = await request.form()
    url, description, chosen = (
        _text(form, "url", 2000),
        _text(form, "description", 200),
        _chosen(form),
    )
    draft = {"url": url, "description": description, "event_types": chosen}
    try:
        subscription, secret = await actions.create_subscription(
            session,
            actor=agent.user,
            box=services.box,
            url=url,
            description=description,
            event_types=chosen,
        )
    except InvalidInput as exc:  # checked before anything was added: nothing to undo
        return await _list_page(request, agent, session, error=exc, draft=draft, status_code=422)
    await events.commit(session)
    return await _detail_page(request, agent, session, subscription, secret=secret)


async def _found(agent: AdminAgent, session: DbSession, webhook_id: int) -> WebhookSubscription:
    return await queries.get_subscription(
        session, account_id=agent.account.id, subscription_id=webhook_id
    )


@router.get("/{webhook_id}")
async def webhook_page(
    request: Request, webhook_id: PathId, agent: AdminAgent, session: DbSession
) -> Response:
    subscription = await _found(agent, session, webhook_id)
    return await _detail_page(request, agent, session, subscription)


@router.post("/{webhook_id}")
async def update_webhook(
    request: Request, webhook_id: PathId, agent: AdminAgent, session: DbSession
) -> Response:
    subscription = await _found(agent, session, webhook_id)
    form = await request.form()
    try:
        await actions.update_subscription(
            session,
            subscription=subscription,
            actor=agent.user,
            url=_text(form, "url", 2000),
            description=_text(form, "description", 200),
            event_types=_chosen(form),
            active=form.get("active") == "true",
        )
    except InvalidInput as exc:  # checked before anything changed: nothing to undo
        return await _detail_page(request, agent, session, subscription, error=exc, status_code=422)
    await events.commit(session)
    return RedirectResponse(f"/settings/webhooks/{webhook_id}", status_code=303)


@router.post("/{webhook_id}/rotate")
async def rotate_secret(
    request: Request, webhook_id: PathId, agent: AdminAgent, session: DbSession, services: Svc
) -> Response:
    subscription = await _found(agent, session, webhook_id)
    secret = await actions.rotate_secret(
        session, subscription=subscription, actor=agent.user, box=services.box
    )
    await events.commit(session)
    return await _detail_page(request, agent, session, subscription, secret=secret)


@router.post("/{webhook_id}/delete")
async def delete_webhook(webhook_id: PathId, agent: AdminAgent, session: DbSession) -> Response:
    subscription = await _found(agent, session, webhook_id)
    await actions.delete_subscription(session, subscription=subscription, actor=agent.user)
    await events.commit(session)
    return RedirectResponse("/settings/webhooks", status_code=303)


@router.post("/deliveries/{delivery_id}/retry")
async def retry_delivery(delivery_id: PathId, agent: AdminAgent, session: DbSession) -> Response:
    delivery = await queries.get_delivery(
        session, account_id=agent.account.id, delivery_row_id=delivery_id
    )
    await actions.retry_delivery(session, delivery=delivery)
    await events.commit(session)
    return RedirectResponse(f"/settings/webhooks/{delivery.subscription_id}", status_code=303)
