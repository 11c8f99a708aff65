"""A provider's webhook sender: many connections at once, every call retried until acknowledged.

Providers deliver at least once: a call that gets no 2xx (refused connection, a connection cut
mid-request, a 5xx) is sent again later. This sender does the same, so a test can crash the
server under it and then check that everything acknowledged was kept exactly once.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass, field

import httpx

from rapport.web.sandbox.common import SignedCall


@dataclass
class Sending:
    """What happened to a burst so far (read it while the burst runs)."""

    total: int
    acked: dict[str, httpx.Response] = field(default_factory=dict)  # key -> the 2xx answer
    failures: Counter[str] = field(default_factory=Counter)  # "503", "ConnectError", ...
    attempts: int = 0

    @property
    def done(self) -> bool:
        return len(self.acked) == self.total


async def deliver_until_acked(
    calls: dict[str, SignedCall],
    sending: Sending | None = None,
    *,
    connections: int = 8,
    within: float = 120.0,
) -> Sending:
    """Deliver every call (keyed by the provider's id), retrying each one until it gets a 2xx."""
    sending = sending or Sending(total=len(calls))
    queue: asyncio.Queue[str] = asyncio.Queue()
    for key in calls:
        queue.put_nowait(key)
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)

    async def connection(http: httpx.AsyncClient) -> None:
        while not sending.done:
            try:
                key = queue.get_nowait()
            except asyncio.QueueEmpty:
                await asyncio.sleep(0.01)  # the rest are being retried by other connections
                continue
            sending.attempts += 1
            try:
                response = await calls[key].deliver(http)
            except httpx.HTTPError as exc:
                sending.failures[type(exc).__name__] += 1
            else:
                if response.is_success:
                    sending.acked[key] = response
                    continue
                sending.failures[str(response.status_code)] += 1
            await asyncio.sleep(random.uniform(0.02, 0.2))  # a provider's retry backoff
            queue.put_nowait(key)

    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(20.0)) as http:
        await asyncio.wait_for(
            asyncio.gather(*(connection(http) for _ in range(connections))), within
        )
    return sending
