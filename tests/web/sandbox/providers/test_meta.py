"""The fake Graph API answers as Meta documents it and signs webhooks as Meta does."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from rapport.lib import meta_webhooks
from rapport.web.sandbox.providers.meta import FakeMeta

TOKEN = "token-0123456789"


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
