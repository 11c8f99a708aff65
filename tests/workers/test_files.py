"""Erasing a contact removes its attachments' stored files, but only once the erasure committed."""

import json

import pytest
from sqlalchemy import func, select

from rapport.db.outbox import OutboxJob
from rapport.domain import events
from rapport.domain.agents.models import Role
from rapport.domain.contacts import actions, merge
from rapport.domain.contacts.models import Contact
from rapport.domain.conversations.actions import StoredFile
from rapport.domain.conversations.models import Attachment
from tests.support.outbound import reply


async def _stored(services, name, data):
    key = await services.files.save(data, suffix=".bin")
    return StoredFile(name, "application/octet-stream", len(data), key)


def _on_disk(services, *files):
    return [(services.settings.storage_dir / f.storage_key).exists() for f in files]


async def _jobs(services):
    async with services.read_session() as session:
        return list(
            await session.scalars(
                select(OutboxJob).where(OutboxJob.kind == actions.DELETE_FILES_JOB)
            )
        )


async def _erase(services, contact_id, actor):
    async with services.session() as session:
        contact = await session.get(Contact, contact_id)
        await actions.delete_contact(session, contact=contact, actor=actor)
        await events.commit(session)


@pytest.fixture
async def history(services, factory):
    """A customer who sent a photo and got a file back, a duplicate merged into them that sent
    a document, and another customer with a file of their own."""
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    supervisor = await factory.user(account, role=Role.supervisor)
    photo = await _stored(services, "photo.jpg", b"\xff\xd8 a photo")
    received = await factory.receive(account, inbox, external_id="ana", files=[photo])
    contact_id = received.conversation.contact_id
    await reply(
        services,
        factory,
        inbox,
        "Your invoice",
        conversation_id=received.conversation.id,
        files=[("invoice.pdf", "application/pdf", b"%PDF-1.4 invoice")],
    )
    document = await _stored(services, "id.png", b"\x89PNG a document")
    duplicate = await factory.receive(account, inbox, external_id="ana-2", files=[document])
    async with services.session() as session:
        await merge.merge_contacts(
            session,
            account_id=account.id,
            survivor_id=contact_id,
            merged_id=duplicate.conversation.contact_id,
            actor_user_id=supervisor.id,
        )
        await events.commit(session)
    other = await _stored(services, "other.txt", b"someone else's")
    await factory.receive(account, inbox, external_id="bo", files=[other])
    async with services.read_session() as session:
        sent = await session.scalar(select(Attachment).where(Attachment.filename == "invoice.pdf"))
    return contact_id, supervisor, [photo, sent, document], other


async def test_erasing_a_contact_removes_its_files_after_the_commit(services, worker, history):
    contact_id, supervisor, theirs, other = history
    assert _on_disk(services, *theirs, other) == [True] * 4
    await _erase(services, contact_id, supervisor)
    # Committed, not yet run: the files are still there, the job waits in the outbox.
    assert _on_disk(services, *theirs) == [True] * 3
    [job] = await _jobs(services)
    assert json.loads(json.dumps(job.payload)) == job.payload
    assert sorted(job.payload["keys"]) == sorted(f.storage_key for f in theirs)
    await worker.drain()
    assert _on_disk(services, *theirs) == [False] * 3
    assert _on_disk(services, other) == [True]  # another customer's file stays
    assert await _jobs(services) == []


async def test_a_rolled_back_erasure_keeps_the_files(services, worker, history):
    contact_id, supervisor, theirs, _other = history
    with pytest.raises(RuntimeError):
        async with services.session() as session:
            contact = await session.get(Contact, contact_id)
            await actions.delete_contact(session, contact=contact, actor=supervisor)
            raise RuntimeError("the erasure fails before its commit")
    await worker.drain()
    assert await _jobs(services) == []
    assert _on_disk(services, *theirs) == [True] * 3
    async with services.read_session() as session:
        assert await session.get(Contact, contact_id) is not None


async def test_a_file_already_gone_does_not_fail_the_erasure(services, worker, history):
    contact_id, supervisor, theirs, _other = history
    (services.settings.storage_dir / theirs[0].storage_key).unlink()
    await _erase(services, contact_id, supervisor)
    await worker.drain()
    assert _on_disk(services, *theirs) == [False] * 3
    assert await _jobs(services) == []  # finished, not waiting for a retry


async def test_a_file_an_attachment_still_names_is_kept(services, factory, worker, history):
    """Stored files are never shared today; should one ever be, erasure must not break it."""
    contact_id, supervisor, theirs, _other = history
    globex = await factory.account("Globex")
    inbox = await factory.api_inbox(globex)
    await factory.receive(globex, inbox, external_id="cy", files=[theirs[0]])
    await _erase(services, contact_id, supervisor)
    await worker.drain()
    assert _on_disk(services, *theirs) == [True, False, False]
    async with services.read_session() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxJob)) == 0
