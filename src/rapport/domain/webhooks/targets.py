"""Which subscriptions a commit's events go to, without reading them on every commit.

`fan_out` runs in every transaction that commits events, and most accounts have no
subscription: reading `webhook_subscriptions` each time was a statement per commit that
almost always found nothing. A process instead remembers, per account, the active
subscriptions *as of a committed event number*, and trusts that memory only while it provably
still holds, with no message between processes:

- An account's event numbers are handed out under the counter row's lock, held to the commit,
  without gaps and in commit order (`events._take_numbers`). The fan-out reads after taking
  its numbers (at READ COMMITTED each statement sees everything committed before it; SQLite's
  writer holds the write lock from BEGIN IMMEDIATE), so a transaction whose first number is
  `n` sees every change committed under the numbers before `n`, and none under a later one.
- Every change to a subscription records `WebhookSubscriptionChanged` in its own transaction
  (`actions.py` is the only place they change), so it takes a number of the account.
- So when this process remembers the subscriptions as of number `n - 1` and the transaction
  at hand takes `n` onwards, nothing changed them in between: neither here nor in any other
  process, whose commit would have taken `n` first. Any other first number (another process
  or session committed for the account meanwhile) reads them again.

What is remembered is written after the commit only (a transaction rolled back after the
fan-out gives its numbers back, and another may commit under them), and only by commits whose
events did not change a subscription themselves. Entries also expire after `MAX_AGE_SECONDS`,
a bound for changes made behind the application's back (SQL typed by hand, a restored backup).
"""

from __future__ import annotations

import time
import weakref
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.domain import events
from rapport.domain.webhooks.models import WebhookSubscription

MAX_AGE_SECONDS = 30.0
_PENDING_KEY = "rapport.webhook_targets"
_HOOKED_KEY = "rapport.webhook_targets_hooked"


@dataclass(frozen=True)
class Target:
    """An active subscription, as much of it as the fan-out needs."""

    id: int
    account_id: int
    event_types: frozenset[str]


@dataclass(frozen=True)
class _Known:
    seq: int  # the account's subscriptions as of this committed event number
    targets: tuple[Target, ...]
    read_at: float  # when they were read from the database (monotonic clock)


# One memory per database (engine): tests and tools open several in one process.
_MEMORY: weakref.WeakKeyDictionary[Any, dict[int, _Known]] = weakref.WeakKeyDictionary()


async def targets_for(
    session: AsyncSession, published: Sequence[events.PublishedEvent]
) -> dict[int, tuple[Target, ...]]:
    """The active subscriptions of every account in `published`, by account id."""
    memory = _memory(session)
    now = time.monotonic()
    by_account: dict[int, list[events.PublishedEvent]] = defaultdict(list)
    for item in published:
        by_account[item.account_id].append(item)
    known: dict[int, _Known] = {}
    for account_id, items in by_account.items():
        entry = memory.get(account_id)
        if (
            entry is not None
            and entry.seq == items[0].seq - 1
            and now - entry.read_at < MAX_AGE_SECONDS
            and not _changes_subscriptions(items)
        ):
            known[account_id] = entry
    unknown = [account_id for account_id in by_account if account_id not in known]
    read = await _read(session, unknown) if unknown else {}
    found = {account_id: entry.targets for account_id, entry in known.items()} | read
    # Remember, after the commit, what no event of this commit changed.
    remembered = {
        account_id: _Known(
            items[-1].seq,
            found[account_id],
            known[account_id].read_at if account_id in known else now,
        )
        for account_id, items in by_account.items()
        if not _changes_subscriptions(items)
    }
    _remember_after_commit(session, memory, published, remembered)
    return found


def _changes_subscriptions(items: Sequence[events.PublishedEvent]) -> bool:
    return any(isinstance(item.event, events.WebhookSubscriptionChanged) for item in items)


async def _read(session: AsyncSession, account_ids: list[int]) -> dict[int, tuple[Target, ...]]:
    rows = await session.execute(
        select(
            WebhookSubscription.id, WebhookSubscription.account_id, WebhookSubscription.event_types
        )
        .where(WebhookSubscription.account_id.in_(account_ids), WebhookSubscription.active)
        .order_by(WebhookSubscription.id)
    )
    targets: dict[int, list[Target]] = {account_id: [] for account_id in account_ids}
    for row_id, account_id, event_types in rows:
        targets[account_id].append(Target(row_id, account_id, frozenset(event_types)))
    return {account_id: tuple(found) for account_id, found in targets.items()}


def _memory(session: AsyncSession) -> dict[int, _Known]:
    engine = session.get_bind()
    memory = _MEMORY.get(engine)
    if memory is None:
        memory = _MEMORY[engine] = {}
    return memory


def _remember_after_commit(
    session: AsyncSession,
    memory: dict[int, _Known],
    published: Sequence[events.PublishedEvent],
    remembered: dict[int, _Known],
) -> None:
    """Keep `remembered` once this very commit (the one that numbered `published`) succeeded."""
    if not session.info.get(_HOOKED_KEY):
        session.info[_HOOKED_KEY] = True

        async def remember(committed: Sequence[events.PublishedEvent], _outbox: bool) -> None:
            pending = session.info.pop(_PENDING_KEY, None)
            if pending is not None and pending[0] is committed:
                memory.update(pending[1])

        events.add_after_commit_hook(session, remember)
    session.info[_PENDING_KEY] = (published, remembered)
