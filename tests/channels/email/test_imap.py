"""IMAP polling against a real Dovecot: each mail read once, IDLE, restarts, UIDVALIDITY changes."""

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select
from structlog.testing import capture_logs

from rapport.domain.conversations.models import Message
from rapport.domain.inboxes.models import InboundEvent
from rapport.domain.intake.models import IntakeCursor
from rapport.workers.listeners import listeners_in_background
from tests.conftest import make_settings, need_service
from tests.support.dovecot import PASSWORD, Dovecot, dovecot_binary, start_dovecot
from tests.support.live import eventually
from tests.support.mail import crlf, email_inbox, fixture


@pytest.fixture(scope="module")
def dovecot():
    need_service("Dovecot (make system-deps)", dovecot_binary() is not None)
    # The test server drops privileges to Debian's dovenull user, which only root can do.
    need_service("Dovecot as root", os.geteuid() == 0)
    root = Path(tempfile.mkdtemp(prefix="rapport-dovecot-"))
    server = start_dovecot(root)
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def settings(db_url, tmp_path):
    return make_settings(db_url, tmp_path, intake_refresh_seconds=0.2)


async def _imap_inbox(factory, dovecot: Dovecot, **config):
    user = f"box-{uuid.uuid4().hex[:8]}@support.example.com"
    account = await factory.account()
    values = {
        "imap_host": dovecot.host,
        "imap_port": dovecot.port,
        "imap_security": "none",
        "imap_username": user,
        "imap_password": PASSWORD,
        **config,
    }
    inbox = await email_inbox(factory, account, **values)
    return inbox, user


async def _stored(services, inbox_id):
    async with services.read_session() as session:
        return list(
            await session.scalars(
                select(InboundEvent.dedupe_key)
                .where(InboundEvent.inbox_id == inbox_id)
                .order_by(InboundEvent.id)
            )
        )


async def _count_at_least(services, inbox_id, n):
    stored = await _stored(services, inbox_id)
    assert len(stored) >= n, stored
    return stored


async def _cursor(services, inbox_id):
    async with services.read_session() as session:
        return await session.scalar(select(IntakeCursor).where(IntakeCursor.inbox_id == inbox_id))


async def test_each_mail_is_read_once_across_idle_and_restarts(services, factory, worker, dovecot):
    inbox, user = await _imap_inbox(factory, dovecot)
    await dovecot.append(user, crlf(fixture("plain_utf8.eml")))
    await dovecot.append(user, crlf(fixture("windows1252_body.eml")))
    async with listeners_in_background(services):
        await eventually(lambda: _count_at_least(services, inbox.id, 2))
        # New mail while connected arrives through IDLE, without waiting for a poll.
        await dovecot.append(user, crlf(fixture("spanish_quoting.eml")))
        await eventually(lambda: _count_at_least(services, inbox.id, 3))
    async with listeners_in_background(services):  # a restart (another worker id) resumes
        await dovecot.append(user, crlf(fixture("missing_message_id.eml")))
        await eventually(lambda: _count_at_least(services, inbox.id, 4))
    stored = await _stored(services, inbox.id)
    assert len(stored) == len(set(stored)) == 4
    cursor = await _cursor(services, inbox.id)
    assert cursor.position == 4 and cursor.epoch and cursor.lease_owner is None
    await worker.drain()
    async with services.read_session() as session:
        count = await session.scalar(select(func.count()).select_from(Message))
    assert count == 4
    # Rapport peeks: the mail is still unread for the people who use the mailbox.
    imap = await dovecot.client(user)
    await imap.select("INBOX")
    unseen = await imap.search("UNSEEN")
    await imap.logout()
    assert unseen.lines[0].split() == [b"1", b"2", b"3", b"4"]


async def test_a_uidvalidity_change_rescans_without_duplicates_or_gaps(services, factory, dovecot):
    inbox, user = await _imap_inbox(factory, dovecot)
    await dovecot.append(user, crlf(fixture("plain_utf8.eml")))
    await dovecot.append(user, crlf(fixture("latin1_encoded_subject.eml")))
    async with listeners_in_background(services):
        await eventually(lambda: _count_at_least(services, inbox.id, 2))
    before = await _cursor(services, inbox.id)
    # The server forgets its UIDs (a restored backup, a migrated mailbox): new UIDVALIDITY.
    maildir = dovecot.root / "mail" / user
    for state in [maildir / "dovecot-uidlist", *maildir.glob("dovecot.index*")]:
        state.unlink()
    await dovecot.append(user, crlf(fixture("outlook_quoting.eml")))
    async with listeners_in_background(services):
        await eventually(lambda: _count_at_least(services, inbox.id, 3))
        after = await eventually(lambda: _moved(services, inbox.id, before.epoch))
    stored = await _stored(services, inbox.id)
    assert len(stored) == len(set(stored)) == 3
    assert after.position == 3


async def _moved(services, inbox_id, old_epoch):
    cursor = await _cursor(services, inbox_id)
    return cursor if cursor.epoch != old_epoch and cursor.position else None


async def test_without_backfill_only_new_mail_is_read(services, factory, dovecot):
    inbox, user = await _imap_inbox(factory, dovecot, imap_backfill_days=0)
    await dovecot.append(user, crlf(fixture("plain_utf8.eml")))  # was there before Rapport
    async with listeners_in_background(services):
        await eventually(lambda: _cursor(services, inbox.id))
        await eventually(lambda: _epoch_set(services, inbox.id))
        await dovecot.append(user, crlf(fixture("vacation_autoreply.eml")))
        await eventually(lambda: _count_at_least(services, inbox.id, 1))
    assert await _stored(services, inbox.id) == ["mid:ooo-991@baker.example"]


async def _epoch_set(services, inbox_id):
    cursor = await _cursor(services, inbox_id)
    return cursor is not None and cursor.epoch is not None


async def test_a_refused_login_is_logged_and_retried_without_moving(services, factory, dovecot):
    wrong, wrong_user = await _imap_inbox(factory, dovecot, imap_password="wrong")
    await dovecot.append(wrong_user, crlf(fixture("plain_utf8.eml")))

    async def refused():
        return [e for e in logs if e["event"] == "imap.failed" and e["inbox_id"] == wrong.id]

    with capture_logs() as logs:
        async with listeners_in_background(services):
            failures = await eventually(refused)
    assert "refused the username or password" in failures[0]["error"]
    assert PASSWORD not in str(logs) and "wrong" not in failures[0]["error"]
    assert await _stored(services, wrong.id) == []
    assert (await _cursor(services, wrong.id)).epoch is None
