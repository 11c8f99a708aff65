"""`rapport demo`'s data: the website chat and an inbox on every fake provider, so the sandbox
can play every customer from the first minute."""

import pytest
from sqlalchemy import select

from rapport.channels.registry import adapter_for
from rapport.cli.demo_data import DEMO_PASSWORD, seed_demo
from rapport.domain.agents.models import User
from rapport.domain.inboxes.models import Inbox
from rapport.domain.inboxes.queries import inbox_config
from rapport.domain.segments.queries import segment_count, segments_of
from tests.conftest import make_settings
from tests.support.factory import login

SANDBOX_CHANNELS = {"sms", "voice", "telegram", "whatsapp", "messenger", "instagram"}


@pytest.fixture
def backend():
    return "sqlite"


@pytest.fixture
def settings(db_url, tmp_path):
    return make_settings(db_url, tmp_path, env="demo", public_url="http://localhost:8000")


async def test_the_demo_has_a_website_chat_and_every_sandbox_channel(client, services, settings):
    assert await seed_demo(settings)
    assert not await seed_demo(settings)  # a second run keeps what is there
    async with services.read_session() as session:
        inboxes = list(await session.scalars(select(Inbox)))
        admin = await session.scalar(select(User).where(User.email == "admin@rapport.demo"))
    by_channel = {inbox.channel: inbox for inbox in inboxes}
    assert SANDBOX_CHANNELS | {"webchat", "api"} == set(by_channel)
    website = adapter_for("webchat").load_config(inbox_config(by_channel["webchat"], services.box))
    assert website.greeting.startswith("Hi there") and website.pre_chat_fields == [
        "name*",
        "phone",
    ]
    assert website.origin_allowed("http://localhost:8000")

    await login(client, admin, DEMO_PASSWORD)
    page = await client.get("/sandbox")
    assert page.status_code == 200
    for channel in SANDBOX_CHANNELS:  # each one played by its fake provider
        assert f'href="/sandbox?inbox={by_channel[channel].id}"' in page.text
    token = by_channel["webchat"].public_token
    assert f'<script src="/widget.js" data-inbox="{token}" async>' in page.text
    merges = await client.get("/contacts/merges")
    assert "María García" in merges.text and "Maria Garcia" in merges.text


async def test_the_demo_has_contact_attributes_labels_and_segments(services, settings):
    assert await seed_demo(settings)
    async with services.read_session() as session:
        admin = await session.scalar(select(User).where(User.email == "admin@rapport.demo"))
        segments = await segments_of(session, account_id=admin.account_id)
        counts = {
            s.name: await segment_count(session, account_id=admin.account_id, segment_id=s.id)
            for s in segments
        }
    assert set(counts) == {"VIP customers", "Paying, waiting on us"}
    assert all(count > 0 for count in counts.values()), counts
