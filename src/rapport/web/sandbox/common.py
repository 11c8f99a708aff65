"""What every fake provider shares: signed calls, injected faults, and the chat transcript.

A fake provider plays one provider's API that Rapport calls (recording every request and
answering as the provider documents, or with a 429, a 5xx or a slow answer on demand), and
builds the signed webhooks that provider would send for a customer's message or a status. The
sandbox page and the tests drive the same fakes.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

import httpx
from fastapi import APIRouter
from starlette.responses import JSONResponse, Response


@dataclass(frozen=True)
class SignedCall:
    """A webhook exactly as the provider would send it."""

    url: str
    body: bytes
    headers: dict[str, str]

    async def deliver(self, client: httpx.AsyncClient) -> httpx.Response:
        return await client.post(self.url, content=self.body, headers=self.headers)


# Hands a signed call to Rapport; returns Rapport's answer (None when it was not kept).
Deliver = Callable[[SignedCall], Awaitable[httpx.Response | None]]


@dataclass
class Fault:
    """One answer the fake gives instead of its normal one (then it behaves again)."""

    status: int = 0  # 429, 500, 503...
    retry_after: int | None = None
    delay: float = 0.0  # answer this late (longer than Rapport's timeout: a hidden send)
    accept: bool = False  # with a delay: the send is accepted before the slow answer


@dataclass
class Faults:
    queued: list[Fault] = field(default_factory=list)

    def next(self) -> Fault | None:
        return self.queued.pop(0) if self.queued else None

    def add(self, *faults: Fault) -> None:
        self.queued.extend(faults)


def error_response(fault: Fault, body: dict[str, Any]) -> Response:
    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
    return JSONResponse(body, status_code=fault.status, headers=headers)


async def slow(fault: Fault) -> None:
    if fault.delay:
        await asyncio.sleep(fault.delay)  # playing a provider that answers too late


@dataclass
class Entry:
    """One chat bubble in the sandbox: what the customer sent or what the business sent."""

    id: int
    thread: tuple[str, str]  # (business address, customer address)
    sender: str  # "customer" or "business"
    text: str
    provider_id: str
    status: str = ""
    media: list[str] = field(default_factory=list)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class Transcript:
    """Every message a fake provider carried, by conversation thread (kept in memory)."""

    entries: list[Entry] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def add(
        self, thread: tuple[str, str], sender: str, text: str, provider_id: str, **kw: Any
    ) -> Entry:
        entry = Entry(next(self._ids), thread, sender, text, provider_id, **kw)
        self.entries.append(entry)
        return entry

    def thread(self, thread: tuple[str, str]) -> list[Entry]:
        return [e for e in self.entries if e.thread == thread]

    def set_status(self, provider_id: str, status: str) -> None:
        for entry in self.entries:
            if entry.provider_id == provider_id:
                entry.status = status


@dataclass(frozen=True)
class SandboxInbox:
    """What the sandbox needs from an inbox to play its customer (decrypted config included)."""

    id: int
    name: str
    channel: str
    config: dict[str, Any]
    webhook_url: str


@dataclass(frozen=True)
class CustomerMessage:
    """What a person typed in the sandbox, as one customer on one channel."""

    customer: str  # the customer's address on the channel (a phone number, a Telegram user id)
    name: str
    text: str
    media: Sequence[tuple[str, str, bytes]] = ()  # (filename, content type, data)
    call_seconds: int | None = None  # a phone call instead of a text: its length, 0 if missed


@dataclass(frozen=True)
class InboxSpec:
    """A sandbox inbox connected to a fake provider (the demo creates these)."""

    name: str
    channel: str
    config: dict[str, Any]


class FakeProvider(Protocol):
    """The shape of every fake provider the sandbox can list (web/sandbox/catalog.py)."""

    name: ClassVar[str]  # also its URL prefix: /sandbox/provider/<name>
    label: ClassVar[str]
    channels: ClassVar[tuple[str, ...]]  # the Rapport channels it plays the provider of
    router: APIRouter
    transcript: Transcript
    base_url: str

    def attach(self, base_url: str, deliver: Deliver) -> None:
        """Where the fake is served, and where its own webhooks (status callbacks) go."""
        ...

    def sandbox_inboxes(self) -> list[InboxSpec]:
        """The inboxes the demo connects to this fake (after attach, so URLs point here)."""
        ...

    def plays(self, inbox: SandboxInbox) -> bool:
        """Whether this inbox is connected to this fake (its API base URL points here)."""
        ...

    def thread_of(self, inbox: SandboxInbox, customer: str) -> tuple[str, str]: ...

    async def customer_says(
        self, inbox: SandboxInbox, message: CustomerMessage, deliver: Deliver
    ) -> None:
        """Send Rapport the signed webhook this customer's message would produce."""
        ...
