"""The API channel adapter: verification, pure parsing of recorded fixtures, signed sends."""

import json
from pathlib import Path

import httpx
import pytest

from rapport.channels.api import ApiChannel, ApiConfig
from rapport.channels.base import BadPayload, RawRequest, SendContext, VerificationFailed
from rapport.domain.contacts.models import IdentityKind, Verification
from rapport.domain.conversations.models import ContentType, DeliveryStatus
from rapport.domain.ports import InboundMessage, OutboundMessage, SendError, StatusUpdate
from rapport.lib import signatures

FIXTURE_DIR = Path(__file__).parents[3] / "src/rapport/channels/api/fixtures"
ADAPTER = ApiChannel()
CONFIG = ApiConfig(
    secret="s" * 20, previous_secret="p" * 20, outbound_url="https://example.com/hook"
)


def fixture(name: str) -> bytes:
    return (FIXTURE_DIR / name).read_bytes()


def request(body: bytes, *, secret: str = "s" * 20, timestamp: int | None = None, **headers):
    stamp, signature = signatures.sign(secret, body, timestamp=timestamp)
    base = {"x-rapport-timestamp": stamp, "x-rapport-signature": signature}
    base.update({k.replace("_", "-"): v for k, v in headers.items()})
    return RawRequest("POST", "http://testserver/hooks/api/1", base, b"", body)


def test_a_signed_call_verifies_and_the_previous_secret_still_works():
    body = fixture("message.json")
    ADAPTER.verify(request(body), CONFIG)
    ADAPTER.verify(request(body, secret="p" * 20), CONFIG)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda r: RawRequest(r.method, r.url, r.headers, b"", r.body + b" "),
        lambda r: RawRequest(
            r.method, r.url, {**r.headers, "x-rapport-signature": ""}, b"", r.body
        ),
        lambda r: RawRequest(
            r.method, r.url, {"x-rapport-timestamp": r.headers["x-rapport-timestamp"]}, b"", r.body
        ),
        lambda r: RawRequest(
            r.method, r.url, {**r.headers, "x-rapport-signature": "sha256=00"}, b"", r.body
        ),
    ],
    ids=["changed body", "blank signature", "missing signature", "wrong signature"],
)
def test_anything_else_is_refused(tamper):
    with pytest.raises(VerificationFailed):
        ADAPTER.verify(tamper(request(fixture("message.json"))), CONFIG)


def test_a_stale_timestamp_is_refused():
    with pytest.raises(VerificationFailed, match="stale"):
        ADAPTER.verify(request(fixture("message.json"), timestamp=1_000_000), CONFIG)


def test_a_message_parses_with_every_identity_verified():
    [message] = ADAPTER.parse(fixture("message.json"), "application/json", CONFIG)
    assert isinstance(message, InboundMessage)
    assert message.provider_id == "ord-7731-msg-1"
    assert message.sender_name == "Ana Ruiz"
    assert {(c.kind, c.value) for c in message.sender} == {
        (IdentityKind.external, "user-42"),
        (IdentityKind.email, "Ana.Ruiz@Example.com"),  # normalised by the core, not the adapter
        (IdentityKind.phone, "+34 612 345 678"),
    }
    assert {c.verification for c in message.sender} == {Verification.verified}


def test_unicode_and_missing_optional_fields():
    [message] = ADAPTER.parse(fixture("message_unicode_minimal.json"), "application/json", CONFIG)
    assert message.content == "¿Dónde está mi pedido? 📦 Gracias 🙏"
    assert len(message.sender) == 1


def test_an_attachment_only_message():
    [message] = ADAPTER.parse(fixture("message_attachment_only.json"), "application/json", CONFIG)
    assert message.content_type == ContentType.media
    assert message.attachments[0].url == "https://files.example.com/receipt.pdf"


def test_statuses():
    [delivered] = ADAPTER.parse(fixture("status_delivered.json"), "application/json", CONFIG)
    [failed] = ADAPTER.parse(fixture("status_failed.json"), "application/json", CONFIG)
    assert delivered == StatusUpdate("rapport-msg-12", DeliveryStatus.delivered)
    assert failed.status == DeliveryStatus.failed and failed.error == "user blocked the app"


@pytest.mark.parametrize("name", ["bad_no_content.json", "bad_no_contact.json"])
def test_bad_payloads_get_a_clear_error(name):
    with pytest.raises(BadPayload):
        ADAPTER.parse(fixture(name), "application/json", CONFIG)


def test_dedupe_key_needs_the_callers_id():
    assert ADAPTER.dedupe_key(request(fixture("message.json")), CONFIG) == "message:ord-7731-msg-1"
    with pytest.raises(BadPayload):
        ADAPTER.dedupe_key(request(b'{"content": "x"}'), CONFIG)
    with pytest.raises(BadPayload):
        ADAPTER.dedupe_key(request(b"not json"), CONFIG)


def _outbound():
    return OutboundMessage(
        message_id=12,
        conversation_id=3,
        idempotency_key="rapport-msg-12",
        to="user-42",
        content="On its way",
    )


async def test_send_signs_the_body_and_carries_the_idempotency_key():
    seen = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(200, json={"id": "ext-1"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        ctx = SendContext(http=http, read_file=None, public_url="http://testserver")
        receipt = await ADAPTER.send(_outbound(), CONFIG, ctx)
    assert receipt.provider_id == "ext-1"
    sent = seen[0]
    assert sent.headers["x-rapport-delivery"] == "rapport-msg-12"
    signatures.verify(
        ["s" * 20],
        sent.content,
        timestamp=sent.headers["x-rapport-timestamp"],
        signature=sent.headers["x-rapport-signature"],
    )
    assert json.loads(sent.content)["contact"] == {"id": "user-42"}


@pytest.mark.parametrize(("status", "retryable"), [(429, True), (503, True), (400, False)])
async def test_send_failures_say_whether_to_retry(status, retryable):
    transport = httpx.MockTransport(
        lambda req: httpx.Response(status, headers={"Retry-After": "3"})
    )
    async with httpx.AsyncClient(transport=transport) as http:
        ctx = SendContext(http=http, read_file=None, public_url="http://testserver")
        with pytest.raises(SendError) as error:
            await ADAPTER.send(_outbound(), CONFIG, ctx)
    assert error.value.retryable is retryable
    if status == 429:
        assert error.value.retry_after == 3
