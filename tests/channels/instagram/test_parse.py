"""Every Instagram fixture parses to the messages, echoes and receipts a person would expect."""

from __future__ import annotations

import pytest

from rapport.channels.base import BadPayload
from rapport.channels.instagram import InstagramChannel
from rapport.domain.contacts.models import IdentityKind
from rapport.domain.conversations.models import ContentType, DeliveryStatus
from rapport.domain.ports import InboundMessage, StatusUpdate
from tests.support.meta import fixture, fixture_names, messaging_config

ADAPTER = InstagramChannel()
CONFIG = ADAPTER.load_config(messaging_config("instagram", app_id="1517776481860111"))
IGSID = "5309271846620194"


def parse(name: str) -> list[InboundMessage | StatusUpdate]:
    return list(ADAPTER.parse(fixture("instagram", name), "application/json", CONFIG))


def one(name: str) -> InboundMessage:
    (item,) = parse(name)
    assert isinstance(item, InboundMessage)
    assert item.sender[0].kind == IdentityKind.instagram and item.sender[0].value == IGSID
    return item


def test_every_fixture_parses_and_is_escaped() -> None:
    for name in fixture_names("instagram"):
        assert fixture("instagram", name).isascii(), name
        assert parse(name), name


def test_text_and_replies() -> None:
    assert one("text").content == "Hola 👋 ¿hacéis envíos a Canarias?"
    assert one("reply").thread_refs == ("aWdfOURS0001",)
    story = one("story_reply")
    assert story.content == "¡Qué bonito!" and story.payload["story"]["id"] == "3261232154654651"


@pytest.mark.parametrize("name", ["image", "video", "audio"])
def test_media_from_the_lookaside_cdn(name: str) -> None:
    message = one(name)
    assert message.content_type == ContentType.media
    (ref,) = message.attachments
    assert ref.url and ref.url.startswith("https://lookaside.fbsbx.com/ig_messaging_cdn/")
    assert ref.filename.startswith(name)


def test_shares_and_story_mentions_are_shown_as_links() -> None:
    share = one("share")
    assert share.content == "https://www.instagram.com/p/C0ffee/"
    assert share.payload["attachments"][0]["type"] == "share"
    mention = one("story_mention")
    assert mention.payload["attachments"][0]["type"] == "story_mention"


def test_reactions_postbacks_deleted_and_unsupported() -> None:
    assert one("reaction").content == "❤️"
    assert one("postback").payload["postback"] == "CATALOG"
    deleted = one("deleted")
    assert deleted.content_type == ContentType.unknown and deleted.payload["deleted"] is True
    assert deleted.provider_id.endswith(":deleted")
    assert one("unsupported").content_type == ContentType.unknown


def test_echoes() -> None:
    ours = one("echo_ours")
    assert ours.echo and ours.reference == "rapport-msg-9"
    assert one("echo_elsewhere").sent_elsewhere


def test_seen_names_the_message() -> None:
    (seen,) = parse("seen")
    assert seen == StatusUpdate(provider_id="aWdfOURS0001", status=DeliveryStatus.read)


def test_batch() -> None:
    items = parse("batch")
    assert [i.content for i in items if isinstance(i, InboundMessage)] == ["uno", "dos"]
    assert [i.provider_id for i in items if isinstance(i, StatusUpdate)] == ["aWdfOURS0002"]


def test_messenger_payload_is_not_an_instagram_payload() -> None:
    with pytest.raises(BadPayload):
        ADAPTER.parse(fixture("messenger", "text"), "application/json", CONFIG)
