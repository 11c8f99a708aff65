"""The fake Graph API answers as Meta documents it and signs webhooks as Meta does; in the
sandbox it plays the customer and reports every send back as Meta would."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi import FastAPI

from rapport.lib import meta_webhooks
from rapport.web.sandbox.common import CustomerMessage, SandboxInbox, SignedCall
from rapport.web.sandbox.providers.meta import FakeMeta

TOKEN = "token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def client_for(fake: FakeMeta) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(fake.router)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fake")


async def test_webhooks_are_escaped_and_signed_like_meta() -> None:
    fake = FakeMeta(app_secret="secret-0123", access_token=TOKEN)
    hook = fake.whatsapp_text(phone_number_id="1", wa_id="34600111222", text="Olá / ¡hola! 😊")
    assert hook.body.isascii() and b"\\/" in hook.body and b"\\ud83d\\ude0a" in hook.body
    meta_webhooks.verify_signature(
        ["secret-0123"], hook.body, signature=hook.headers["X-Hub-Signature-256"]
    )
    assert hook.headers["X-Hub-Signature"].startswith("sha1=")
    assert hook.json["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] == (
        "Olá / ¡hola! 😊"
    )


async def test_sends_need_the_token_and_faults_accept_nothing() -> None:
    fake = FakeMeta(access_token=TOKEN)
    body = {
        "messaging_product": "whatsapp",
        "to": "34600111222",
        "type": "text",
        "text": {"body": "hi"},
        "biz_opaque_callback_data": "rapport-msg-1",
    }
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with client_for(fake) as http:
        refused = await http.post("/v21.0/1/messages", json=body)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == 190
        fake.fail_next(status=429, code=130429, retry_after=2)
        limited = await http.post("/v21.0/1/messages", json=body, headers=auth)
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "2"
        assert fake.sent == []
        ok = await http.post("/v21.0/1/messages", json=body, headers=auth)
        wamid = ok.json()["messages"][0]["id"]
        assert wamid.startswith("wamid.") and fake.sent[0].reference == "rapport-msg-1"
        messenger = await http.post(
            "/v21.0/77/messages",
            json={"recipient": {"id": "55"}, "message": {"text": "hola", "metadata": "k"}},
            headers=auth,
        )
        assert messenger.json()["recipient_id"] == "55"
        assert fake.sent[1].product == "messenger" and fake.sent[1].reference == "k"
    assert len(fake.requests) == 4


async def test_media_is_served_by_id_and_download_needs_the_token() -> None:
    fake = FakeMeta(access_token=TOKEN)
    media_id = fake.add_media(b"bytes", "image/png")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with client_for(fake) as http:
        info = (await http.get(f"/v21.0/{media_id}", headers=auth)).json()
        assert info["mime_type"] == "image/png" and info["file_size"] == 5
        assert (await http.get(info["url"])).status_code == 401
        assert (await http.get(info["url"], headers=auth)).content == b"bytes"


def _receipt_kind(call: SignedCall) -> str:
    """What one webhook reports: a WhatsApp status, or a Messenger/Instagram event kind."""
    entry = json.loads(call.body)["entry"][0]
    if "changes" in entry:
        return str(entry["changes"][0]["value"]["statuses"][0]["status"])
    event = entry["messaging"][0]
    return (
        "echo"
        if event.get("message", {}).get("is_echo")
        else next(iter({"delivery", "read"} & set(event)))
    )


SANDBOX_CASES = [
    ("whatsapp", {"phone_number_id": "1001"}, "+34 600 111 222", ["sent", "delivered", "read"]),
    ("messenger", {"page_id": "2002"}, "7310000000000001", ["echo", "delivery", "read"]),
    ("instagram", {"instagram_account_id": "3003"}, "1790000000000001", ["echo", "read"]),
]


@pytest.mark.parametrize(("channel", "account", "customer", "receipts"), SANDBOX_CASES)
async def test_in_the_sandbox_it_plays_the_customer_and_reports_every_send(
    channel, account, customer, receipts
) -> None:
    fake = FakeMeta(access_token=TOKEN)
    calls: list[SignedCall] = []

    async def deliver(call: SignedCall) -> None:
        calls.append(call)

    fake.attach("http://fake", deliver)
    config = {**account, "app_secret": "the-inbox-secret", "api_base_url": "http://fake/"}
    url = f"http://rapport/hooks/{channel}/7"
    inbox = SandboxInbox(id=7, name=channel, channel=channel, config=config, webhook_url=url)
    assert fake.plays(inbox)
    said = CustomerMessage(customer=customer, name="Lucía Núñez", text="¿Seguís abiertos? 😊")
    await fake.customer_says(inbox, said, deliver)
    node, address = fake.thread_of(inbox, customer)
    send = (
        {"messaging_product": "whatsapp", "to": address.lstrip("+"), "type": "text"}
        | {"text": {"body": "Sí"}, "biz_opaque_callback_data": "rapport-msg-9"}
        if channel == "whatsapp"
        else {"recipient": {"id": address}, "message": {"text": "Sí", "metadata": "rapport-msg-9"}}
    )
    async with client_for(fake) as http:
        sent = await http.post(f"/v21.0/{node}/messages", json=send, headers=AUTH)
    assert sent.status_code == 200
    assert all(call.url == url for call in calls)
    for call in calls:  # signed with the inbox's app secret, over the bytes as sent
        meta_webhooks.verify_signature(
            ["the-inbox-secret"], call.body, signature=call.headers["X-Hub-Signature-256"]
        )
    said_json = json.dumps(json.loads(calls[0].body), ensure_ascii=False)
    assert calls[0].body.isascii() and "¿Seguís abiertos? 😊" in said_json
    assert [_receipt_kind(call) for call in calls[1:]] == receipts
    thread = fake.transcript.thread((node, address))
    assert [(e.sender, e.text, e.status) for e in thread] == [
        ("customer", "¿Seguís abiertos? 😊", ""),
        ("business", "Sí", "read"),
    ]
