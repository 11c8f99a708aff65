"""The Messages API of a Twilio-compatible provider: send, and find a send that may have happened.

Twilio's Message resource: POST /2010-04-01/Accounts/{AccountSid}/Messages.json with HTTP
basic auth (Account SID, auth token) and the form parameters To, From or MessagingServiceSid,
Body (up to 1,600 characters), MediaUrl (repeatable, up to 10) and StatusCallback; 201 with the
Message JSON (`sid`, `status`). Errors are JSON {code, message, more_info, status}; 429 (code
20429) and 5xx are worth retrying, honouring Retry-After.

Twilio takes no idempotency key. A timeout can hide an accepted send, so when an earlier attempt
is in doubt we first list the recipient's recent messages (GET .../Messages.json?To=&From=)
and adopt the one with our body created since the reply was queued; only when none exists do
we send. A listing that fails is retried later rather than risk a second send.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

import httpx

from rapport.channels.sms.parse import ERRORS
from rapport.domain.ports import SendError
from rapport.lib.http import retry_after_seconds

API_VERSION = "2010-04-01"
OPTED_OUT_CODE = 21610
CLOCK_SKEW = timedelta(minutes=2)
LIST_PAGE_SIZE = 50


@dataclass(frozen=True)
class Credentials:
    base_url: str
    account_sid: str
    auth_token: str

    @property
    def messages_url(self) -> str:
        return (
            f"{self.base_url.rstrip('/')}/{API_VERSION}/Accounts/{self.account_sid}/Messages.json"
        )

    @property
    def auth(self) -> tuple[str, str]:
        return (self.account_sid, self.auth_token)


@dataclass(frozen=True)
class SentMessage:
    sid: str
    status: str


def _error(response: httpx.Response) -> SendError:
    try:
        data = response.json()
    except ValueError:
        data = {}
    code = data.get("code") if isinstance(data, dict) else None
    message = data.get("message", "") if isinstance(data, dict) else ""
    if response.status_code == 429 or response.status_code >= 500:
        return SendError(
            f"the provider answered {response.status_code}; trying again",
            retryable=True,
            retry_after=retry_after_seconds(response, default=0) or None,
        )
    if response.status_code in (401, 403):
        return SendError(
            "the provider refused the credentials (check the Account SID and auth token)",
            retryable=False,
        )
    words = ERRORS.get(str(code)) or message or f"HTTP {response.status_code}"
    reason = " ".join(f"the provider refused the message: {code or ''} {words}".split())
    return SendError(reason, retryable=False)


async def create(
    http: httpx.AsyncClient, credentials: Credentials, params: list[tuple[str, str]]
) -> SentMessage:
    try:
        response = await http.post(
            credentials.messages_url,
            content=urlencode(params).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            auth=credentials.auth,
        )
    except httpx.HTTPError as exc:
        # The send may or may not have reached the provider: the next attempt reconciles first.
        reason = f"could not reach the provider: {type(exc).__name__}"
        raise SendError(reason, retryable=True) from exc
    if response.status_code not in (200, 201):
        raise _error(response)
    data = response.json()
    return SentMessage(sid=str(data["sid"]), status=str(data.get("status", "queued")))


def _created_at(message: dict[str, Any]) -> datetime | None:
    try:
        return parsedate_to_datetime(str(message.get("date_created")))
    except (TypeError, ValueError):
        return None


def _matches(message: dict[str, Any], body: str, since: datetime) -> bool:
    created = _created_at(message)
    return (
        str(message.get("direction", "")).startswith("outbound")
        and message.get("body") == body
        and created is not None
        and created >= since - CLOCK_SKEW
    )


async def find_sent(
    http: httpx.AsyncClient,
    credentials: Credentials,
    *,
    to: str,
    sender: str | None,
    body: str,
    since: datetime,
) -> SentMessage | None:
    """Our message if an earlier attempt was accepted after all; raises when we cannot know."""
    query: dict[str, str | int] = {"To": to, "PageSize": LIST_PAGE_SIZE}
    if sender:
        query["From"] = sender
    try:
        response = await http.get(credentials.messages_url, params=query, auth=credentials.auth)
    except httpx.HTTPError as exc:
        reason = "could not ask the provider whether an earlier attempt was sent"
        raise SendError(reason, retryable=True) from exc
    if response.status_code != 200:
        error = _error(response)
        # Never send while in doubt: wait for the provider to answer (or for a person).
        reason = f"could not ask the provider whether an earlier attempt was sent: {error}"
        raise SendError(reason, retryable=error.retryable, retry_after=error.retry_after)
    for message in response.json().get("messages", []):
        if isinstance(message, dict) and _matches(message, body, since):
            return SentMessage(sid=str(message["sid"]), status=str(message.get("status", "")))
    return None
