"""The settings of one email inbox (the admin form is generated from this model).

Secrets (SMTP and IMAP passwords, the reply-address key) live here and are encrypted at rest
with the rest of the inbox config. An inbox without its own SMTP server sends through the
instance-wide relay (`RAPPORT_SMTP_*`); an inbox without IMAP receives through the built-in SMTP
listener (mail forwarded to it) only.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

from rapport.lib.crypto import random_token
from rapport.lib.identities import InvalidIdentity, normalise_email


def _no_line_breaks(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError("must be on one line")
    return value.strip()


class EmailConfig(BaseModel):
    address: str = Field(description="The support address customers write to (From of replies)")
    from_name: str = Field(default="", max_length=120, description="Name shown as the sender")
    default_subject: str = Field(
        default="",
        max_length=200,
        description="Subject of a first mail in a conversation that has none (started in chat)",
    )
    signature: list[str] = Field(
        default_factory=list, description="Added under every reply, one line per row"
    )
    reply_domain: str = Field(
        default="",
        description="Domain whose mail reaches Rapport's SMTP listener; replies then go to "
        "reply+TOKEN@ this domain. Empty: the support address itself, plus-tagged",
    )
    reply_secret: str = Field(
        default_factory=lambda: random_token(24),
        min_length=16,
        description="Signs reply addresses (generated; change it to invalidate old ones)",
    )
    authserv_ids: list[str] = Field(
        default_factory=list,
        description="Authentication-Results ids of your receiving mail server, one per row; "
        "a sender that passed DMARC, DKIM or SPF there is trusted",
    )
    smtp_host: str = Field(default="", description="Empty: the instance's SMTP relay")
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str = ""
    smtp_password: str = ""
    imap_host: str = Field(default="", description="Empty: no mailbox polling")
    imap_port: int = Field(default=993, ge=1, le=65535)
    imap_security: Literal["tls", "none"] = "tls"
    imap_username: str = ""
    imap_password: str = ""
    imap_mailbox: str = "INBOX"
    imap_poll_seconds: int = Field(
        default=60, ge=5, le=3600, description="How often to look when the server has no IDLE"
    )
    imap_backfill_days: int = Field(
        default=3, ge=0, le=365, description="Mail this many days old is read on first connect"
    )

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        try:
            return normalise_email(_no_line_breaks(value))
        except InvalidIdentity as exc:
            raise ValueError("not an email address") from exc

    @field_validator(
        "from_name",
        "default_subject",
        "reply_domain",
        "smtp_host",
        "imap_host",
        "imap_mailbox",
        "smtp_username",
    )
    @classmethod
    def _one_line(cls, value: str) -> str:
        return _no_line_breaks(value)

    @field_validator("reply_domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        if value and ("@" in value or " " in value or "." not in value):
            raise ValueError("a domain such as reply.example.com")
        return value.lower()

    @field_validator("signature")
    @classmethod
    def _signature(cls, value: list[str]) -> list[str]:
        return [line.rstrip() for line in value][:20]
