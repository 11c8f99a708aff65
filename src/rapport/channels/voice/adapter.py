"""The `voice` channel, minimal: each finished call becomes a record in the caller's conversation.

In: POST /hooks/voice/{inbox_id}, the call progress status callbacks of a Twilio-compatible
provider (set the number's, or the TwiML app's, Status Callback URL to it, with the events
initiated, ringing, answered and completed), form-encoded and signed with X-Twilio-Signature.

Twilio's voice webhook documents ("TwiML voice: your response", "Call resource: StatusCallback
events"): every callback carries CallSid, AccountSid, From, To, Caller, Called, CallStatus
(queued, initiated, ringing, in-progress, completed, busy, no-answer, failed, canceled),
Direction (inbound, outbound-api, outbound-dial), ApiVersion, and for call progress events
CallbackSource, Timestamp and SequenceNumber ("the order in which the events were fired,
starting from 0"); the completed one adds CallDuration (seconds) and, when recorded,
RecordingUrl, RecordingSid and RecordingDuration. Redeliveries are keyed by (CallSid,
SequenceNumber).

Only the final callback makes a record (one per call, idempotent by CallSid): direction, status
and duration, on the phone identity the SMS and WhatsApp channels share. The record is stored on
the conversation's incoming side whoever placed the call; its payload says which way it went.
Calls cannot carry a written reply: the reply box shows this inbox disabled, with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar
from urllib.parse import parse_qsl

from pydantic import AnyHttpUrl, BaseModel, Field

from rapport.channels.base import (
    Ack,
    BadPayload,
    Channel,
    RawRequest,
    SendContext,
    VerificationFailed,
)
from rapport.domain.contacts.models import IdentityKind, Verification
from rapport.domain.conversations.models import ContentType
from rapport.domain.ports import (
    ChannelPolicy,
    IdentityClaim,
    InboundMessage,
    OutboundMessage,
    Parsed,
    ProviderReceipt,
    ReplyCheck,
    ReplyContext,
    SendError,
)
from rapport.lib import twilio_webhooks

FINAL_STATUSES = {"completed", "busy", "no-answer", "failed", "canceled"}
EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


class VoiceConfig(BaseModel):
    account_sid: str = Field(
        min_length=2, max_length=64, description="Account SID (starts with AC)"
    )
    auth_token: str = Field(min_length=8, description="Auth token: signs the status callbacks")
    secondary_auth_token: str = Field(
        default="", description="Secondary auth token, still accepted while you rotate"
    )
    phone_number: str = Field(default="", description="The number customers call (E.164)")
    api_base_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("https://api.twilio.com"), description="The provider's API address"
    )


class VoicePolicy(ChannelPolicy):
    """A call record is not a channel to write on."""

    def check(self, ctx: ReplyContext) -> ReplyCheck:
        return ReplyCheck(False, "calls cannot carry a written reply")


def _fields(body: bytes) -> dict[str, str]:
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError as exc:
        raise BadPayload("the form body is not UTF-8") from exc
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value)
    if not fields.get("CallSid"):
        raise BadPayload("CallSid is missing")
    return fields


def _seconds(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


class VoiceChannel(Channel[VoiceConfig]):
    kind: ClassVar[str] = "voice"
    label: ClassVar[str] = "Voice"
    Config = VoiceConfig
    secret_fields: ClassVar[tuple[str, ...]] = ("auth_token", "secondary_auth_token")
    policy: ClassVar[ChannelPolicy] = VoicePolicy(identity_kind=IdentityKind.phone, media=False)

    def verify(self, request: RawRequest, config: VoiceConfig) -> None:
        signature = request.header(twilio_webhooks.SIGNATURE_HEADER)
        if not signature:
            raise VerificationFailed("missing signature", status_code=401)
        tokens = [config.auth_token, config.secondary_auth_token]
        try:
            twilio_webhooks.verify(tokens, request.url, request.body, signature)
        except twilio_webhooks.TwilioSignatureError as exc:
            raise VerificationFailed(str(exc), status_code=403) from exc

    def dedupe_key(self, request: RawRequest, config: VoiceConfig) -> str:
        fields = _fields(request.body)
        step = fields.get("SequenceNumber") or fields.get("CallStatus", "")
        return f"call:{fields['CallSid']}:{step}"

    def ack(self, request: RawRequest, config: VoiceConfig) -> Ack:
        return Ack(body=EMPTY_TWIML, content_type="text/xml")

    def parse(self, body: bytes, content_type: str, config: VoiceConfig) -> Sequence[Parsed]:
        fields = _fields(body)
        status = fields.get("CallStatus", "")
        if status not in FINAL_STATUSES:
            return []  # ringing, answered: the record is made once the call is over
        inbound = fields.get("Direction", "inbound") == "inbound"
        customer = fields.get("From" if inbound else "To") or ""
        if not customer:
            raise BadPayload("the caller's number is missing")
        call = {
            "direction": "inbound" if inbound else "outbound",
            "status": status,
            "duration": _seconds(fields.get("CallDuration")) or 0,
            "recording_url": fields.get("RecordingUrl"),
        }
        return [
            InboundMessage(
                sender=(IdentityClaim(IdentityKind.phone, customer, Verification.provider),),
                content_type=ContentType.call,
                provider_id=fields["CallSid"],
                payload={"call": call, "fields": fields},
            )
        ]

    async def send(
        self, outbound: OutboundMessage, config: VoiceConfig, ctx: SendContext
    ) -> ProviderReceipt:
        raise SendError("calls cannot carry a written reply", retryable=False)
