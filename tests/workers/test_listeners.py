"""The listeners' host: leases so one worker reads a polled source, positions moved atomically."""

import pytest
from sqlalchemy import func, select, update

from rapport.channels.base import CursorMove, LeaseLost
from rapport.domain.inboxes.models import InboundEvent
from rapport.domain.intake.models import IntakeCursor
from rapport.lib.clock import utcnow
from rapport.workers.listeners import Intake
from tests.support.mail import email_inbox

SOURCE = "imap:box@mail.example:993/INBOX"


async def test_one_worker_reads_a_source_at_a_time(services, factory):
    inbox = await email_inbox(factory, await factory.account())
    first, second = Intake(services, owner="worker-a"), Intake(services, owner="worker-b")
    cursor = await first.claim(inbox.id, SOURCE)
    assert cursor is not None and (cursor.epoch, cursor.position) == (None, 0)
    assert await second.claim(inbox.id, SOURCE) is None
    assert await first.claim(inbox.id, SOURCE) is not None  # renewing is fine
    with pytest.raises(LeaseLost):
        await second.store_position(inbox.id, CursorMove(SOURCE, 7, 3))
    await first.release(inbox.id, SOURCE)
    assert await second.claim(inbox.id, SOURCE) is not None


async def test_an_expired_lease_is_taken_over_and_the_old_reader_stops(services, factory):
    inbox = await email_inbox(factory, await factory.account())
    dead, alive = Intake(services, owner="dead"), Intake(services, owner="alive")
    await dead.claim(inbox.id, SOURCE)
    async with services.session() as session:
        await session.execute(update(IntakeCursor).values(lease_expires_at=utcnow()))
        await session.commit()
    assert await alive.claim(inbox.id, SOURCE) is not None
    with pytest.raises(LeaseLost):  # the old reader's next store is refused, nothing is kept
        await dead.store(
            inbox.id,
            dedupe_key="mid:a@b",
            body=b"x",
            content_type="message/rfc822",
            meta={},
            cursor=CursorMove(SOURCE, 7, 1),
        )
    async with services.read_session() as session:
        assert await session.scalar(select(func.count()).select_from(InboundEvent)) == 0


async def test_a_stored_mail_and_its_position_commit_together(services, factory):
    inbox = await email_inbox(factory, await factory.account())
    reader = Intake(services, owner="reader")
    await reader.claim(inbox.id, SOURCE)
    move = CursorMove(SOURCE, 7, 1)
    stored = await reader.store(
        inbox.id,
        dedupe_key="mid:a@b",
        body=b"x",
        content_type="message/rfc822",
        meta={},
        cursor=move,
    )
    again = await reader.store(
        inbox.id,
        dedupe_key="mid:a@b",
        body=b"x",
        content_type="message/rfc822",
        meta={},
        cursor=move,
    )
    assert (stored, again) == (True, False)  # a refetch is a no-op
    cursor = await reader.claim(inbox.id, SOURCE)
    assert (cursor.epoch, cursor.position) == (7, 1) and cursor.updated_at is not None
