"""Tenant isolation: every route, called by account A with account B's ids, answers 404.

The walk discovers routes from the app, so a route added later is covered automatically; a new
path parameter must be taught to `ids_of_b` below (the test says which one).
"""

import pytest
from sqlalchemy import select

from rapport.domain import events
from rapport.domain.agents.actions import create_api_token
from rapport.domain.agents.models import Role
from rapport.domain.contacts import actions as contact_actions
from rapport.domain.contacts import merge, suggestions
from rapport.domain.contacts.models import Contact, Identity
from rapport.domain.conversations import actions
from rapport.domain.conversations.actions import StoredFile
from rapport.domain.conversations.models import Attachment, Conversation
from rapport.domain.inboxes.actions import mark_inbound_failed, store_inbound
from rapport.domain.inboxes.models import InboundEvent
from rapport.domain.segments import actions as segment_actions
from rapport.domain.webhooks.actions import create_subscription
from rapport.domain.webhooks.models import WebhookDelivery
from tests.support.factory import login
from tests.support.routes import all_routes

# Routes that are public by design and protected by something other than the session.
PUBLIC = {
    "/hooks/{channel}/{inbox_id}",  # provider signatures (tests/web/test_hooks.py)
    "/public/attachments/{attachment_id}/{token}",  # an HMAC token per attachment
}
# Visitor-facing routes: a visitor's own token, tested in tests/web/test_widget_api.py.
PUBLIC_PREFIXES = ("/widget/",)

# Form and JSON bodies valid enough that only the tenancy check can refuse them.
FORM = {
    "content": "hello",
    "private": "true",
    "status": "resolved",
    "assignee": "none",
    "team": "none",
    "role": "agent",
    "is_active": "true",
    "name": "Name",
    "company": "Co",
    "email": "x@example.com",
    "password": "long enough password",
    "user_id": "1",
    "survivor_id": "1",
    "merged_id": "1",
}
JSON_BODIES = {
    "/identities": {"kind": "email", "value": "x@example.com"},
    "/merges": {"merged_id": 1},
    "/contacts/{contact_id}": {"name": "x"},
    "/webhooks/{webhook_id}": {"active": False},
    "/messages": {"content": "hello", "private": True},
    "/status": {"status": "resolved"},
    "/assignment": {"assignee_id": None, "team_id": None},
    "/events": {"name": "order.placed", "properties": {}},
}


async def ids_of_b(services, factory):
    """Account B with one of everything a route can name."""
    b = await factory.account("Globex")
    admin = await factory.user(b, role=Role.admin)
    team = await factory.team(b, "Globex team", [admin])
    inbox = await factory.api_inbox(b)
    received = await factory.receive(b, inbox, text="Globex secret plans")
    key = await services.files.save(b"secret", suffix=".txt")
    async with services.session() as session:
        conversation = await session.get(Conversation, received.conversation.id)
        note = await actions.send_reply(
            session,
            conversation=conversation,
            author=admin,
            reply=actions.Reply(
                content="note",
                private=True,
                files=[
                    StoredFile(filename="s.txt", content_type="text/plain", size=6, storage_key=key)
                ],
            ),
        )
        token, _plain = await create_api_token(session, user=admin, name="b")
        subscription, _secret = await create_subscription(
            session,
            actor=admin,
            url="https://globex.example/hook",
            event_types=["message.created"],
            box=services.box,
        )
        await store_inbound(session, inbox=inbox, dedupe_key="k", body=b"{}", content_type="")
        await events.commit(session)
        inbound = await session.scalar(select(InboundEvent))
        await mark_inbound_failed(session, inbound=inbound, error="x")
        attachment = await session.scalar(select(Attachment))
        await events.commit(session)
    await factory.receive(b, inbox, text="one more, for the webhook")
    async with services.read_session() as session:
        delivery = await session.scalar(select(WebhookDelivery))
        identity = await session.scalar(select(Identity))
    profile_ids = await _contact_profile_of_b(services, b, admin, received)
    merge_id, suggestion_id = await _merge_and_suggestion(services, factory, b, inbox)
    return {
        **profile_ids,
        "conversation_id": received.conversation.id,
        "message_id": note.id,
        "contact_id": received.conversation.contact_id,
        "inbox_id": inbox.id,
        "user_id": admin.id,
        "team_id": team.id,
        "token_id": token.id,
        "attachment_id": attachment.id,
        "inbound_id": inbound.id,
        "channel": "api",
        "token": "x",
        "webhook_id": subscription.id,
        "delivery_id": delivery.id,
        "identity_id": identity.id,
        "merge_id": merge_id,
        "suggestion_id": suggestion_id,
    }


