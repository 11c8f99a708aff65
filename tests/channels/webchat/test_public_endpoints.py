"""The widget's public endpoints over HTTP, on SQLite and PostgreSQL: the per-address rate limit,
identity proven by the site's JWT, and a real PDF from a visitor (a fake one refused)."""

from __future__ import annotations

import time
import zlib

import httpx
import jwt
from sqlalchemy import func, select

from rapport.domain.contacts.models import Identity, IdentityKind, Verification
from rapport.domain.conversations.models import Conversation, Message
from rapport.domain.inboxes.models import InboundEvent
from rapport.domain.visitors.models import VisitorSession
from tests.support.browser import png
from tests.support.webchat import IDENTITY_SECRET, SITE, Visitor, widget_inbox


async def test_public_endpoints_answer_429_to_one_address_that_calls_too_often(
    app, client, factory, services
):
    services.settings = services.settings.model_copy(update={"widget_rate_limit": "5/minute"})
    account = await factory.account()
    shop = await widget_inbox(services, account, name="Shop")
    outlet = await widget_inbox(services, account, name="Outlet")
    visitor = Visitor(client, shop)
    await visitor.start()  # 1
    codes = [(await visitor.get("/config")).status_code for _ in range(3)]  # 2, 3, 4
    assert codes == [200, 200, 200]
    assert (await visitor.get("/messages")).status_code == 200  # 5: the limit is reached
    limited = [
        await visitor.get("/config"),
        await visitor.get("/messages"),
        await visitor.say("anyone?", "limited-0001"),
        await visitor.post(
            "/attachments",
            data={"client_id": "limited-0002"},
            files={"file": ("a.png", png(), "image/png")},
        ),
        await client.post(f"/widget/api/{outlet.public_token}/session", json={}),
    ]
    # Every public endpoint, on any inbox: the limit is per calling address.
    assert [r.status_code for r in limited] == [429] * 5
    assert "try again" in limited[0].json()["detail"]
    # The widget can read the refusal and when to try again, from the site it runs on.
    assert limited[0].headers["access-control-allow-origin"] == SITE
    assert limited[0].headers["retry-after"] == "60"
    assert "Retry-After" in limited[0].headers["access-control-expose-headers"]
    async with services.read_session() as session:
        assert await session.scalar(select(func.count()).select_from(InboundEvent)) == 0

    # Another address is not held up by this one.
    other = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("203.0.113.7", 50123)),
        base_url="http://testserver",
    )
    async with other:
        neighbour = Visitor(other, shop)
        await neighbour.start()
        assert (await neighbour.get("/config")).status_code == 200


def _jwt(audience: str, **claims: object) -> str:
    payload = {"aud": audience, "exp": int(time.time()) + 600, **claims}
    return jwt.encode(payload, IDENTITY_SECRET, algorithm="HS256")


async def test_a_valid_jwt_links_the_visitor_to_the_existing_contact(
    client, factory, services, worker
):
    account = await factory.account()
    api = await factory.api_inbox(account)
    known = await factory.receive(
        account, api, external_id="u-42", name="Ana Ruiz", text="Where is order 4821?"
    )
    inbox = await widget_inbox(services, account)
    other = await widget_inbox(services, account, name="Other site")
    visitor = Visitor(client, inbox)
    await visitor.start()

    # Signed for another inbox, or expired: refused, nothing changes.
    for token in (
        _jwt(other.public_token, sub="u-42"),
        _jwt(inbox.public_token, sub="u-42", exp=int(time.time()) - 300),
    ):
        refused = await visitor.post("/identify", json={"token": token})
        assert refused.status_code == 401
    async with services.read_session() as session:
        visit = await session.scalar(select(VisitorSession))
        assert visit.verified_as is None and visit.conversation_id is None

    token = _jwt(inbox.public_token, sub="u-42", email="ana@example.com", name="Ana Ruiz")
    response = await visitor.post("/identify", json={"token": token})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["identified"] is True
    # Her open conversation comes with her: the widget shows it straight away.
    assert body["conversation_id"] == known.conversation.id
    assert [m["content"] for m in await visitor.messages()] == ["Where is order 4821?"]

    sent = await visitor.say("It's me, on the website now", "jwt-000001")
    assert sent.json()["conversation_id"] == known.conversation.id
    await worker.drain()
    async with services.read_session() as session:
        message = await session.scalar(
            select(Message).where(Message.content == "It's me, on the website now")
        )
        conversation = await session.get(Conversation, message.conversation_id)
        email = await session.scalar(select(Identity).where(Identity.kind == IdentityKind.email))
    assert conversation.contact_id == known.conversation.contact_id
    # The email inside the signed token is as good as the site's word: verified, on her contact.
    assert (email.value, email.contact_id) == ("ana@example.com", known.conversation.contact_id)
    assert email.verification == Verification.verified


def _pdf(text: str) -> bytes:
    """A small, well-formed one-page PDF (objects, cross-reference table, trailer)."""
    stream = zlib.compress(f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode())
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


async def test_a_real_pdf_is_accepted_and_a_fake_one_refused(client, factory, services, worker):
    account = await factory.account()
    inbox = await widget_inbox(services, account)
    visitor = Visitor(client, inbox)
    await visitor.start()
    invoice = _pdf("Invoice 4821: Field Jacket, size M, EUR 189")
    ok = await visitor.post(
        "/attachments",
        data={"client_id": "pdf-0000001", "content": "Here is my invoice"},
        files={"file": ("invoice-4821.pdf", invoice, "application/pdf")},
    )
    assert ok.status_code == 202, ok.text
    # Declared a PDF but the bytes say otherwise (an image, a program, a web page): refused.
    for index, fake in enumerate((png(), b"MZ\x90\x00\x03", b"<html><script>alert(1)</script>")):
        refused = await visitor.post(
            "/attachments",
            data={"client_id": f"fake-pdf-{index:03}"},
            files={"file": ("invoice.pdf", fake, "application/pdf")},
        )
        assert refused.status_code == 415, refused.text
        assert "PDF" in refused.json()["detail"]
    await worker.drain()
    [message] = await visitor.messages()
    assert message["content"] == "Here is my invoice"
    [file] = message["attachments"]
    assert (file["filename"], file["content_type"], file["size"]) == (
        "invoice-4821.pdf",
        "application/pdf",
        len(invoice),
    )
    download = await client.get(file["url"].removeprefix("http://testserver"))
    assert download.status_code == 200
    assert download.content == invoice
    assert download.headers["content-type"].startswith("application/pdf")
