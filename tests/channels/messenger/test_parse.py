"""Every Messenger fixture parses to the messages, echoes and receipts a person would expect."""

from __future__ import annotations

import pytest

from rapport.channels.base import BadPayload
from rapport.channels.messenger import MessengerChannel
from rapport.domain.contacts.models import IdentityKind, Verification
from rapport.domain.conversations.models import ContentType, DeliveryStatus
from rapport.domain.ports import InboundMessage, StatusUpdate
from tests.support.meta import fixture, fixture_names, messaging_config

ADAPTER = MessengerChannel()
CONFIG = ADAPTER.load_config(messaging_config("messenger", app_id="1517776481860111"))
PSID = "6283947561029384"


def parse(name: str, config=CONFIG) -> list[InboundMessage | StatusUpdate]:
    return list(ADAPTER.parse(fixture("messenger", name), "application/json", config))


def one(name: str, config=CONFIG) -> InboundMessage:
    (item,) = parse(name, config)
    assert isinstance(item, InboundMessage)
    assert item.sender[0].kind == IdentityKind.messenger
    assert item.sender[0].value == PSID
    assert item.sender[0].verification == Verification.provider
    return item


def test_every_fixture_parses_and_is_escaped() -> None:
    for name in fixture_names("messenger"):
        assert fixture("messenger", name).isascii(), name
        assert parse(name), name


def test_text_quick_reply_and_quotes() -> None:
    text = one("text")
    assert text.content == "¡Hola! ¿Está abierto el sábado? 🙌 Olá, ação"
    assert text.content_type == ContentType.text and not text.echo
    assert text.provider_id and text.provider_id.startswith("m_")
    assert text.sent_at is not None
    assert one("quick_reply").payload["quick_reply"] == "COLOR_RED"
    quoted = one("reply")
    assert quoted.thread_refs == ("m_OURS0001",)


@pytest.mark.parametrize(
    ("name", "filename", "content_type"),
    [
        ("image", "foto_caja.jpg", "image/jpeg"),
        ("video", "clip.mp4", "video/mp4"),
        ("audio", "audioclip-1732352400.mp4", "video/mp4"),
        ("file", "presupuesto.pdf", "application/pdf"),
        ("sticker", "39178562_1505197616293642_5411344281094848512_n.png", "image/png"),
    ],
)
def test_media(name: str, filename: str, content_type: str) -> None:
    message = one(name)
    assert message.content_type == ContentType.media
    (ref,) = message.attachments
    assert ref.url and ref.url.startswith("https://scontent.xx.fbcdn.net/")
    assert ref.filename == filename and ref.content_type == content_type


def test_location_and_shared_links() -> None:
    location = one("location")
    assert location.content_type == ContentType.location
    assert location.payload["location"]["latitude"] == 40.4168
    assert "40.4168, -3.7038" in location.content
    shared = one("fallback")
    assert shared.content == "mira\nZapatillas — Oferta https://shop.example.com/zapatillas"


def test_reactions_and_postbacks() -> None:
    reaction = one("reaction")
    assert reaction.content_type == ContentType.reaction and reaction.content == "😍"
    assert reaction.thread_refs == ("m_OURS0001",)
    unreact = one("unreact")
    assert unreact.content == "" and unreact.payload["reaction"]["removed"] is True
    assert unreact.provider_id != reaction.provider_id
    postback = one("postback")
    assert postback.content == "Hablar con una persona" and postback.payload["postback"] == "HUMAN"


def test_echoes_are_never_customer_messages() -> None:
    ours = one("echo_ours")
    assert ours.echo and ours.reference == "rapport-msg-7" and not ours.sent_elsewhere
    elsewhere = one("echo_elsewhere")
    assert elsewhere.echo and elsewhere.sent_elsewhere and elsewhere.reference is None
    # Without the app id Rapport cannot tell whose an echo is: none is stored as sent elsewhere.
    blind = ADAPTER.load_config(messaging_config("messenger"))
    assert not one("echo_elsewhere", blind).sent_elsewhere


def test_deliveries_and_watermark_reads() -> None:
    (delivered,) = parse("delivery")
    assert delivered == StatusUpdate(provider_id="m_OURS0001", status=DeliveryStatus.delivered)
    (read,) = parse("read")
    assert isinstance(read, StatusUpdate)
    assert read.status == DeliveryStatus.read and read.provider_id == ""
    assert read.up_to is not None and read.recipient == PSID
    (watermark,) = parse("delivery_watermark_only")
    assert isinstance(watermark, StatusUpdate) and watermark.up_to is not None


def test_unknown_events_and_empty_messages_are_kept() -> None:
    optin = one("unknown_event")
    assert optin.content_type == ContentType.unknown and "optin" in optin.payload["raw"]
    assert optin.provider_id and optin.provider_id == one("unknown_event").provider_id
    empty = one("no_text_no_attachments")
    assert empty.content_type == ContentType.unknown


def test_batch_of_entries_and_standby() -> None:
    items = parse("batch")
    texts = [i.content for i in items if isinstance(i, InboundMessage)]
    assert texts == ["uno", "dos", "en espera"]
    assert [i.provider_id for i in items if isinstance(i, StatusUpdate)] == [
        "m_OURS0002",
        "m_OURS0003",
    ]


def test_instagram_payload_is_not_a_messenger_payload() -> None:
    with pytest.raises(BadPayload):
        ADAPTER.parse(fixture("instagram", "text"), "application/json", CONFIG)
