"""One socket's outgoing frames, in order: written at once while the socket is idle, queued else.

Fan-out to a thousand sockets used to put each frame on each socket's queue and wake each
socket's task to send it: a task switch per socket per event. Most of the time a socket has
nothing queued and nothing in flight, and its transport takes the bytes at once, so the feed
writes the frame right there, inside the fan-out loop, as `websockets.broadcast` does. The queue
(and the socket's pump task draining it) is kept for everything else: frames that arrive while
the socket replays the log, while an earlier send is still in flight, or while the transport
pushes back. A socket more than `limit` frames behind is closed (its browser resumes from the log).
"""

from __future__ import annotations

import asyncio
import time
import types
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any

from rapport.realtime.ephemeral import EPHEMERAL_SEQ

QUEUE_LIMIT = 1000
PING_FRAME = '{"kind":"ping"}'

Send = Callable[[str], Coroutine[Any, Any, None]]


def run_until_suspended(coro: Coroutine[Any, Any, None]) -> Awaitable[None] | None:
    """Run `coro` now, in the caller, up to its first suspension.

    Returns None when it finished (the usual case for a socket send: an ASGI server's send only
    suspends while its transport is over the high-water mark), else an awaitable that resumes it
    where it stopped, to be awaited by the task that takes over (Python 3.12's eager tasks do
    the same; Rapport supports 3.11). Exceptions of the first step propagate to the caller.
    """
    try:
        yielded = coro.send(None)
    except StopIteration:
        return None
    return _resume(coro, yielded)


@types.coroutine
def _resume(coro: Coroutine[Any, Any, None], yielded: Any) -> Generator[Any, Any, None]:
    """Hand on what `coro` waits for to the awaiting task, and its answers back (PEP 380)."""
    while True:
        try:
            value = yield yielded
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # cancellation or an error thrown in by the task
            try:
                yielded = coro.throw(exc)
            except StopIteration:
                return
        else:
            try:
                yielded = coro.send(value)
            except StopIteration:
                return


class SocketFeed:
    """The frames one socket is to send, in order, with no loss short of closing it."""

    __slots__ = (
        "_after",
        "_busy",
        "_closing",
        "_last_sent",
        "_limit",
        "_queue",
        "_send",
        "_unfinished",
        "_wake",
    )

    def __init__(self, limit: int = QUEUE_LIMIT) -> None:
        self._limit = limit
        self._queue: deque[tuple[int, str]] = deque()
        self._wake = asyncio.Event()
        self._send: Send | None = None  # set while the pump runs: the socket is live
        self._busy = False  # the pump is sending (its own frame or a direct send it took over)
        self._unfinished: Awaitable[None] | None = None
        self._closing = False
        self._last_sent = time.monotonic()
        self._after = 0  # the last number the replay sent; set by the pump

    def put(self, seq: int, text: str) -> bool:
        """Send or queue one frame; False when the socket is too far behind to take it."""
        if self._closing:
            return True  # the socket is closing; its browser resumes from the log
        if self._send is not None and not self._busy and not self._queue:
            if seq > self._after or seq == EPHEMERAL_SEQ:  # the replay may have sent it already
                self._send_now(self._send, text)
            return True
        if len(self._queue) >= self._limit:
            return False
        self._queue.append((seq, text))
        self._wake.set()
        return True

    def close(self) -> None:
        """Have the pump close the socket (too slow, or the node stopping); drop what is queued."""
        self._closing = True
        self._queue.clear()
        self._wake.set()

    def pending(self) -> list[tuple[int, str]]:
        """What waits in the queue (for tests and diagnostics)."""
        return list(self._queue)

    @property
    def closing(self) -> bool:
        return self._closing

    def _send_now(self, send: Send, text: str) -> None:
        self._last_sent = time.monotonic()
        try:
            rest = run_until_suspended(send(text))
        except Exception:  # the socket is gone: its own tasks notice and end; stop writing to it
            self.close()
            return
        if rest is not None:  # the transport pushed back: the pump finishes this send first
            self._busy = True
            self._unfinished = rest
            self._wake.set()

    async def pump(
        self, send: Send, *, after: int, close: Callable[[], Awaitable[None]], ping_every: float
    ) -> None:
        """Send what was queued, then let `put` write directly; ping a quiet socket; end on close.

        Numbered frames up to `after` were already sent by the replay and are skipped.
        """
        self._after = after
        self._send = send
        try:
            while True:
                if self._unfinished is not None:
                    await self._unfinished
                    self._unfinished = None
                elif self._closing:
                    await close()
                    return
                elif self._queue:
                    seq, text = self._queue.popleft()
                    if seq > after or seq == EPHEMERAL_SEQ:
                        self._busy = True
                        self._last_sent = time.monotonic()
                        await send(text)
                elif await self._quiet_for(ping_every):
                    self._busy = True
                    self._last_sent = time.monotonic()
                    await send(PING_FRAME)
                self._busy = False
        finally:
            self._send = None
            self._unfinished = None  # a send cut short by cancellation; the socket is going

    async def _quiet_for(self, seconds: float) -> bool:
        """Wait for work; True when nothing was sent for `seconds` (time for a keep-alive)."""
        self._wake.clear()
        remaining = self._last_sent + seconds - time.monotonic()
        if remaining <= 0:
            return True
        try:
            async with asyncio.timeout(remaining):
                await self._wake.wait()
        except TimeoutError:
            return time.monotonic() - self._last_sent >= seconds
        return False
