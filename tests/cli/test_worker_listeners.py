"""`rapport worker` runs the channel listeners: mail sent to its SMTP port becomes a message.

Two workers on one machine share the SMTP port (SO_REUSEPORT), so scaling workers out needs no
port planning.
"""

import asyncio

import pytest
from sqlalchemy import select

from rapport.domain.conversations.models import Message
from rapport.services import build_services
from tests.conftest import TEST_SECRET, make_settings
from tests.support.factory import Factory
from tests.support.live import eventually, free_port
from tests.support.mail import SUPPORT_ADDRESS, email_inbox, fixture, send_mail
from tests.support.processes import RapportProcess, rapport_env, running, wait_for_port

pytestmark = pytest.mark.slow


@pytest.fixture
def backend():
    return "sqlite"


async def test_two_workers_share_the_smtp_port_and_turn_mail_into_messages(db_url, tmp_path):
    port = free_port()
    settings = make_settings(db_url, tmp_path)
    env = rapport_env(
        env="test",
        database_url=db_url,
        secret_key=TEST_SECRET,
        storage_dir=str(tmp_path / "files"),
        smtp_listen_port=str(port),
        intake_refresh_seconds="0.5",
        log_format="json",
    )
    workers = [RapportProcess(["worker"], env, tmp_path / f"worker-{n}.log") for n in range(2)]
    services = build_services(settings, with_hub=False)
    try:
        factory = Factory(services)
        await email_inbox(factory, await factory.account())
        with running(*workers):
            for worker in workers:
                worker.start()
            await asyncio.to_thread(wait_for_port, port)
            await send_mail(
                port, fixture("plain_utf8.eml"), sender="a@b.example", recipients=[SUPPORT_ADDRESS]
            )

            async def delivered():
                async with services.read_session() as session:
                    return await session.scalar(select(Message.content))

            content = await eventually(delivered, within=30)
            assert all(w.process and w.process.poll() is None for w in workers)
        assert "lamp two weeks ago" in content
        logs = "".join((tmp_path / f"worker-{n}.log").read_text() for n in range(2))
        assert "listener.failed" not in logs
    finally:
        await services.stop()
