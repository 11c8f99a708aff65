"""Every Telegram fixture parses to what the customer did; unknown updates are kept."""

import json

import pytest

from rapport.channels.base import BadPayload, RawRequest
from rapport.channels.telegram import TelegramChannel, TelegramConfig
from rapport.domain.contacts.models import IdentityKind, Verification
from rapport.domain.conversations.models import ContentType
from tests.support.channels import fixture_names, fixture_path

ADAPTER = TelegramChannel()
CONFIG = TelegramConfig(bot_token="123456789:AAE-test", webhook_secret="s3cret")


def parse(name):
    return ADAPTER.parse(fixture_path("telegram", name).read_bytes(), "application/json", CONFIG)


def one(name):
    [message] = parse(name)
    return message


def test_every_fixture_parses():
    names = fixture_names("telegram")
    assert len(names) >= 20
    for name in names:
        assert len(parse(name)) <= 1, name


def test_a_text_message():
    message = one("text_private.json")
    assert message.content == "Hi! I need to change the delivery address of order #4821."
    [sender] = message.sender
    assert (sender.kind, sender.value, sender.verification) == (
        IdentityKind.telegram,
        "111222333",
        Verification.provider,
    )
    assert message.sender_name == "Lucía Núñez"
    assert message.provider_id == "111222333:501"
    assert message.payload["chat"]["type"] == "private"


def test_emoji_accents_and_a_minimal_user():
    assert (
        one("text_emoji_accents.json").content == "¡Hola! ¿Tenéis envío a Canarias? 🚚🏝️ Gracias 😊"
    )
    minimal = one("text_minimal_user.json")
    assert minimal.sender_name == "Tom" and minimal.sender[0].value == "444555666"


def test_the_largest_photo_is_taken_with_its_caption():
    message = one("photo_with_caption.json")
    [photo] = message.attachments
    assert photo.provider_media_id.endswith("Ds1280") and photo.size == 102443
    assert photo.content_type == "image/jpeg"
    assert message.content == "The box arrived like this"
    assert message.content_type == ContentType.media


@pytest.mark.parametrize(
    ("name", "filename", "content_type"),
    [
        ("document.json", "factura-marzo.pdf", "application/pdf"),
        ("audio.json", "audio-AgADau.mp3", "audio/mpeg"),
        ("voice.json", "voice-AgADvo.ogg", "audio/ogg"),
        ("video.json", "unboxing.mp4", "video/mp4"),
        ("animation.json", "thanks.gif.mp4", "video/mp4"),
        ("sticker_static.json", "sticker-AgADst.webp", "image/webp"),
        ("sticker_animated.json", "sticker-AgADsa.tgs", "application/x-tgsticker"),
    ],
)
def test_files(name, filename, content_type):
    message = one(name)
    [attachment] = message.attachments  # an animation is not counted twice
    assert (attachment.filename, attachment.content_type) == (filename, content_type)
    assert attachment.provider_media_id and attachment.url is None


def test_a_sticker_says_its_emoji():
    message = one("sticker_static.json")
    assert message.content == "👍" and message.payload["sticker"]["set_name"] == "HotCherry"


def test_location_and_venue():
    location = one("location.json")
    assert location.content_type == ContentType.location
    assert location.content == "40.416775, -3.70379"
    venue = one("venue.json")
    assert venue.content == "Museo del Prado, C. de Ruiz de Alarcón, 23, Madrid"
    assert venue.payload["location"]["latitude"] == 40.4153


def test_a_shared_contact_links_the_senders_own_phone_only():
    own = one("contact_own_phone.json")
    assert own.content_type == ContentType.contact_card
    assert [(c.kind, c.value) for c in own.sender] == [
        (IdentityKind.telegram, "111222333"),
        (IdentityKind.phone, "34612345678"),
    ]
    other = one("contact_someone_else.json")
    assert len(other.sender) == 1 and other.content == "Pedro +34 699 000 111"


def test_replies_edits_and_reactions_point_at_the_message_they_concern():
    reply = one("reply.json")
    assert reply.thread_refs == ("111222333:42",)
    assert reply.payload["reply_to"]["text"] == "Is it order #4821?"
    edit = one("edited_message.json")
    assert edit.provider_id.startswith("111222333:501:edit:")
    assert edit.thread_refs == ("111222333:501",) and edit.payload["edited"] == "111222333:501"
    reaction = one("message_reaction.json")
    assert reaction.content_type == ContentType.reaction and reaction.content == "❤"
    assert reaction.thread_refs == ("111222333:42",)


def test_unknown_content_and_updates_are_kept_and_shown_as_such():
    poll = one("poll_message.json")
    assert poll.content_type == ContentType.unknown
    assert poll.payload["message"]["poll"]["question"] == "Which time suits you?"
    future = one("unknown_update_type.json")
    assert future.content_type == ContentType.unknown
    assert future.payload["update_type"] == "some_future_update"
    button = one("callback_query.json")
    assert button.payload["update"]["callback_query"]["data"] == "rating:5"


def test_updates_without_a_person_make_no_message():
    assert parse("channel_post.json") == []
    assert parse("my_chat_member_blocked.json") == []


def test_dedupe_by_bot_and_update_id():
    body = fixture_path("telegram", "text_private.json").read_bytes()
    raw = RawRequest("POST", "https://x/hooks/telegram/1", {}, b"", body)
    update_id = json.loads(body)["update_id"]
    assert ADAPTER.dedupe_key(raw, CONFIG) == f"update:123456789:{update_id}"
    other_bot = TelegramConfig(bot_token="987654321:BBB", webhook_secret="s3cret")
    assert ADAPTER.dedupe_key(raw, other_bot) == f"update:987654321:{update_id}"
    with pytest.raises(BadPayload):
        ADAPTER.parse(b'{"message": {}}', "application/json", CONFIG)
