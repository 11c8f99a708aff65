"""The webchat adapter: envelopes parsed from fixtures, the config an admin writes, `send`."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from rapport.channels.base import BadPayload
from rapport.channels.registry import adapter_for
from rapport.channels.webchat.adapter import (
    WebchatChannel,
    message_envelope,
    outgoing_provider_id,
    receipt_envelope,
)
from rapport.channels.webchat.config import WebchatConfig
from rapport.domain.contacts.models import IdentityKind, Verification
from rapport.domain.conversations.models import ContentType, DeliveryStatus
from rapport.domain.ports import InboundMessage, OutboundMessage, StatusUpdate

FIXTURES = Path(__file__).parents[3] / "src/rapport/channels/webchat/fixtures"
adapter = WebchatChannel()
config = WebchatConfig()


def parse(name: str):
    return adapter.parse((FIXTURES / name).read_bytes(), "application/json", config)


def test_registered_with_a_visitor_policy_that_allows_media():
    assert adapter_for("webchat").policy.identity_kind == IdentityKind.webchat
    assert adapter_for("webchat").policy.media


def test_text_message_keeps_the_text_as_written_and_names_the_conversation():
    [message] = parse("message_text.json")
    assert isinstance(message, InboundMessage)
    assert message.content == "Hi! Is the blue jacket back in stock? <b>size M</b>"
    assert message.sender[0].kind == IdentityKind.webchat
    assert message.sender[0].verification == Verification.provider
    assert message.conversation_id == 42
    assert message.provider_id == "webchat:7:0f6c1e9a-3b1d-4c52-9a57-0d3f1f2b8c11"
    assert message.payload["client_id"] == "0f6c1e9a-3b1d-4c52-9a57-0d3f1f2b8c11"


def test_attachment_only_message_is_media_with_its_bytes():
    [message] = parse("message_attachment.json")
    assert isinstance(message, InboundMessage)
    assert message.content_type == ContentType.media
    assert message.attachments[0].data is not None
    assert message.attachments[0].data.startswith(b"\x89PNG")
    assert message.sender_name == "María"


def test_read_receipt_becomes_status_updates_of_our_replies():
    updates = parse("receipt_read.json")
    assert updates == [
        StatusUpdate(
            outgoing_provider_id(101), DeliveryStatus.read, occurred_at=updates[0].occurred_at
        ),
        StatusUpdate(
            outgoing_provider_id(102), DeliveryStatus.read, occurred_at=updates[1].occurred_at
        ),
    ]


@pytest.mark.parametrize(
    "name", ["ugly_empty_message.json", "ugly_bad_base64.json", "ugly_unknown_status.json"]
)
def test_ugly_envelopes_are_refused_with_a_reason(name):
    with pytest.raises(BadPayload):
        parse(name)


def test_envelopes_round_trip():
    now = datetime(2026, 11, 23, tzinfo=UTC)
    body = message_envelope(
        visit_id=1,
        visitor_id="v_x",
        conversation_id=9,
        client_id="abc",
        content="hello",
        sent_at=now,
        files=[("a.pdf", "application/pdf", b"%PDF-1.4")],
    )
    [message] = adapter.parse(body, "application/json", config)
    assert isinstance(message, InboundMessage)
    assert message.attachments[0].data == b"%PDF-1.4"
    [status] = adapter.parse(
        receipt_envelope(status="delivered", message_ids=[5], at=now), "application/json", config
    )
    assert status == StatusUpdate("webchat-out:5", DeliveryStatus.delivered, occurred_at=now)


async def test_send_needs_no_network_and_reports_sent():
    outbound = OutboundMessage(
        message_id=12, conversation_id=3, idempotency_key="k", to="v_x", content="Hi"
    )
    receipt = await adapter.send(outbound, config, ctx=None)  # type: ignore[arg-type]
    assert receipt.provider_id == outgoing_provider_id(12)
    assert receipt.status == DeliveryStatus.sent


def test_config_validates_what_admins_type():
    cfg = adapter.load_config(
        {
            "allowed_origins": ["https://Shop.Example.com/", ""],
            "pre_chat_fields": ["Name", "email*"],
            "business_hours": ["mon-fri 09:00-17:00"],
            "timezone": "Europe/Madrid",
            "jwt_key": "-----BEGIN PUBLIC KEY----- MIIBIjAN BgkqhkiG -----END PUBLIC KEY-----",
        }
    )
    assert cfg.allowed_origins == ["https://shop.example.com"]
    assert cfg.pre_chat() == [
        {"name": "name", "required": False},
        {"name": "email", "required": True},
    ]
    assert cfg.jwt_key.splitlines()[1] == "MIIBIjANBgkqhkiG"
    assert cfg.origin_allowed("https://shop.example.com")
    assert not cfg.origin_allowed("https://evil.example.net")
    assert not cfg.origin_allowed(None)
    assert WebchatConfig().origin_allowed(None)
    for bad in (
        {"allowed_origins": ["shop.example.com/path"]},
        {"pre_chat_fields": ["age"]},
        {"business_hours": ["weekdays 9-5"]},
        {"timezone": "Nowhere/Land", "business_hours": ["mon 09:00-10:00"]},
        {"colour": "red"},
        {"identity_secret": "short"},
        {"jwt_key": "x" * 20},
    ):
        with pytest.raises(ValidationError):
            adapter.load_config(bad)
