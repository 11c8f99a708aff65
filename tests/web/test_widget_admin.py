"""An admin connects a website widget from the generated form; agents' typing pings."""

from sqlalchemy import select

from rapport.domain.agents.models import Role
from rapport.domain.inboxes.models import Inbox
from rapport.domain.inboxes.queries import inbox_config
from tests.support.factory import login
from tests.support.webchat import widget_inbox


async def test_admin_connects_a_widget_with_hours_and_origins(client, factory, services):
    account = await factory.account()
    admin = await factory.user(account, role=Role.admin)
    csrf = await login(client, admin)
    form = await client.get("/settings/inboxes/new?channel=webchat")
    assert form.status_code == 200 and "Business hours" in form.text
    bad = await client.post(
        "/settings/inboxes/new?channel=webchat",
        data={"csrf_token": csrf, "name": "Website", "config.business_hours": "weekdays 9 to 5"},
    )
    assert bad.status_code == 422 and "mon-fri 09:00-17:00" in bad.text
    saved = await client.post(
        "/settings/inboxes/new?channel=webchat",
        data={
            "csrf_token": csrf,
            "name": "Website",
            "config.colour": "#0f766e",
            "config.allowed_origins": "https://shop.example.com\nhttps://www.example.com/",
            "config.business_hours": "mon-fri 09:00-18:00\nsat 10:00-14:00",
            "config.holidays": "2026-12-25 Christmas",
            "config.timezone": "Europe/Madrid",
            "config.identity_secret": "a-long-random-identity-secret",
        },
    )
    assert saved.status_code == 303, saved.text
    async with services.read_session() as session:
        inbox = await session.scalar(select(Inbox).where(Inbox.channel == "webchat"))
    config = inbox_config(inbox, services.box)
    assert config["allowed_origins"] == ["https://shop.example.com", "https://www.example.com"]
    page = await client.get(f"/settings/inboxes/{inbox.id}")
    assert f'/widget.js" data-inbox="{inbox.public_token}" async' in page.text.replace("&#34;", '"')
    assert "a-long-random-identity-secret" not in page.text


async def test_agent_typing_ping_only_for_visible_conversations(client, factory, services):
    account = await factory.account()
    agent = await factory.user(account)
    inbox = await widget_inbox(services, account)
    api = await factory.api_inbox(account)
    received = await factory.receive(account, api)
    other = await factory.account(name="Other")
    other_received = await factory.receive(other, await factory.api_inbox(other))
    csrf = await login(client, agent)
    ok = await client.post(
        f"/conversations/{received.conversation.id}/typing",
        data={"typing": "true"},
        headers={"X-CSRF-Token": csrf},
    )
    assert ok.status_code == 204
    foreign = await client.post(
        f"/conversations/{other_received.conversation.id}/typing",
        data={"typing": "true"},
        headers={"X-CSRF-Token": csrf},
    )
    assert foreign.status_code == 404
    assert inbox.id
