"""A returning sender's contact is locked before its identity, as a merge locks them."""

import asyncio

import asyncpg
import pytest
from sqlalchemy import select

from rapport.domain import events
from rapport.domain.contacts.actions import resolve_sender
from rapport.domain.contacts.models import Contact, Identity, IdentityKind, Verification
from rapport.domain.ports import IdentityClaim
from rapport.lib.clock import utcnow


async def _waiting_on_a_lock(admin: asyncpg.Connection, pid_of_others: set[int]) -> bool:
    rows = await admin.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock'"
    )
    return any(row["pid"] not in pid_of_others for row in rows)


async def test_marking_a_returning_sender_locks_the_contact_before_the_identity(
    services, factory, settings, backend
):
    if backend != "postgres":
        pytest.skip("SQLite serialises writers: there are no row locks to order")
    account = await factory.account()
    claims = (IdentityClaim(IdentityKind.phone, "+34600000001", Verification.provider),)
    async with services.session() as session:
        first = await resolve_sender(
            session, account=account, claims=claims, name="Ana", active_at=utcnow()
        )
        await events.commit(session)
    async with services.read_session() as session:
        identity_id = await session.scalar(select(Identity.id))
    url = settings.database_url.replace("+asyncpg", "")
    holder, probe = await asyncpg.connect(url), await asyncpg.connect(url)
    try:
        # Another transaction holds the identity, as a merge does after locking the contact.
        holder_tx = holder.transaction()
        await holder_tx.start()
        await holder.execute("SELECT id FROM identities WHERE id = $1 FOR UPDATE", identity_id)
        marked_at = utcnow()

        async def returning_message() -> None:
            async with services.session() as session:
                await resolve_sender(
                    session, account=account, claims=claims, name="Ana", active_at=marked_at
                )
                await events.commit(session)

        marking = asyncio.ensure_future(returning_message())
        others = {holder.get_server_pid(), probe.get_server_pid()}
        for _ in range(500):
            if await _waiting_on_a_lock(probe, others):
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("the returning sender's statement never waited for the identity")
        # It waits for the identity while holding the contact: the contact was locked first.
        with pytest.raises(asyncpg.LockNotAvailableError):
            await probe.execute(
                "SELECT id FROM contacts WHERE id = $1 FOR UPDATE NOWAIT", first.contact_id
            )
        await holder_tx.rollback()
        await asyncio.wait_for(marking, 10)
    finally:
        await holder.close()
        await probe.close()
    async with services.read_session() as session:
        contact = await session.get(Contact, first.contact_id)
        identity = await session.get(Identity, identity_id)
    assert contact.last_activity_at == marked_at
    assert identity.last_seen_at >= marked_at
