"""The `sms` channel: a Twilio-compatible provider's messaging webhooks and Messages API.

In:  POST /hooks/sms/{inbox_id}, form-encoded (or JSON with bodySHA256), signed with
     X-Twilio-Signature: incoming SMS/MMS and the status callbacks of our replies. Set it as
     the number's "A message comes in" webhook; replies name it as their StatusCallback.
Out: the Messages API (base URL configurable), text and media (MediaUrl: a signed link to the
     attachment), never twice (see api.py), with STOP honoured before every send.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar

import httpx
from pydantic import AnyHttpUrl, BaseModel, Field, field_validator, model_validator

from rapport.channels.base import (
    Ack,
    BadPayload,
    Channel,
    RawRequest,
    SendContext,
    VerificationFailed,
)
from rapport.channels.sms import api
from rapport.channels.sms.consent import classify, twiml
from rapport.channels.sms.parse import dedupe_key, fields_of, is_status, parse_fields
from rapport.channels.sms.policy import MAX_BODY_CHARACTERS, SmsPolicy
from rapport.domain.contacts.models import IdentityKind
from rapport.domain.conversations.models import DeliveryStatus
from rapport.domain.ports import MediaRef, OutboundMessage, Parsed, ProviderReceipt, SendError
from rapport.lib import twilio_webhooks
from rapport.lib.http import TooLarge, fetch_limited
from rapport.lib.identities import InvalidIdentity, normalise_phone

MAX_MEDIA_BYTES = 5 * 1024 * 1024  # "up to 10 media files that have a total size of up to 5MB"


class SmsConfig(BaseModel):
    account_sid: str = Field(
        min_length=2, max_length=64, description="Account SID (starts with AC)"
    )
    auth_token: str = Field(min_length=8, description="Auth token: signs webhooks, sends messages")
    secondary_auth_token: str = Field(
        default="", description="Secondary auth token, still accepted on webhooks while you rotate"
    )
    from_number: str = Field(
        default="", description="The number replies come from, in E.164 (+14155550100)"
    )
    messaging_service_sid: str = Field(
        default="", description="Or a Messaging Service SID (starts with MG) to send through"
    )
    api_base_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("https://api.twilio.com"), description="The provider's API address"
    )
    answer_keywords: bool = Field(
        default=False,
        description="Rapport answers STOP, START and HELP itself (short codes, providers that "
        "do not); long codes leave the English keywords to the provider",
    )

    @field_validator("from_number")
    @classmethod
    def _e164(cls, value: str) -> str:
        if not value.strip():
            return ""
        try:
            return normalise_phone(value)
        except InvalidIdentity as exc:
            raise ValueError("write the number in international form, e.g. +14155550100") from exc

    @model_validator(mode="after")
    def _a_sender(self) -> SmsConfig:
        if not self.from_number and not self.messaging_service_sid:
            raise ValueError("give the number to send from, or a Messaging Service SID")
        return self

    def credentials(self) -> api.Credentials:
        return api.Credentials(str(self.api_base_url), self.account_sid, self.auth_token)


class SmsChannel(Channel[SmsConfig]):
    kind: ClassVar[str] = "sms"
    label: ClassVar[str] = "SMS"
    Config = SmsConfig
    secret_fields: ClassVar[tuple[str, ...]] = ("auth_token", "secondary_auth_token")
    policy: ClassVar[SmsPolicy] = SmsPolicy(
        identity_kind=IdentityKind.phone, max_length=MAX_BODY_CHARACTERS, consent_required=True
    )

    def verify(self, request: RawRequest, config: SmsConfig) -> None:
        signature = request.header(twilio_webhooks.SIGNATURE_HEADER)
        if not signature:
            raise VerificationFailed("missing signature", status_code=401)
        tokens = [config.auth_token, config.secondary_auth_token]
        try:
            twilio_webhooks.verify(tokens, request.url, request.body, signature)
        except twilio_webhooks.TwilioSignatureError as exc:
            raise VerificationFailed(str(exc), status_code=403) from exc

    def dedupe_key(self, request: RawRequest, config: SmsConfig) -> str:
        events = fields_of(request.body, request.content_type)
        if not events:
            raise BadPayload("no event in the body")
        return "|".join(dedupe_key(fields) for fields in events)[:255]

    def ack(self, request: RawRequest, config: SmsConfig) -> Ack:
        """Empty TwiML, or the consent reply the provider will not send itself."""
        reply = None
        [fields, *_] = fields_of(request.body, request.content_type)
        if not is_status(fields):
            keyword = classify(fields.get("Body", ""), fields.get("OptOutType"))
            if keyword is not None and (config.answer_keywords or not keyword.provider_answers):
                reply = keyword.reply
        return Ack(body=twiml(reply), content_type="text/xml")

    def parse(self, body: bytes, content_type: str, config: SmsConfig) -> Sequence[Parsed]:
        parsed = (parse_fields(fields) for fields in fields_of(body, content_type))
        return [item for item in parsed if item is not None]

    async def fetch_media(self, ref: MediaRef, config: SmsConfig, ctx: SendContext) -> bytes:
        """Media lives at the provider behind basic auth: never send the token elsewhere."""
        base = httpx.URL(str(config.api_base_url))
        if ref.url is None or httpx.URL(ref.url).host != base.host:
            raise BadPayload("a media URL that is not the provider's was refused")
        try:
            data, served = await fetch_limited(
                ctx.http, ref.url, limit=MAX_MEDIA_BYTES, auth=config.credentials().auth
            )
        except TooLarge as exc:
            raise BadPayload(str(exc)) from exc
        _check_type(ref.content_type, served)
        return data

    async def send(
        self, outbound: OutboundMessage, config: SmsConfig, ctx: SendContext
    ) -> ProviderReceipt:
        if len(outbound.content) > MAX_BODY_CHARACTERS:
            raise SendError("an SMS can be at most 1,600 characters", retryable=False)
        credentials = config.credentials()
        if outbound.metadata.get("in_doubt"):
            earlier = await api.find_sent(
                ctx.http,
                credentials,
                to=outbound.to,
                sender=config.from_number or None,
                body=outbound.content,
                since=datetime.fromisoformat(str(outbound.metadata["queued_at"])),
            )
            if earlier is not None:
                return _receipt(earlier)
        sent = await api.create(ctx.http, credentials, _params(outbound, config))
        return _receipt(sent)


def _check_type(declared: str, served: str) -> None:
    """The file must be what the webhook said it is (an image is not served as a page)."""
    served_type = served.split(";", 1)[0].strip().lower()
    if not served_type or served_type == "application/octet-stream":
        return
    if served_type.split("/", 1)[0] != declared.split("/", 1)[0].strip().lower():
        raise BadPayload(f"the provider served {served_type} for a {declared} attachment")


def _params(outbound: OutboundMessage, config: SmsConfig) -> list[tuple[str, str]]:
    params = [("To", outbound.to), ("Body", outbound.content)]
    if config.messaging_service_sid:
        params.append(("MessagingServiceSid", config.messaging_service_sid))
    else:
        params.append(("From", config.from_number))
    params += [("MediaUrl", a.url) for a in outbound.attachments if a.url]
    webhook_url = outbound.metadata.get("webhook_url")
    if webhook_url:
        params.append(("StatusCallback", str(webhook_url)))
    return params


def _receipt(sent: api.SentMessage) -> ProviderReceipt:
    later = {"delivered": DeliveryStatus.delivered, "read": DeliveryStatus.read}
    return ProviderReceipt(provider_id=sent.sid, status=later.get(sent.status, DeliveryStatus.sent))
