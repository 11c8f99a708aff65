"""`rapport contacts suggest-merges`: the rescan finds what contact edits could not see."""

import asyncio
import subprocess

from sqlalchemy import select, update

from rapport.domain import events
from rapport.domain.contacts.merge_models import MergeSuggestion
from rapport.domain.contacts.models import Contact
from tests.conftest import TEST_SECRET
from tests.support.processes import RAPPORT, rapport_env


def _run(*args, **env):
    return subprocess.run(
        [RAPPORT, *args],
        env=rapport_env(secret_key=TEST_SECRET, **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_rescan_suggests_similar_contacts_of_one_account(services, factory, db_url):
    account = await factory.account("Acme")
    inbox = await factory.api_inbox(account)
    ids = [
        (await factory.receive(account, inbox, name=name, external_id=name)).conversation.contact_id
        for name in ("Marta Gómez", "Marta Gomez")
    ]
    # Imported with their company already set: no edit ever ran the comparison.
    async with services.session() as session:
        await session.execute(update(Contact).values(company="Hotel Sol"))
        await events.commit(session)

    result = await asyncio.to_thread(
        _run, "contacts", "suggest-merges", "--account", "Acme", database_url=db_url
    )
    assert result.returncode == 0, result.stderr
    assert "scanned 2 contacts in 1 account(s); 1 suggested merge(s)" in result.stdout
    async with services.read_session() as session:
        [suggestion] = (await session.scalars(select(MergeSuggestion))).all()
    assert (suggestion.contact_id, suggestion.other_contact_id) == tuple(ids)

    missing = await asyncio.to_thread(
        _run, "contacts", "suggest-merges", "--account", "Nobody", database_url=db_url
    )
    assert missing.returncode == 1 and "no account named 'Nobody'" in missing.stderr
