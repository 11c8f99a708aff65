"""The outbox relay: claim due jobs, run their handlers, retry with backoff, never lose one.

Handlers complete their own job inside their own transaction (so "done" and the job's effects
commit together). An exception leaves the job to be retried with backoff; a worker that dies
mid-job leaves its lease to expire and another worker takes the job.
"""

from __future__ import annotations

import asyncio
import os
import socket
import traceback
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import structlog
from prometheus_client import Counter, Histogram

from rapport.db import outbox
from rapport.db.engine import database_unavailable
from rapport.db.outbox import ClaimedJob
from rapport.domain import events
from rapport.services import Services
from rapport.workers.inbound import RetryLater
from rapport.workers.jobs import BATCHES, JOBS

log = structlog.get_logger(__name__)

JOBS_DONE = Counter("rapport_jobs_total", "Outbox jobs run", ["kind", "outcome"])
# How often a worker tries again to record a failed attempt while the database is away.
RECORD_RETRY_SECONDS = 0.5

JOB_SECONDS = Histogram("rapport_job_seconds", "Time to run one outbox job", ["kind"])


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    def __init__(
        self,
        services: Services,
        *,
        worker_id: str | None = None,
        concurrency: int | None = None,
        idle_poll_seconds: float = 0.5,
    ) -> None:
        self._services = services
        self.worker_id = worker_id or default_worker_id()
        self._concurrency = concurrency or services.settings.worker_concurrency
        self._idle = idle_poll_seconds
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        services.bus.on_wake(self._wake.set)

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set; sleeps when idle until woken by a commit or the poll.

        A claim that took fewer jobs than it could found nothing else due, so the worker polls
        again only when woken (a commit queued a job, here or on another node, since the wake
        flag was cleared before that claim) or after the idle interval (jobs backing off, an
        expired lease, a wake lost with Redis). A full batch goes straight back for more."""
        log.info("worker.started", worker_id=self.worker_id, concurrency=self._concurrency)
        self._stopping = stop
        while not stop.is_set():
            self._wake.clear()
            try:
                done = await self.run_once()
            except Exception as exc:  # the database may be restarting: wait and try again
                log.warning("worker.claim_failed", error=str(exc))
                self._wake.clear()
                done = 0
            if done < self._concurrency:
                await self._idle_until_woken(stop)
        log.info("worker.stopped", worker_id=self.worker_id)

    async def _idle_until_woken(self, stop: asyncio.Event) -> None:
        """Return when woken (at once if a wake came during the last claim), stopped, or idle."""
        if self._wake.is_set():
            return
        waiters = [
            asyncio.ensure_future(self._wake.wait()),
            asyncio.ensure_future(stop.wait()),
        ]
        await asyncio.wait(waiters, timeout=self._idle, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()

    async def run_once(self) -> int:
        """Claim one batch and run it; returns how many jobs were taken."""
        async with self._services.session() as session:
            jobs = await outbox.claim(
                session,
                worker_id=self.worker_id,
                limit=self._concurrency,
                lease_seconds=self._services.settings.outbox_lease_seconds,
            )
        batches: dict[str, list[ClaimedJob]] = defaultdict(list)
        runs = []
        for job in jobs:
            if job.kind in BATCHES:
                batches[job.kind].append(job)
            else:
                runs.append(self._run(job))
        runs += [self._run_batch(kind, group) for kind, group in batches.items()]
        await asyncio.gather(*runs)
        return len(jobs)

    async def drain(self, *, max_rounds: int = 100) -> int:
        """Run until no job is due (tests and the demo seed use this)."""
        total = 0
        for _ in range(max_rounds):
            done = await self.run_once()
            total += done
            if done == 0:
                break
        return total

    async def _run_batch(self, kind: str, jobs: Sequence[ClaimedJob]) -> None:
        """Several jobs of one kind in one transaction; each on its own if that rolled back."""
        if len(jobs) > 1:
            with JOB_SECONDS.labels(f"{kind}[batch]").time():
                done = await BATCHES[kind](self._services, jobs)
            if done:
                JOBS_DONE.labels(kind, "ok").inc(len(jobs))
                return
        await asyncio.gather(*(self._run(job) for job in jobs))

    async def _run(self, job: ClaimedJob) -> None:
        handler = JOBS.get(job.kind)
        # Our lease on the job started at the claim, just before this.
        lease_ends = (
            asyncio.get_running_loop().time() + self._services.settings.outbox_lease_seconds
        )
        with JOB_SECONDS.labels(job.kind).time():
            try:
                if handler is None:
                    raise LookupError(f"no handler for job kind {job.kind!r}")
                await handler(self._services, job)
            except RetryLater as exc:
                await self._retry(job, str(exc), exc.delay, lease_ends)
                JOBS_DONE.labels(job.kind, "retry").inc()
            except Exception as exc:
                log.error(
                    "worker.job_failed",
                    job_id=job.id,
                    kind=job.kind,
                    attempts=job.attempts,
                    error=f"{type(exc).__name__}: {exc}",
                )
                error = "".join(traceback.format_exception_only(exc)).strip()
                await self._retry(job, error, None, lease_ends)
                JOBS_DONE.labels(job.kind, "error").inc()
            else:
                JOBS_DONE.labels(job.kind, "ok").inc()

    async def _retry(
        self, job: ClaimedJob, error: str, delay: float | None, lease_ends: float
    ) -> None:
        """Record the failed attempt and when to try again.

        The failure is often the database going away (a restart, a failover), and then this
        write fails too. Left alone, the job would wait for its lease to run out (a minute by
        default) before anyone ran it again; instead we keep trying to record the retry while
        the lease is still ours, so the job comes back a second after the database does.
        Shortly before the lease ends (or on shutdown) we give up: the lease brings it back.
        """
        loop = asyncio.get_running_loop()
        give_up_at = lease_ends - min(5.0, self._services.settings.outbox_lease_seconds / 4)
        while True:
            try:
                async with self._services.session() as session:
                    dead = await outbox.retry_later(
                        session,
                        job_id=job.id,
                        attempts=job.attempts,
                        error=error,
                        max_attempts=self._services.settings.outbox_max_attempts,
                        delay_seconds=delay,
                    )
                    await events.commit(session)
            except Exception as exc:
                # Only an unreachable database is worth waiting out; any other error would
                # repeat every time, so the lease brings the job back instead.
                if (
                    not database_unavailable(exc)
                    or loop.time() + RECORD_RETRY_SECONDS >= give_up_at
                    or self._stopping.is_set()
                ):
                    log.warning("worker.retry_not_recorded", job_id=job.id, error=str(exc))
                    return
                await asyncio.sleep(RECORD_RETRY_SECONDS)
                continue
            if dead:
                log.error("worker.job_dead", job_id=job.id, kind=job.kind)
            return


@asynccontextmanager
async def worker_in_background(services: Services) -> AsyncIterator[Worker]:
    """Run a worker inside this process (`rapport demo`, `rapport serve --with-worker`)."""
    stop = asyncio.Event()
    worker = Worker(services)
    task = asyncio.create_task(worker.run(stop), name="worker")
    try:
        yield worker
    finally:
        stop.set()
        await task
