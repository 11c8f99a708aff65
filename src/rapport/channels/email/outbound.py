"""Sending a reply over SMTP (aiosmtplib), with failures sorted into retry and dead letter.

RFC 5321 section 4.2.1: 4yz replies are transient (the outbox tries again with backoff), 5yz
are permanent (the message shows as not delivered with the server's words). Connection
problems are transient. Passwords never appear in an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import aiosmtplib

from rapport.channels.email.config import EmailConfig
from rapport.domain.ports import SendError

SMTP_TIMEOUT = 30.0


@dataclass(frozen=True)
class Relay:
    """Where mail goes out: the inbox's own server, or the instance-wide relay."""

    host: str
    port: int
    security: str  # starttls, tls, none
    username: str
    password: str


def relay_for(config: EmailConfig, fallback: dict[str, Any] | None) -> Relay:
    if config.smtp_host:
        return Relay(
            config.smtp_host,
            config.smtp_port,
            config.smtp_security,
            config.smtp_username,
            config.smtp_password,
        )
    if fallback and fallback.get("host"):
        return Relay(
            str(fallback["host"]),
            int(fallback.get("port") or 587),
            "starttls" if fallback.get("starttls", True) else "none",
            str(fallback.get("username") or ""),
            str(fallback.get("password") or ""),
        )
    raise SendError(
        "this email inbox has no SMTP server (set one on the inbox or RAPPORT_SMTP_HOST)",
        retryable=False,
    )


def _refused(code: int, text: str) -> SendError:
    words = " ".join(text.split())[:300]
    return SendError(
        f"the mail server answered {code} {words}".strip(), retryable=400 <= code < 500
    )


async def submit(message: EmailMessage, *, sender: str, recipient: str, relay: Relay) -> None:
    """Hand the message to the relay; raises SendError (retryable or not)."""
    client = aiosmtplib.SMTP(
        hostname=relay.host,
        port=relay.port,
        use_tls=relay.security == "tls",
        start_tls=relay.security == "starttls",
        timeout=SMTP_TIMEOUT,
    )
    try:
        async with client:
            if relay.username:
                await client.login(relay.username, relay.password)
            errors, _answer = await client.send_message(
                message, sender=sender, recipients=[recipient]
            )
    except aiosmtplib.SMTPAuthenticationError as exc:
        raise SendError(
            "the mail server refused the SMTP username or password", retryable=False
        ) from exc
    except aiosmtplib.SMTPRecipientsRefused as exc:
        first = exc.recipients[0] if exc.recipients else None
        raise _refused(first.code if first else 550, first.message if first else "") from exc
    except aiosmtplib.SMTPResponseException as exc:
        raise _refused(exc.code, exc.message) from exc
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise SendError(
            f"could not reach the mail server {relay.host}:{relay.port}: {type(exc).__name__}",
            retryable=True,
        ) from exc
    if errors:
        code, text = next(iter(errors.values()))
        raise _refused(code, text)
