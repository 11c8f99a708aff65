"""Voice status callbacks: one call record per finished call, on the caller's phone identity."""

import pytest

from rapport.channels.base import BadPayload, RawRequest
from rapport.channels.voice import VoiceChannel, VoiceConfig
from rapport.domain.contacts.models import IdentityKind
from rapport.domain.conversations.models import ContentType
from rapport.domain.ports import ReplyContext, SendError
from rapport.lib.clock import utcnow
from tests.support.channels import fixture_names, form_body, form_params

ADAPTER = VoiceChannel()
CONFIG = VoiceConfig(account_sid="AC1f2e3d4c5b6a79880716253443526170", auth_token="primary-123")
FORM = "application/x-www-form-urlencoded"


def parse(name):
    return ADAPTER.parse(form_body(form_params("voice", name)), FORM, CONFIG)


def test_every_fixture_parses():
    for name in fixture_names("voice"):
        assert len(parse(name)) <= 1, name


@pytest.mark.parametrize(
    "name",
    [
        "call_inbound_initiated.json",
        "call_inbound_ringing.json",
        "call_inbound_answered.json",
        "call_unknown_status.json",
    ],
)
def test_calls_still_going_make_no_record_yet(name):
    assert parse(name) == []


def test_a_finished_inbound_call():
    [record] = parse("call_inbound_completed.json")
    assert record.content_type == ContentType.call
    assert record.provider_id == "CA0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    assert record.sender[0].kind == IdentityKind.phone
    assert record.sender[0].value == "+14155550123"
    call = record.payload["call"]
    assert call["direction"] == "inbound" and call["status"] == "completed"
    assert call["duration"] == 192 and call["recording_url"].endswith(
        "RE0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    )


def test_missed_busy_and_outbound_calls():
    [missed] = parse("call_inbound_no_answer.json")
    assert missed.payload["call"] == {
        "direction": "inbound",
        "status": "no-answer",
        "duration": 0,
        "recording_url": None,
    }
    [busy] = parse("call_busy_minimal.json")
    assert busy.payload["call"]["status"] == "busy"
    [outbound] = parse("call_outbound_completed.json")
    assert outbound.payload["call"]["direction"] == "outbound"
    assert outbound.sender[0].value == "+14155550123"  # the customer is who was called


def test_redeliveries_are_keyed_by_call_and_sequence():
    def key(name):
        body = form_body(form_params("voice", name))
        raw = RawRequest("POST", "https://x/hooks/voice/1", {"content-type": FORM}, b"", body)
        return ADAPTER.dedupe_key(raw, CONFIG)

    assert key("call_inbound_ringing.json") == "call:CA0a1b2c3d4e5f60718293a4b5c6d7e8f9:1"
    assert key("call_inbound_completed.json") == "call:CA0a1b2c3d4e5f60718293a4b5c6d7e8f9:3"
    with pytest.raises(BadPayload):
        ADAPTER.parse(b"CallStatus=completed", FORM, CONFIG)


async def test_a_call_is_not_a_channel_to_write_on():
    check = ADAPTER.policy.check(
        ReplyContext(now=utcnow(), last_incoming_at=utcnow(), recipient="+14155550123")
    )
    assert not check.allowed and check.reason == "calls cannot carry a written reply"
    with pytest.raises(SendError):
        await ADAPTER.send(None, CONFIG, None)
