"""Every WhatsApp fixture parses to the messages and statuses a person would expect."""

from __future__ import annotations

import json

import pytest

from rapport.channels.base import BadPayload
from rapport.channels.whatsapp import WhatsAppChannel
from rapport.domain.contacts.models import IdentityKind, Verification
from rapport.domain.conversations.models import ContentType, DeliveryStatus
from rapport.domain.ports import InboundMessage, StatusUpdate
from tests.support.meta import fixture, fixture_names, whatsapp_config

ADAPTER = WhatsAppChannel()
CONFIG = ADAPTER.load_config(whatsapp_config())


def parse(name: str) -> list[InboundMessage | StatusUpdate]:
    return list(ADAPTER.parse(fixture("whatsapp", name), "application/json", CONFIG))


def one_message(name: str) -> InboundMessage:
    (item,) = parse(name)
    assert isinstance(item, InboundMessage)
    assert not item.echo
    assert item.sender[0].kind == IdentityKind.phone
    assert item.sender[0].verification == Verification.provider
    assert item.provider_id and item.provider_id.startswith("wamid.")
    return item


def test_fixtures_are_escaped_as_meta_sends_them() -> None:
    for name in fixture_names("whatsapp"):
        assert fixture("whatsapp", name).isascii(), name


def test_every_fixture_parses() -> None:
    for name in fixture_names("whatsapp"):
        assert parse(name), name


def test_text_with_emoji_and_accents() -> None:
    message = one_message("text")
    assert message.content == "¡Hola! ¿Tenéis el pedido nº 4521? 😊👍"
    assert message.content_type == ContentType.text
    assert message.sender[0].value == "+34612345678"
    assert message.sender_name == "Lucía Martínez"
    assert message.sent_at is not None and message.sent_at.year == 2024


def test_reply_quotes_the_earlier_message() -> None:
    message = one_message("text_reply")
    assert message.thread_refs == ("wamid.OURS0001",)
    assert message.payload["reply_to"] == "wamid.OURS0001"
    assert one_message("text_forwarded").payload["forwarded"] is True


@pytest.mark.parametrize(
    ("name", "filename", "content_type", "caption"),
    [
        ("image", "image.jpg", "image/jpeg", "La caja llegó así 📦"),
        ("audio_voice", "audio.oga", "audio/ogg; codecs=opus", ""),
        ("video", "video.mp4", "video/mp4", ""),
        ("document", "factura_año_2026.pdf", "application/pdf", "Factura"),
        ("sticker", "sticker.webp", "image/webp", ""),
    ],
)
def test_media(name: str, filename: str, content_type: str, caption: str) -> None:
    message = one_message(name)
    assert message.content_type == ContentType.media
    assert message.content == caption
    (ref,) = message.attachments
    assert ref.provider_media_id and ref.url is None  # fetched through the Graph API later
    assert ref.content_type == content_type
    assert ref.filename.split(".")[0] == filename.split(".", maxsplit=1)[0]
    if name == "audio_voice":
        assert message.payload["voice"] is True


def test_location_full_and_bare() -> None:
    full = one_message("location")
    assert full.content_type == ContentType.location
    assert "Círculo de Bellas Artes" in full.content and "40.418889" in full.content
    assert full.payload["location"]["address"] == "Calle de Alcalá 42, Madrid"
    bare = one_message("location_bare")
    assert bare.content == "40.4, -3.7"
    assert bare.payload["location"]["name"] is None


def test_shared_contact() -> None:
    message = one_message("contacts")
    assert message.content_type == ContentType.contact_card
    assert message.content == "José Núñez · +34 699 111 222 · jose@example.com"
    assert message.payload["contacts"][0]["org"]["company"] == "Núñez S.L."


def test_reactions_point_at_the_message_reacted_to() -> None:
    added = one_message("reaction")
    assert added.content_type == ContentType.reaction
    assert added.content == "❤️"
    assert added.thread_refs == ("wamid.OURS0001",)
    removed = one_message("reaction_removed")
    assert removed.content == "" and removed.payload["reaction"]["removed"] is True


def test_buttons_and_lists_read_as_the_choice_made() -> None:
    button = one_message("interactive_button_reply")
    assert button.content == "Cambiar fecha"
    assert button.payload["interactive"]["button_reply"]["id"] == "change-date"
    assert button.thread_refs == ("wamid.OURS0002",)
    row = one_message("interactive_list_reply")
    assert row.content == "Martes 10:00"
    quick = one_message("button")
    assert quick.content == "Confirmar" and quick.payload["button"]["payload"] == "CONFIRM_ORDER"


def test_unknown_and_unsupported_are_kept() -> None:
    unsupported = one_message("unsupported")
    assert unsupported.content_type == ContentType.unknown
    assert unsupported.content == "Message type is currently not supported."
    unknown = one_message("unknown_type")
    assert unknown.content_type == ContentType.unknown
    assert unknown.payload["raw"]["hologram"] == {"shape": "cube"}
    system = one_message("system")
    assert system.content_type == ContentType.unknown and "changed" in system.content


def test_missing_optional_fields() -> None:
    message = one_message("no_profile")
    assert message.sender_name == "" and message.content == "sin perfil"
    assert one_message("referral").payload["referral"]["source_type"] == "ad"


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("status_sent", DeliveryStatus.sent),
        ("status_delivered", DeliveryStatus.delivered),
        ("status_read", DeliveryStatus.read),
        ("status_failed", DeliveryStatus.failed),
    ],
)
def test_statuses(name: str, status: DeliveryStatus) -> None:
    (update,) = parse(name)
    assert isinstance(update, StatusUpdate)
    assert update.provider_id == "wamid.OURS0001"
    assert update.status == status
    assert update.occurred_at is not None
    if name != "status_read":
        assert update.reference == "rapport-msg-41"
    if status == DeliveryStatus.failed:
        assert update.error is not None
        assert update.error.startswith("(131047) Re-engagement message: Message failed")
    else:
        assert update.error is None


def test_batch_of_entries_and_changes_keeps_order_and_skips_other_numbers() -> None:
    items = parse("batch")
    assert [type(i).__name__ for i in items] == [
        "InboundMessage",
        "InboundMessage",
        "StatusUpdate",
        "InboundMessage",
    ]
    texts = [i.content for i in items if isinstance(i, InboundMessage)]
    assert texts == ["uno", "dos", "three"]
    assert items[3].sender[0].value == "+447700900123"  # type: ignore[union-attr]


def test_not_a_whatsapp_payload_is_a_clear_error() -> None:
    with pytest.raises(BadPayload):
        ADAPTER.parse(b"not json", "application/json", CONFIG)
    with pytest.raises(BadPayload):
        ADAPTER.parse(json.dumps({"object": "page"}).encode(), "application/json", CONFIG)
