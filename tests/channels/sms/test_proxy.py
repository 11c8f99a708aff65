"""Behind a trusted proxy the SMS signature is checked against the URL the provider called."""

import pytest
from sqlalchemy import func, select

from rapport.domain.inboxes.models import InboundEvent
from rapport.web.sandbox.providers.twilio import message_params, new_sid, signed
from tests.conftest import make_settings
from tests.support.channels import channel_inbox
from tests.support.fakes import TWILIO_SID, TWILIO_TOKEN

PUBLIC = "https://rapport.example.com"


@pytest.fixture
def backend():
    return "sqlite"  # the check happens before any row is written: one database is enough


@pytest.fixture
def settings(db_url, tmp_path):
    # The ASGI test client connects from 127.0.0.1: make that the proxy.
    return make_settings(db_url, tmp_path, public_url=PUBLIC, trusted_proxies=["127.0.0.1/32"])


def sms(url):
    params = message_params(
        account_sid=TWILIO_SID,
        sid=new_sid("SM"),
        sender="+14155550123",
        to="+14155550100",
        body="hi",
    )
    return signed(url, TWILIO_TOKEN, params)


async def inbox_for(services, factory):
    account = await factory.account()
    config = {"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN, "from_number": "+14155550100"}
    return await channel_inbox(services, account, "sms", config)


async def stored(services):
    async with services.read_session() as session:
        return await session.scalar(select(func.count()).select_from(InboundEvent))


@pytest.mark.parametrize(
    ("forwarded", "signed_for"),
    [
        ({"X-Forwarded-Proto": "https", "X-Forwarded-Host": "rapport.example.com"}, ""),
        (
            {
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": "rapport.example.com",
                "X-Forwarded-Port": "443",
            },
            "",
        ),
        ({"X-Forwarded-Proto": "https", "X-Forwarded-Host": "rapport.example.com"}, ":443"),
    ],
    ids=["no-port", "port-443-forwarded", "signed-with-443"],
)
async def test_the_url_is_rebuilt_from_a_trusted_proxy(
    client, services, factory, forwarded, signed_for
):
    inbox = await inbox_for(services, factory)
    call = sms(f"https://rapport.example.com{signed_for}/hooks/sms/{inbox.id}")
    response = await client.post(
        f"http://internal:8000/hooks/sms/{inbox.id}",
        content=call.body,
        headers={**call.headers, **forwarded},
    )
    assert response.status_code == 200
    assert await stored(services) == 1


async def test_a_forwarded_port_that_is_not_the_one_signed_is_refused(client, services, factory):
    inbox = await inbox_for(services, factory)
    call = sms(f"https://rapport.example.com/hooks/sms/{inbox.id}")
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "rapport.example.com:8443"}
    response = await client.post(
        f"http://internal:8000/hooks/sms/{inbox.id}",
        content=call.body,
        headers={**call.headers, **forwarded},
    )
    assert response.status_code == 403
    assert await stored(services) == 0
