"""Answers of Meta's Graph API (WhatsApp Cloud API, Messenger and Instagram Send API): which
failures are worth another try, and what to tell the agent.

Followed documents: Graph API "Handling Errors" (the `error` object: `message`, `type`, `code`,
`error_subcode`, `is_transient`, `fbtrace_id`; codes 1, 2, 4, 17, 32, 341, 613 are temporary or
rate limits) and WhatsApp Cloud API "Error codes" (`error_data.details`; 130429 throughput,
131048 spam rate limit, 131056 pair rate limit, 80007 account rate limit, 131000, 131016 and
133004 temporary; 131047 re-engagement, 131026 undeliverable and the 132xxx template errors are
final). Messenger's 1200 is a temporary send failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

# Graph error codes that a later attempt can get through (rate limits and temporary failures).
RETRYABLE_CODES = frozenset(
    {1, 2, 4, 17, 32, 341, 613, 1200, 80007, 130429, 131000, 131016, 131048, 131056, 133004}
)
DEFAULT_RATE_LIMIT_DELAY = 60.0  # Meta asks to back off; it gives no Retry-After on most limits


@dataclass(frozen=True)
class GraphFailure:
    """A refused Graph call, in words, with whether to try again."""

    message: str
    code: int | None
    retryable: bool
    retry_after: float | None = None


def error_of(body: Any) -> dict[str, Any]:
    """The `error` object of a Graph answer, or {}."""
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def describe(error: dict[str, Any], status_code: int) -> str:
    """`(#131047) Re-engagement message: more than 24 hours have passed...` for the agent."""
    code = error.get("code")
    text = str(error.get("message") or f"HTTP {status_code}")
    data = error.get("error_data")
    details = data.get("details") if isinstance(data, dict) else None
    prefix = f"(#{code}) " if code is not None else ""
    return f"{prefix}{text}: {details}" if details and details != text else f"{prefix}{text}"


def classify(status_code: int, body: Any, *, retry_after: float | None) -> GraphFailure:
    """Turn a non-2xx Graph answer into a failure that is retried or final."""
    error = error_of(body)
    raw_code = error.get("code")
    code = raw_code if isinstance(raw_code, int) else None
    retryable = (
        status_code == 429
        or status_code >= 500
        or code in RETRYABLE_CODES
        or error.get("is_transient") is True
    )
    delay = retry_after
    if retryable and delay is None and (status_code == 429 or code in RETRYABLE_CODES):
        delay = DEFAULT_RATE_LIMIT_DELAY if code not in (1, 2, 131000, 133004) else None
    return GraphFailure(
        message=describe(error, status_code),
        code=code,
        retryable=retryable,
        retry_after=delay if retryable else None,
    )


# --- the Messenger Platform Send API (Messenger and Instagram) ----------------------------------

STANDARD_WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)
ATTACHMENT_TYPES = ("image", "video", "audio", "file")


class WindowClosed(ValueError):
    """More than 7 days since the customer's last message: nothing may be sent."""


def messaging_type(last_incoming_at: datetime | None, now: datetime) -> dict[str, str]:
    """`RESPONSE` inside 24 hours, the `HUMAN_AGENT` tag up to 7 days (Send API, Message Tags)."""
    if last_incoming_at is not None and now <= last_incoming_at + STANDARD_WINDOW:
        return {"messaging_type": "RESPONSE"}
    if last_incoming_at is not None and now <= last_incoming_at + HUMAN_AGENT_WINDOW:
        return {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
    raise WindowClosed("more than 7 days since the customer's last message")


def attachment_type(content_type: str) -> str:
    main = content_type.split("/", 1)[0]
    return main if main in ATTACHMENT_TYPES else "file"


def messaging_body(
    *,
    recipient: str,
    text: str,
    reference: str,
    window: dict[str, str],
    attachment: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """A Send API body: text, or one attachment `(content_type, url)`; `metadata` is our key,
    which Meta returns in the message echo."""
    message: dict[str, Any] = {"metadata": reference}
    if attachment is not None:
        content_type, url = attachment
        message["attachment"] = {
            "type": attachment_type(content_type),
            "payload": {"url": url, "is_reusable": False},
        }
    else:
        message["text"] = text
    return {"recipient": {"id": recipient}, **window, "message": message}
