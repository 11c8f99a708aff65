"""Every SMS fixture parses to what the provider meant: messages, media, consent, statuses."""

import pytest

from rapport.channels.base import BadPayload
from rapport.channels.sms import SmsChannel, SmsConfig
from rapport.domain.contacts.models import IdentityKind, Verification
from rapport.domain.conversations.models import ContentType, DeliveryStatus
from rapport.domain.ports import Consent, InboundMessage, StatusUpdate
from tests.support.channels import fixture_names, fixture_path, form_body, form_params

ADAPTER = SmsChannel()
CONFIG = SmsConfig(
    account_sid="AC1f2e3d4c5b6a79880716253443526170",
    auth_token="primary-token-123",
    from_number="+14155550100",
)
FORM = "application/x-www-form-urlencoded"


def parse(name):
    return ADAPTER.parse(form_body(form_params("sms", name)), FORM, CONFIG)


def test_every_fixture_parses():
    names = fixture_names("sms", "message_") + fixture_names("sms", "status_")
    assert len(names) >= 20
    for name in names:
        parsed = parse(name)
        assert len(parsed) <= 1, name


def test_a_plain_sms():
    [message] = parse("message_sms.json")
    assert isinstance(message, InboundMessage)
    assert message.provider_id == "SM0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    assert message.content == "Hi, my order #4821 never arrived. Can you check?"
    assert message.sender[0].kind == IdentityKind.phone
    assert message.sender[0].value == "+14155550123"
    assert message.sender[0].verification == Verification.provider
    assert message.content_type == ContentType.text and message.consent is None
    assert message.payload["fields"]["FromCity"] == "SAN FRANCISCO"


def test_mms_media_is_described_for_fetching_after_verification():
    [message] = parse("message_mms_two_images.json")
    assert [a.content_type for a in message.attachments] == ["image/jpeg", "image/png"]
    assert all(a.url.startswith("https://api.twilio.com/2010-04-01/") for a in message.attachments)
    assert message.attachments[0].filename.endswith(".jpg")
    assert message.content_type == ContentType.text  # it has a body too

    [only_media] = parse("message_mms_media_only.json")
    assert only_media.content == "" and only_media.content_type == ContentType.media
    assert only_media.attachments[0].filename.endswith(".pdf")


def test_emoji_accents_and_missing_optional_fields():
    [spanish] = parse("message_emoji_accents.json")
    assert spanish.content == "¡Hola! ¿Podéis cambiar la dirección? Calle Mayor 12, 3ºB 😊🇪🇸"
    assert spanish.sender[0].value == "+34612345678"
    [minimal] = parse("message_minimal.json")
    assert minimal.content == "ok" and minimal.attachments == ()
    assert "MessagingServiceSid" not in minimal.payload["fields"]


def test_unknown_fields_are_kept():
    [message] = parse("message_unknown_fields.json")
    assert message.payload["fields"]["SomeFutureField"] == "value"
    assert message.payload["fields"]["ChannelMetadata"] == '{"type":"sms"}'


@pytest.mark.parametrize(
    ("name", "consent", "kind"),
    [
        ("message_stop.json", Consent.opt_out, "opt_out"),
        ("message_baja.json", Consent.opt_out, "opt_out"),
        ("message_start.json", Consent.opt_in, "opt_in"),
        ("message_help.json", None, "help"),
        ("message_ayuda.json", None, "help"),
        ("message_advanced_opt_out.json", Consent.opt_out, "opt_out"),
    ],
)
def test_consent_keywords(name, consent, kind):
    [message] = parse(name)
    assert message.consent == consent
    assert message.payload["keyword"]["kind"] == kind
    assert message.content  # the keyword is still a message the agent sees


def test_a_keyword_inside_a_sentence_is_just_a_message():
    [message] = parse("message_stop_in_a_sentence.json")
    assert message.consent is None and "keyword" not in message.payload


@pytest.mark.parametrize(
    ("name", "status", "error"),
    [
        ("status_queued.json", DeliveryStatus.queued, None),
        ("status_sent.json", DeliveryStatus.sent, None),
        ("status_delivered.json", DeliveryStatus.delivered, None),
        ("status_read.json", DeliveryStatus.read, None),
        (
            "status_undelivered.json",
            DeliveryStatus.failed,
            "30003: unreachable destination handset",
        ),
        ("status_failed.json", DeliveryStatus.failed, "30008: unknown error from the carrier"),
    ],
)
def test_status_callbacks(name, status, error):
    [update] = parse(name)
    assert isinstance(update, StatusUpdate)
    assert update.provider_id.startswith("SM")
    assert update.status == status and update.error == error


def test_an_unknown_status_changes_nothing():
    assert parse("status_unknown_value.json") == []


def test_event_streams_json():
    body = fixture_path("sms", "json_event_delivered.json").read_bytes()
    [update] = ADAPTER.parse(body, "application/json", CONFIG)
    assert update == StatusUpdate(
        provider_id="SMf90a1b2c3d4e5f60718293a4b5c6d7e8", status=DeliveryStatus.delivered
    )


def test_bad_payloads_get_a_clear_error():
    with pytest.raises(BadPayload, match="MessageSid"):
        ADAPTER.parse(b"From=%2B1415&Body=hi", FORM, CONFIG)
    with pytest.raises(BadPayload, match="From"):
        ADAPTER.parse(b"MessageSid=SM1&Body=hi", FORM, CONFIG)
    with pytest.raises(BadPayload):
        ADAPTER.parse(b"\xff\xfe", FORM, CONFIG)
