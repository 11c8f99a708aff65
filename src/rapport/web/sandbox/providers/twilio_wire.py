"""What a Twilio-compatible provider puts on the wire: webhook parameters, signed calls, the
Message resource and error bodies, as the documents cited in twilio.py describe them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree

import phonenumbers
from starlette.responses import JSONResponse

from rapport.lib.twilio_webhooks import SIGNATURE_HEADER, compute_signature
from rapport.web.sandbox.common import SignedCall

FORM = "application/x-www-form-urlencoded"


def new_sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def _country(number: str) -> str:
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(number)) or ""
    except phonenumbers.NumberParseException:
        return ""


def signed(url: str, token: str, params: list[tuple[str, str]]) -> SignedCall:
    """A form-encoded webhook signed the way Twilio signs it."""
    return SignedCall(
        url=url,
        body=urlencode(params).encode(),
        headers={"Content-Type": FORM, SIGNATURE_HEADER: compute_signature(token, url, params)},
    )


def message_params(
    *,
    account_sid: str,
    sid: str,
    sender: str,
    to: str,
    body: str,
    media: Sequence[tuple[str, str]] = (),
    extra: Sequence[tuple[str, str]] = (),
) -> list[tuple[str, str]]:
    """An incoming message webhook's parameters, in the order Twilio's document lists them."""
    params = [
        ("ToCountry", _country(to)),
        ("SmsMessageSid", sid),
        ("NumMedia", str(len(media))),
        ("SmsSid", sid),
        ("SmsStatus", "received"),
        ("Body", body),
        ("FromCountry", _country(sender)),
        ("To", to),
        ("NumSegments", "1"),
        ("MessageSid", sid),
        ("AccountSid", account_sid),
        ("From", sender),
        ("ApiVersion", "2010-04-01"),
    ]
    for n, (url, content_type) in enumerate(media):
        params += [(f"MediaContentType{n}", content_type), (f"MediaUrl{n}", url)]
    return params + list(extra)


def status_params(
    *, account_sid: str, sid: str, status: str, sender: str, to: str, error_code: str = ""
) -> list[tuple[str, str]]:
    """A status callback's parameters ("Outbound Message Status in Status Callbacks")."""
    params = [
        ("SmsSid", sid),
        ("SmsStatus", status),
        ("MessageStatus", status),
        ("To", to),
        ("MessageSid", sid),
        ("AccountSid", account_sid),
        ("From", sender),
        ("ApiVersion", "2010-04-01"),
    ]
    if status in ("delivered", "undelivered"):
        params.append(("RawDlrDoneDate", datetime.now(UTC).strftime("%y%m%d%H%M")))
    if error_code:
        params.append(("ErrorCode", error_code))
    return params


def call_params(
    *,
    account_sid: str,
    call_sid: str,
    sequence: int,
    status: str,
    caller: str,
    called: str,
    direction: str = "inbound",
    duration: int | None = None,
) -> list[tuple[str, str]]:
    """A voice status callback's parameters (call progress events)."""
    params = [
        ("Called", called),
        ("CallerCountry", _country(caller)),
        ("Direction", direction),
        ("Timestamp", format_datetime(datetime.now(UTC))),
        ("CallbackSource", "call-progress-events"),
        ("SequenceNumber", str(sequence)),
        ("CallSid", call_sid),
        ("To", called),
        ("From", caller),
        ("CallStatus", status),
        ("AccountSid", account_sid),
        ("ApiVersion", "2010-04-01"),
        ("Caller", caller),
    ]
    if duration is not None:
        params.append(("CallDuration", str(duration)))
    return params


def resource(account_sid: str, params: dict[str, Any], sid: str, status: str) -> dict[str, Any]:
    now = format_datetime(datetime.now(UTC))
    return {
        "account_sid": account_sid,
        "api_version": "2010-04-01",
        "body": params.get("Body", ""),
        "date_created": now,
        "date_sent": None,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": params.get("From") or None,
        "messaging_service_sid": params.get("MessagingServiceSid") or None,
        "num_media": str(len(params.get("MediaUrl", []))),
        "num_segments": "1",
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        "status": status,
        "to": params.get("To"),
        "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json",
    }


def twilio_error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status_code=status,
    )


def twiml_messages(body: bytes) -> list[str]:
    """The <Message> replies of a TwiML answer (what Twilio would send back to the customer)."""
    try:
        root = ElementTree.fromstring(body)  # noqa: S314 - Rapport's own answer, in the fake
    except ElementTree.ParseError:
        return []
    return [element.text or "" for element in root.iter("Message")]
