"""Connecting a mailbox from the admin form: settings validated, secrets kept and never shown."""

from sqlalchemy import select

from rapport.domain.agents.models import Role
from rapport.domain.inboxes.models import Inbox
from rapport.domain.inboxes.queries import inbox_config
from tests.support.factory import login


async def test_an_admin_connects_a_mailbox(client, services, factory):
    account = await factory.account()
    admin = await factory.user(account, role=Role.admin)
    csrf = await login(client, admin)
    form = await client.get("/settings/inboxes/new?channel=email")
    assert form.status_code == 200 and 'name="config.imap_password"' in form.text
    data = {
        "csrf_token": csrf,
        "name": "Support mailbox",
        "config.address": "Help@Shop.example",
        "config.from_name": "Shop support",
        "config.signature": "Shop support\nhttps://shop.example/help",
        "config.authserv_ids": "mx.shop.example",
        "config.smtp_host": "smtp.shop.example",
        "config.smtp_port": "587",
        "config.smtp_security": "starttls",
        "config.smtp_password": "smtp-pass-123",
        "config.imap_host": "imap.shop.example",
        "config.imap_port": "993",
        "config.imap_security": "tls",
        "config.imap_username": "help@shop.example",
        "config.imap_password": "imap-pass-456",
        "config.imap_mailbox": "INBOX",
        "config.imap_poll_seconds": "60",
        "config.imap_backfill_days": "3",
    }
    saved = await client.post("/settings/inboxes/new?channel=email", data=data)
    assert saved.status_code in (200, 303), saved.text
    async with services.read_session() as session:
        inbox = await session.scalar(select(Inbox).where(Inbox.channel == "email"))
    config = inbox_config(inbox, services.box)
    assert config["address"] == "help@shop.example"
    assert config["signature"] == ["Shop support", "https://shop.example/help"]
    assert len(config["reply_secret"]) >= 16  # generated, kept encrypted with the rest
    assert "imap-pass-456" not in inbox.config_encrypted
    edit = await client.get(f"/settings/inboxes/{inbox.id}")
    for secret in ("imap-pass-456", "smtp-pass-123", config["reply_secret"]):
        assert secret not in edit.text
    assert "/hooks/email" not in edit.text  # mail takes no webhook
    # Saving again with the secrets left blank keeps them, the reply key included.
    data.update({"config.smtp_password": "", "config.imap_password": "", "is_active": "on"})
    await client.post(f"/settings/inboxes/{inbox.id}", data=data)
    async with services.read_session() as session:
        again = inbox_config(await session.get(Inbox, inbox.id), services.box)
    assert again["reply_secret"] == config["reply_secret"]
    assert again["imap_password"] == "imap-pass-456"


async def test_a_line_break_in_the_sender_name_is_refused(client, services, factory):
    account = await factory.account()
    admin = await factory.user(account, role=Role.admin)
    csrf = await login(client, admin)
    response = await client.post(
        "/settings/inboxes/new?channel=email",
        data={
            "csrf_token": csrf,
            "name": "Support",
            "config.address": "help@shop.example",
            "config.from_name": "Shop\r\nBcc: victim@example.com",
        },
    )
    assert response.status_code == 422 and "one line" in response.text