async def _contact_profile_of_b(services, b, admin, received):
    """An attribute, a label on the contact and a segment of account B."""
    async with services.session() as session:
        definition = await contact_actions.define_attribute(
            session, account_id=b.id, label="Plan", kind="text"
        )
        label = await contact_actions.create_label(session, account_id=b.id, name="VIP")
        contact = await session.get(Contact, received.conversation.contact_id)
        await contact_actions.add_label(session, contact=contact, label=label)
        segment = await segment_actions.create_segment(
            session, account_id=b.id, name="Globex secret plans", filters={}
        )
        await events.commit(session)
    return {"definition_id": definition.id, "label_id": label.id, "segment_id": segment.id}


async def _merge_and_suggestion(services, factory, account, inbox):
    """A merge of two of B's contacts, and a suggestion about two others."""
    ids = [
        (await factory.receive(account, inbox, external_id=f"b-{n}")).conversation.contact_id
        for n in range(4)
    ]
    async with services.session() as session:
        record = await merge.merge_contacts(
            session, account_id=account.id, survivor_id=ids[0], merged_id=ids[1], actor_user_id=None
        )
        suggestion = await suggestions.suggest_pair(
            session,
            account_id=account.id,
            contact_id=ids[2],
            other_id=ids[3],
            reasons=[suggestions.identity_reason("email", "b@globex.example")],
        )
        await events.commit(session)
    return record.id, suggestion.id


async def _call(client, route, method, url, headers):
    if method == "GET":
        return await client.get(url, headers=headers)
    if route.path.startswith("/api/"):
        body = next((v for k, v in JSON_BODIES.items() if route.path.endswith(k)), {})
        return await client.request(method, url, json=body, headers=headers)
    return await client.request(method, url, data=FORM, headers=headers)


@pytest.mark.parametrize("role", [Role.admin, Role.agent])
async def test_every_route_answers_404_for_another_accounts_objects(
    app, client, services, factory, role
):
    b_ids = await ids_of_b(services, factory)
    a = await factory.account("Acme")
    user = await factory.user(a, role=role)
    csrf = await login(client, user)
    async with services.session() as session:
        _token, plain = await create_api_token(session, user=user, name="a")
        await events.commit(session)
    headers = {"X-CSRF-Token": csrf, "Authorization": f"Bearer {plain}"}
    checked = 0
    for route in all_routes(app):
        if (
            not route.params
            or route.path in PUBLIC
            or route.path.startswith(PUBLIC_PREFIXES)
            or route.websocket
        ):
            continue
        missing = [p for p in route.params if p not in b_ids]
        assert not missing, f"teach test_tenancy the path parameter(s) {missing} of {route.path}"
        url = route.url(b_ids)
        for method in route.methods:
            if method == "HEAD":
                continue
            response = await _call(client, route, method, url, headers)
            assert response.status_code == 404, f"{method} {route.path} -> {response.status_code}"
            assert "Globex secret plans" not in response.text
            checked += 1
    assert checked >= 20


async def test_lists_never_show_another_accounts_rows(client, services, factory):
    await ids_of_b(services, factory)
    a = await factory.account("Acme")
    user = await factory.user(a, role=Role.admin)
    await login(client, user)
    for url in [
        "/conversations?scope=all&status=any",
        "/contacts",
        "/settings/users",
        "/settings/inboxes",
        "/settings/teams",
        "/settings/failures",
        "/settings/webhooks",
        "/settings/attributes",
        "/settings/labels",
        "/segments",
    ]:
        page = await client.get(url)
        assert page.status_code == 200
        assert "Globex" not in page.text, url
