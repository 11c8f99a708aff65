"""Job `files.delete`: remove stored files whose attachment rows are gone (an erased contact's).

The job is written in the transaction that deleted the rows, so it runs only once that has
committed, and is not lost if the process dies right after the commit. Deleting is idempotent:
a file already missing is no error, so a job taken again after a crash simply finishes. A key
some attachment row still names is kept: a file is never removed from under a message.
"""

from __future__ import annotations

from sqlalchemy import select

from rapport.db import outbox
from rapport.db.outbox import ClaimedJob
from rapport.domain import events
from rapport.domain.conversations.models import Attachment
from rapport.services import Services


async def delete_files(services: Services, job: ClaimedJob) -> None:
    keys = [str(key) for key in job.payload["keys"]]
    async with services.read_session() as reader:
        named = set(
            await reader.scalars(
                select(Attachment.storage_key).where(Attachment.storage_key.in_(keys))
            )
        )
    for key in keys:
        if key not in named:
            await services.files.delete(key)
    async with services.session() as session:
        await outbox.complete(session, job.id)
        await events.commit(session)
