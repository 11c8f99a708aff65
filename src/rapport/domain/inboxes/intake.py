"""Where verified provider calls are kept before anything else, written together under load.

A webhook is acknowledged only once its call is committed (`store_inbound_calls`). A call that
finds no write in flight is written at once, alone; calls arriving while a write is in flight
wait for it, and are then written together: one statement on PostgreSQL, one transaction on
SQLite, one commit (`lib.coalesce`). The acknowledgement waits at most one write longer than
it would have alone, and under a burst the process pays a round trip and a commit per batch
instead of per call. A call that fails a batch fails alone: the others are written again one
by one.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from sqlalchemy.ext.asyncio import AsyncSession

from rapport.db.engine import one_statement_alone
from rapport.domain import events
from rapport.domain.inboxes.actions import InboundCall, Kept, store_inbound_calls
from rapport.domain.inboxes.models import Inbox
from rapport.lib.coalesce import Coalescer

# Calls written in one statement at most; more wait for the next.
MOST_AT_ONCE = 256


class Intake:
    """`await intake.store(inbox, call)`: what became of the call, once committed (`Kept`)."""

    def __init__(self, sessions: Callable[[], AbstractAsyncContextManager[AsyncSession]]) -> None:
        self._sessions = sessions
        self._writes: Coalescer[tuple[Inbox, InboundCall], Kept] = Coalescer(
            self._write, most=MOST_AT_ONCE
        )

    async def store(self, inbox: Inbox, call: InboundCall) -> Kept:
        return await self._writes((inbox, call))

    async def _write(self, items: list[tuple[Inbox, InboundCall]]) -> list[Kept]:
        # Calls verified against the same copy of an inbox go in one statement.
        groups: dict[int, tuple[Inbox, list[int]]] = {}
        for index, (inbox, _call) in enumerate(items):
            groups.setdefault(id(inbox), (inbox, []))[1].append(index)
        answers = [Kept.INBOX_CHANGED] * len(items)
        async with self._sessions() as session:
            await one_statement_alone(session)
            for inbox, indexes in groups.values():
                stored = await store_inbound_calls(
                    session, inbox=inbox, calls=[items[index][1] for index in indexes]
                )
                for index, answer in zip(indexes, stored, strict=True):
                    answers[index] = answer
            await events.commit(session)
        return answers
