"""A fake Twilio: the Messages API Rapport calls, and the signed webhooks Twilio sends.

It follows the documents the SMS and voice adapters cite: the Message resource (create, list,
media behind basic auth, error JSON {code, message, more_info, status}), the incoming message
webhook and status callbacks (form-encoded, signed with X-Twilio-Signature), voice status
callbacks, and long-code opt-out handling (STOP blocks later sends with error 21610 and Twilio
answers the standard reply itself; START lifts it).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, ClassVar
from urllib.parse import urlencode
from xml.etree import ElementTree

import phonenumbers
from fastapi import APIRouter, BackgroundTasks, Request
from starlette.responses import JSONResponse, Response

from rapport.channels.sms.consent import KeywordKind, classify
from rapport.lib.twilio_webhooks import SIGNATURE_HEADER, compute_signature
from rapport.web.sandbox.common import (
    CustomerMessage,
    Deliver,
    Faults,
    InboxSpec,
    SandboxInbox,
    SignedCall,
    Transcript,
    error_response,
    slow,
)

API = "/2010-04-01/Accounts/{account_sid}"
SANDBOX_ACCOUNT_SID = "AC" + "5a" * 16
SANDBOX_AUTH_TOKEN = "sandbox-twilio-auth-token-0123456789"
SANDBOX_NUMBER = "+34910000000"
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


def _resource(account_sid: str, params: dict[str, Any], sid: str, status: str) -> dict[str, Any]:
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


def _twilio_error(status: int, code: int, message: str) -> JSONResponse:
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


class FakeTwilio:
    name: ClassVar[str] = "twilio"
    label: ClassVar[str] = "Twilio"
    channels: ClassVar[tuple[str, ...]] = ("sms", "voice")

    def __init__(
        self,
        *,
        accounts: dict[str, str] | None = None,
        base_url: str = "",
        deliver: Deliver | None = None,
        statuses: Sequence[str] = (),
    ) -> None:
        self.accounts = accounts or {SANDBOX_ACCOUNT_SID: SANDBOX_AUTH_TOKEN}
        self.base_url = base_url
        self.deliver = deliver  # where status callbacks go; None sends none
        self.statuses = tuple(statuses)  # sent after each accepted message, in this order
        self.messages: list[dict[str, Any]] = []  # Message resources, oldest first
        self.creates: list[dict[str, Any]] = []  # every create request, even refused ones
        self.faults = Faults()
        self.opted_out: set[tuple[str, str]] = set()  # (business number, customer)
        self.media: dict[str, tuple[str, bytes]] = {}
        self.media_fetches = 0
        self.transcript = Transcript()
        self.router = APIRouter()
        self.router.add_api_route(API + "/Messages.json", self._create, methods=["POST"])
        self.router.add_api_route(API + "/Messages.json", self._list, methods=["GET"])
        self.router.add_api_route(
            API + "/Messages/{message_sid}/Media/{media_sid}", self._media, methods=["GET"]
        )

    def attach(self, base_url: str, deliver: Deliver) -> None:
        """Serve at base_url; report sent then delivered for every accepted message."""
        self.base_url = base_url
        self.deliver = deliver
        self.statuses = ("sent", "delivered")

    def sandbox_inboxes(self) -> list[InboxSpec]:
        account = {
            "account_sid": SANDBOX_ACCOUNT_SID,
            "auth_token": SANDBOX_AUTH_TOKEN,
            "api_base_url": self.base_url,
        }
        return [
            InboxSpec("SMS", "sms", {**account, "from_number": SANDBOX_NUMBER}),
            InboxSpec("Phone line", "voice", {**account, "phone_number": SANDBOX_NUMBER}),
        ]

    # --- the API Rapport calls ----------------------------------------------------------------

    def _authorised(self, request: Request, account_sid: str) -> bool:
        auth = request.headers.get("authorization", "")
        token = self.accounts.get(account_sid)
        if token is None or not auth.lower().startswith("basic "):
            return False
        user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        return user == account_sid and password == token

    async def _create(
        self, account_sid: str, request: Request, background: BackgroundTasks
    ) -> Response:
        form = await request.form()
        params: dict[str, Any] = {k: str(v) for k, v in form.items()}
        params["MediaUrl"] = [str(v) for v in form.getlist("MediaUrl")]
        self.creates.append(params)
        if not self._authorised(request, account_sid):
            return _twilio_error(401, 20003, "Authenticate")
        fault = self.faults.next()
        if fault is not None and not fault.accept:
            await slow(fault)
            return error_response(fault, {"code": 20429, "message": "Too Many Requests"})
        refused = self._refusal(params)
        if refused is not None:
            return refused
        resource = self._accept(account_sid, params)
        if fault is not None:
            await slow(fault)  # accepted, but the answer comes too late for the caller
        if self.deliver is not None and params.get("StatusCallback"):
            background.add_task(self._report, account_sid, resource, params["StatusCallback"])
        return JSONResponse(resource, status_code=201)

    def _refusal(self, params: dict[str, Any]) -> Response | None:
        if not params.get("To"):
            return _twilio_error(400, 21604, "A 'To' phone number is required.")
        if not params.get("From") and not params.get("MessagingServiceSid"):
            return _twilio_error(400, 21603, "A 'From' phone number is required.")
        if not params.get("Body") and not params["MediaUrl"]:
            return _twilio_error(400, 21602, "Message body is required.")
        if (params.get("From", ""), params["To"]) in self.opted_out:
            return _twilio_error(400, 21610, "Attempt to send to unsubscribed recipient")
        return None

    def _accept(self, account_sid: str, params: dict[str, Any]) -> dict[str, Any]:
        resource = _resource(account_sid, params, new_sid("SM"), "queued")
        self.messages.append(resource)
        thread = (params.get("From") or params.get("MessagingServiceSid", ""), params["To"])
        self.transcript.add(
            thread,
            "business",
            params.get("Body", ""),
            resource["sid"],
            status="queued",
            media=list(params["MediaUrl"]),
        )
        return resource

    async def _report(self, account_sid: str, resource: dict[str, Any], url: str) -> None:
        assert self.deliver is not None
        for status in self.statuses:
            resource["status"] = status
            self.transcript.set_status(resource["sid"], status)
            params = status_params(
                account_sid=account_sid,
                sid=resource["sid"],
                status=status,
                sender=resource["from"] or "",
                to=resource["to"],
            )
            await self.deliver(signed(url, self.accounts[account_sid], params))

    async def _list(self, account_sid: str, request: Request) -> Response:
        if not self._authorised(request, account_sid):
            return _twilio_error(401, 20003, "Authenticate")
        fault = self.faults.next()
        if fault is not None:
            await slow(fault)
            return error_response(fault, {"code": 20429, "message": "Too Many Requests"})
        query = request.query_params
        found = [
            m
            for m in reversed(self.messages)
            if m["account_sid"] == account_sid
            and query.get("To", m["to"]) == m["to"]
            and query.get("From", m["from"]) == m["from"]
        ]
        size = int(query.get("PageSize", "50"))
        return JSONResponse({"messages": found[:size], "page": 0, "page_size": size})

    async def _media(
        self, account_sid: str, message_sid: str, media_sid: str, request: Request
    ) -> Response:
        self.media_fetches += 1
        if not self._authorised(request, account_sid):
            return _twilio_error(401, 20003, "Authenticate")
        if media_sid not in self.media:
            return _twilio_error(404, 20404, "The requested resource was not found")
        content_type, data = self.media[media_sid]
        return Response(data, media_type=content_type)

    # --- what customers do ---------------------------------------------------------------------

    def plays(self, inbox: SandboxInbox) -> bool:
        base = str(inbox.config.get("api_base_url", "")).rstrip("/")
        return inbox.channel in self.channels and bool(self.base_url) and base == self.base_url

    def thread_of(self, inbox: SandboxInbox, customer: str) -> tuple[str, str]:
        business = inbox.config.get("from_number") or inbox.config.get("messaging_service_sid")
        return (str(business or SANDBOX_NUMBER), customer)

    def media_url(self, account_sid: str, message_sid: str, content_type: str, data: bytes) -> str:
        media_sid = new_sid("ME")
        self.media[media_sid] = (content_type, data)
        message_url = f"{self.base_url}/2010-04-01/Accounts/{account_sid}/Messages/{message_sid}"
        return f"{message_url}/Media/{media_sid}"

    async def customer_says(
        self, inbox: SandboxInbox, message: CustomerMessage, deliver: Deliver
    ) -> None:
        if inbox.channel == "voice":
            await self.customer_calls(inbox, message, deliver)
            return
        account_sid, token = inbox.config["account_sid"], inbox.config["auth_token"]
        business, customer = self.thread_of(inbox, message.customer)
        sid = new_sid("MM" if message.media else "SM")
        media = [
            (self.media_url(account_sid, sid, kind, data), kind)
            for _name, kind, data in message.media
        ]
        self.transcript.add(
            (business, customer), "customer", message.text, sid, media=[m[0] for m in media]
        )
        answered_by_us = self._long_code_keywords(business, customer, message.text)
        params = message_params(
            account_sid=account_sid,
            sid=sid,
            sender=customer,
            to=business,
            body=message.text,
            media=media,
        )
        response = await deliver(signed(inbox.webhook_url, token, params))
        replies = [answered_by_us] if answered_by_us else []
        if response is not None:
            replies += twiml_messages(response.content)
        for reply in replies:
            self.transcript.add(
                (business, customer), "business", reply, new_sid("SM"), status="delivered"
            )

    def _long_code_keywords(self, business: str, customer: str, text: str) -> str | None:
        """Twilio's own long-code handling of the English keywords (and its standard reply)."""
        keyword = classify(text)
        if keyword is None or not keyword.provider_answers:
            return None
        if keyword.kind == KeywordKind.opt_out:
            self.opted_out.add((business, customer))
        elif keyword.kind == KeywordKind.opt_in:
            self.opted_out.discard((business, customer))
        return keyword.reply

    async def customer_calls(
        self, inbox: SandboxInbox, message: CustomerMessage, deliver: Deliver
    ) -> None:
        """A call from the customer: call progress events, answered or missed."""
        account_sid, token = inbox.config["account_sid"], inbox.config["auth_token"]
        business = str(inbox.config.get("phone_number") or SANDBOX_NUMBER)
        seconds = message.call_seconds or 0
        final = "completed" if seconds else "no-answer"
        call_sid = new_sid("CA")
        steps: list[tuple[str, int | None]] = [("initiated", None), ("ringing", None)]
        steps += [("in-progress", None)] if seconds else []
        steps += [(final, seconds)]
        for sequence, (status, duration) in enumerate(steps):
            params = call_params(
                account_sid=account_sid,
                call_sid=call_sid,
                sequence=sequence,
                status=status,
                caller=message.customer,
                called=business,
                duration=duration,
            )
            await deliver(signed(inbox.webhook_url, token, params))
        words = f"📞 {seconds} s" if seconds else "📞 —"
        self.transcript.add((business, message.customer), "customer", words, call_sid)
