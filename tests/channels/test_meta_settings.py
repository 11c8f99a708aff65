"""An admin connects WhatsApp, Messenger and Instagram from the generated settings form."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from rapport.domain.agents.models import Role
from rapport.domain.inboxes.models import Inbox
from tests.support.factory import login
from tests.support.meta import messaging_config, whatsapp_config


@pytest.mark.parametrize("channel", ["whatsapp", "messenger", "instagram"])
async def test_connect_from_settings(channel, client, factory, services):
    account = await factory.account()
    admin = await factory.user(account, role=Role.admin)
    csrf = await login(client, admin)
    form = await client.get(f"/settings/inboxes/new?channel={channel}")
    assert form.status_code == 200
    assert 'name="config.app_secret"' in form.text and 'type="password"' in form.text
    config = whatsapp_config() if channel == "whatsapp" else messaging_config(channel)
    data = {
        "name": f"Our {channel}",
        "csrf_token": csrf,
        **{f"config.{k}": str(v) for k, v in config.items()},
    }
    saved = await client.post(f"/settings/inboxes/new?channel={channel}", data=data)
    assert saved.status_code == 303, saved.text
    async with services.read_session() as session:
        inbox = await session.scalar(select(Inbox).where(Inbox.channel == channel))
    assert inbox is not None
    page = await client.get(saved.headers["location"])
    assert f"/hooks/{channel}/{inbox.id}" in page.text
    assert config["app_secret"] not in page.text  # secrets are never shown back
