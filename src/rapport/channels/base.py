"""The shape every channel adapter has. Copy `channels/api/` to add a channel.

An adapter is stateless: it receives the inbox's validated `Config` on every call. The web edge
hands it a framework-neutral `RawRequest`; workers call `parse` (pure) and `send` (network, via
the one guarded HTTP client in `SendContext`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Generic, Protocol, TypeVar
from urllib.parse import parse_qsl

import httpx
from pydantic import BaseModel, ValidationError

from rapport.domain.ports import (
    ChannelPolicy,
    MediaRef,
    OutboundMessage,
    Parsed,
    ProviderReceipt,
)
from rapport.settings import Settings


@dataclass(frozen=True)
class RawRequest:
    """A provider's HTTP call exactly as it arrived (headers lower-cased)."""

    method: str
    url: str  # the URL as the provider called it, rebuilt from trusted proxy headers
    headers: Mapping[str, str]
    query_string: bytes
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def query(self) -> dict[str, str]:
        """Query parameters from the raw string (dotted names such as hub.mode survive)."""
        return dict(parse_qsl(self.query_string.decode("latin-1"), keep_blank_values=True))

    def form(self) -> list[tuple[str, str]]:
        return parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True)


class VerificationFailed(Exception):
    """The call is not from the provider (or not for this inbox). Nothing may happen."""

    def __init__(self, reason: str, *, status_code: int = 401) -> None:
        super().__init__(reason)
        self.status_code = status_code


class BadPayload(Exception):
    """A verified call whose body cannot be accepted; answered 422 with the reason."""


@dataclass(frozen=True)
class Ack:
    """What the provider expects back once the call is stored."""

    status_code: int = 200
    body: bytes = b""
    content_type: str = "text/plain"


@dataclass
class SendContext:
    """What `send` and `fetch_media` may use: the guarded client and the file store."""

    http: httpx.AsyncClient
    read_file: Callable[[str], Awaitable[bytes]]
    public_url: str
    extra: dict[str, Any] = field(default_factory=dict)


ConfigT = TypeVar("ConfigT", bound=BaseModel)


# --- long-running intake: channels that receive by listening or polling, not by webhook -------


@dataclass(frozen=True)
class ListenedInbox:
    """An active inbox of the listening channel, with its validated Config."""

    id: int
    account_id: int
    config: Any


@dataclass(frozen=True)
class Cursor:
    """How far a polled source was read: a position within an epoch (IMAP UID in UIDVALIDITY)."""

    source: str
    epoch: int | None
    position: int
    updated_at: datetime | None


@dataclass(frozen=True)
class CursorMove:
    """Where a source will stand once a stored payload commits (in the same transaction)."""

    source: str
    epoch: int | None
    position: int


class LeaseLost(Exception):
    """Another process now reads this source; stop reading it."""


class IntakeHost(Protocol):
    """What a channel's listener may ask of Rapport; the workers implement it.

    `store` keeps a raw payload exactly like a verified webhook call (`store_inbound` plus the
    `inbound.process` job), so parsing stays the adapter's pure `parse`.
    """

    settings: Settings

    async def inboxes(self, kind: str) -> list[ListenedInbox]: ...

    async def store(
        self,
        inbox_id: int,
        *,
        dedupe_key: str,
        body: bytes,
        content_type: str,
        meta: dict[str, Any],
        cursor: CursorMove | None = None,
    ) -> bool: ...

    async def store_position(self, inbox_id: int, cursor: CursorMove) -> None: ...

    async def claim(self, inbox_id: int, source: str) -> Cursor | None: ...

    async def release(self, inbox_id: int, source: str) -> None: ...


class Channel(Generic[ConfigT]):
    """Base class of the adapters; subclasses set the class attributes and override methods."""

    kind: ClassVar[str]
    label: ClassVar[str]
    Config: type[ConfigT]
    policy: ClassVar[ChannelPolicy]
    # Names of Config fields that are secrets: never shown back in forms or logs.
    secret_fields: ClassVar[tuple[str, ...]] = ()
    # False for a channel whose mail or messages arrive by listening or polling (email): the
    # admin then shows no webhook URL.
    takes_webhooks: ClassVar[bool] = True

    def load_config(self, data: Mapping[str, Any]) -> ConfigT:
        return self.Config.model_validate(dict(data))

    def validate_config(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Check settings from the admin form; raises ValidationError with field messages."""
        return self.Config.model_validate(dict(data)).model_dump(mode="json")

    def verify(self, request: RawRequest, config: ConfigT) -> None:
        """Authenticate the provider's call; raise VerificationFailed. Must not parse first."""
        raise VerificationFailed("this channel takes no webhooks", status_code=404)

    def handshake(self, request: RawRequest, config: ConfigT) -> str | None:
        """Answer a GET verification handshake (Meta's hub.challenge), or None if unsupported."""
        return None

    def dedupe_key(self, request: RawRequest, config: ConfigT) -> str:
        """A key that is the same for every redelivery of this call (after `verify`)."""
        raise NotImplementedError

    def ack(self, request: RawRequest, config: ConfigT) -> Ack:
        """What the provider expects back once the call is stored (a verified call)."""
        return Ack()

    def parse(self, body: bytes, content_type: str, config: ConfigT) -> Sequence[Parsed]:
        """Turn a stored payload into messages and status updates. Pure: no I/O."""
        raise NotImplementedError

    async def fetch_media(self, ref: MediaRef, config: ConfigT, ctx: SendContext) -> bytes:
        """Download an attachment the provider described (after verification)."""
        if ref.data is not None:
            return ref.data
        if ref.url is None:
            raise BadPayload("attachment without data or URL")
        response = await ctx.http.get(ref.url)
        response.raise_for_status()
        return response.content

    async def send(
        self, outbound: OutboundMessage, config: ConfigT, ctx: SendContext
    ) -> ProviderReceipt:
        raise NotImplementedError

    async def list_templates(self, config: ConfigT, ctx: SendContext) -> list[dict[str, Any]]:
        return []

    async def connect(self, inbox_id: int, config: ConfigT, ctx: SendContext) -> None:
        """Called when an inbox is saved: register webhooks with the provider if it has an API."""

    async def listen(self, host: IntakeHost, stop: asyncio.Event) -> None:
        """Run this channel's listeners (SMTP server, mailbox pollers) until `stop` is set."""

    def webhook_path(self, inbox_id: int) -> str:
        return f"/hooks/{self.kind}/{inbox_id}"


def config_errors(exc: ValidationError) -> dict[str, str]:
    """Field -> message, for showing a Config validation error in the admin form."""
    return {".".join(str(p) for p in err["loc"]) or "config": err["msg"] for err in exc.errors()}
