"""A fake Twilio: the Messages API Rapport calls, and the signed webhooks Twilio sends.

It follows the documents the SMS and voice adapters cite: the Message resource (create, list,
media behind basic auth, error JSON {code, message, more_info, status}), the incoming message
webhook and status callbacks (form-encoded, signed with X-Twilio-Signature), voice status
callbacks, and long-code opt-out handling (STOP blocks later sends with error 21610 and Twilio
answers the standard reply itself; START lifts it).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, ClassVar

from fastapi import APIRouter, BackgroundTasks, Request
from starlette.responses import JSONResponse, Response

from rapport.channels.sms.consent import KeywordKind, classify
from rapport.web.sandbox.common import (
    CustomerMessage,
    Deliver,
    Faults,
    InboxSpec,
    SandboxInbox,
    Transcript,
    error_response,
    slow,
)
from rapport.web.sandbox.providers.twilio_wire import (
    call_params,
    message_params,
    new_sid,
    resource,
    signed,
    status_params,
    twilio_error,
    twiml_messages,
)

__all__ = ["FakeTwilio", "call_params", "message_params", "new_sid", "signed", "status_params"]

API = "/2010-04-01/Accounts/{account_sid}"
SANDBOX_ACCOUNT_SID = "AC" + "5a" * 16
SANDBOX_AUTH_TOKEN = "sandbox-twilio-auth-token-0123456789"
SANDBOX_NUMBER = "+34910000000"


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
            return twilio_error(401, 20003, "Authenticate")
        fault = self.faults.next()
        if fault is not None and not fault.accept:
            await slow(fault)
            return error_response(fault, {"code": 20429, "message": "Too Many Requests"})
        refused = self._refusal(params)
        if refused is not None:
            return refused
        created = self._accept(account_sid, params)
        if fault is not None:
            await slow(fault)  # accepted, but the answer comes too late for the caller
        if self.deliver is not None and params.get("StatusCallback"):
            background.add_task(self._report, account_sid, created, params["StatusCallback"])
        return JSONResponse(created, status_code=201)

    def _refusal(self, params: dict[str, Any]) -> Response | None:
        if not params.get("To"):
            return twilio_error(400, 21604, "A 'To' phone number is required.")
        if not params.get("From") and not params.get("MessagingServiceSid"):
            return twilio_error(400, 21603, "A 'From' phone number is required.")
        if not params.get("Body") and not params["MediaUrl"]:
            return twilio_error(400, 21602, "Message body is required.")
        if (params.get("From", ""), params["To"]) in self.opted_out:
            return twilio_error(400, 21610, "Attempt to send to unsubscribed recipient")
        return None

    def _accept(self, account_sid: str, params: dict[str, Any]) -> dict[str, Any]:
        created = resource(account_sid, params, new_sid("SM"), "queued")
        self.messages.append(created)
        thread = (params.get("From") or params.get("MessagingServiceSid", ""), params["To"])
        self.transcript.add(
            thread,
            "business",
            params.get("Body", ""),
            created["sid"],
            status="queued",
            media=list(params["MediaUrl"]),
        )
        return created

    async def _report(self, account_sid: str, message: dict[str, Any], url: str) -> None:
        assert self.deliver is not None
        for status in self.statuses:
            message["status"] = status
            self.transcript.set_status(message["sid"], status)
            params = status_params(
                account_sid=account_sid,
                sid=message["sid"],
                status=status,
                sender=message["from"] or "",
                to=message["to"],
            )
            await self.deliver(signed(url, self.accounts[account_sid], params))

    async def _list(self, account_sid: str, request: Request) -> Response:
        if not self._authorised(request, account_sid):
            return twilio_error(401, 20003, "Authenticate")
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
            return twilio_error(401, 20003, "Authenticate")
        if media_sid not in self.media:
            return twilio_error(404, 20404, "The requested resource was not found")
        content_type, data = self.media[media_sid]
        return Response(data, media_type=content_type)

    # --- what customers do ---------------------------------------------------------------------

    def plays(self, inbox: SandboxInbox) -> bool:
        base = str(inbox.config.get("api_base_url", "")).rstrip("/")
        return inbox.channel in self.channels and bool(self.base_url) and base == self.base_url

    def thread_of(self, inbox: SandboxInbox, customer: str) -> tuple[str, str]:
        config = inbox.config
        business = (
            config.get("from_number")
            or config.get("messaging_service_sid")
            or config.get("phone_number")  # a voice inbox
        )
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
        business, _customer = self.thread_of(inbox, message.customer)
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
