"""The settings of one website widget inbox (the admin form is generated from this model)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import AnyHttpUrl, BaseModel, Field, ValidationInfo, field_validator

from rapport.domain.inboxes.business_hours import (
    BusinessHours,
    ScheduleError,
    business_hours,
    parse_holidays,
    parse_weekly,
    zone,
)

PRE_CHAT_FIELDS = ("name", "email", "phone")
_PEM = re.compile(r"-----BEGIN ([A-Z ]+)-----(.+?)-----END \1-----", re.S)


def _origin(value: str) -> str:
    parts = urlsplit(value.strip().rstrip("/"))
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query:
        raise ValueError(f"{value!r} is not an origin such as https://www.example.com")
    return f"{parts.scheme}://{parts.netloc.lower()}"


def _checked(check: Callable[[Any], object], value: Any) -> None:
    """Schedule errors as field errors, so the admin form shows them next to the field."""
    try:
        check(value)
    except ScheduleError as exc:
        raise ValueError(str(exc)) from exc


def _pem(value: str) -> str:
    """A PEM key pasted into a one-line field: rebuild its line breaks."""
    match = _PEM.search(value)
    if match is None:
        return value.strip()
    body = "".join(match.group(2).split())
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join(
        [f"-----BEGIN {match.group(1)}-----", *lines, f"-----END {match.group(1)}-----"]
    )


class WebchatConfig(BaseModel):
    colour: str = Field(
        default="#3559e0", pattern=r"^#[0-9a-fA-F]{6}$", description="Widget colour, like #3559e0"
    )
    greeting: str = Field(
        default="",
        max_length=300,
        description="Shown when the chat opens; blank uses a greeting in the visitor's language",
    )
    avatar_url: AnyHttpUrl | None = Field(default=None, description="Team picture in the header")
    position: Literal["right", "left"] = Field(default="right", description="right or left")
    pre_chat_fields: list[str] = Field(
        default_factory=list,
        description="Asked before the first message, one a line: name, email, phone; "
        "end with * to require it (email*)",
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Sites that may embed this widget, one a line (https://www.example.com); "
        "blank allows any site",
    )
    identity_secret: str = Field(
        default="", description="Verifies user_hash = HMAC-SHA256(secret, user id or email)"
    )
    jwt_algorithm: Literal["HS256", "RS256", "ES256"] = Field(
        default="HS256", description="HS256, RS256 or ES256"
    )
    jwt_key: str = Field(
        default="",
        description="Verifies identity tokens: the shared secret (HS256) or a public key (PEM)",
    )
    timezone: str = Field(
        default="", description="Time zone of the business hours; blank: the account's"
    )
    business_hours: list[str] = Field(
        default_factory=list,
        description="One a line, e.g. mon-fri 09:00-17:30 or fri 22:00-02:00; blank: always open",
    )
    holidays: list[str] = Field(
        default_factory=list, description="Closed dates, one a line: 2026-12-25 Christmas"
    )
    offline_message: str = Field(
        default="",
        max_length=500,
        description="Shown when nobody can answer live; blank uses the built-in text",
    )

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        return [_origin(v) for v in value if v.strip()]

    @field_validator("pre_chat_fields")
    @classmethod
    def _fields(cls, value: list[str]) -> list[str]:
        cleaned = [v.strip().lower() for v in value if v.strip()]
        for item in cleaned:
            if item.rstrip("*") not in PRE_CHAT_FIELDS:
                raise ValueError(f"{item!r}: choose from name, email, phone")
        return cleaned

    @field_validator("identity_secret")
    @classmethod
    def _secret(cls, value: str) -> str:
        if value and len(value) < 16:
            raise ValueError("use at least 16 random characters")
        return value

    @field_validator("jwt_key")
    @classmethod
    def _key(cls, value: str, info: ValidationInfo) -> str:
        # RFC 7518 section 3.2: an HS256 key is at least as long as the hash (32 bytes).
        if info.data.get("jwt_algorithm", "HS256") == "HS256" and 0 < len(value.encode()) < 32:
            raise ValueError("the HS256 secret needs at least 32 characters")
        return _pem(value)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if value.strip():
            _checked(zone, value.strip())
        return value.strip()

    @field_validator("business_hours")
    @classmethod
    def _weekly(cls, value: list[str]) -> list[str]:
        _checked(parse_weekly, value)
        return [v.strip() for v in value if v.strip()]

    @field_validator("holidays")
    @classmethod
    def _holidays(cls, value: list[str]) -> list[str]:
        _checked(parse_holidays, value)
        return [v.strip() for v in value if v.strip()]

    def schedule(self, default_timezone: str = "UTC") -> BusinessHours:
        """The business hours, in the inbox's time zone or else the account's."""
        return business_hours(
            timezone=self.timezone or default_timezone,
            weekly=self.business_hours,
            holidays=self.holidays,
        )

    def origin_allowed(self, origin: str | None) -> bool:
        """Any site when no list is set; otherwise the browser's Origin must be on it."""
        if not self.allowed_origins:
            return True
        if not origin:
            return False
        try:
            return _origin(origin) in self.allowed_origins
        except ValueError:
            return False

    def pre_chat(self) -> list[dict[str, object]]:
        return [{"name": f.rstrip("*"), "required": f.endswith("*")} for f in self.pre_chat_fields]
