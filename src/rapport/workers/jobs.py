"""The one explicit map from outbox job kind to handler. Nothing is discovered by name."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from rapport.db.outbox import ClaimedJob
from rapport.domain.contacts.actions import DELETE_FILES_JOB
from rapport.domain.conversations.actions import DELIVER_JOB
from rapport.domain.inboxes.actions import PROCESS_INBOUND_JOB
from rapport.domain.webhooks.actions import WEBHOOK_JOB
from rapport.services import Services
from rapport.workers.delivery import deliver_message
from rapport.workers.files import delete_files
from rapport.workers.inbound import process_inbound, process_inbound_batch
from rapport.workers.webhooks import deliver_webhook

Handler = Callable[[Services, ClaimedJob], Awaitable[None]]

JOBS: dict[str, Handler] = {
    PROCESS_INBOUND_JOB: process_inbound,
    DELIVER_JOB: deliver_message,
    WEBHOOK_JOB: deliver_webhook,
    DELETE_FILES_JOB: delete_files,
}

# Kinds whose claimed jobs may run together in one transaction. The handler returns False
# when it rolled back, and the relay then runs each job with its own handler above.
BatchHandler = Callable[[Services, Sequence[ClaimedJob]], Awaitable[bool]]

BATCHES: dict[str, BatchHandler] = {
    PROCESS_INBOUND_JOB: process_inbound_batch,
}
