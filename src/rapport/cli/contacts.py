"""`rapport contacts suggest-merges`: look for duplicate contacts across a whole account.

Suggestions are made as contacts are created and edited; this rescan catches what those
moments could not see (contacts imported before, or older than the rules).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from rapport.domain import events
from rapport.domain import models as _every_table  # noqa: F401 - so every foreign key resolves
from rapport.domain.accounts.models import Account
from rapport.domain.contacts.models import Contact
from rapport.domain.contacts.suggestions import scan_contact
from rapport.services import Services, build_services
from rapport.settings import Settings

# Contacts scanned per transaction: each batch commits, so a long rescan holds no lock for long.
BATCH = 200


@dataclass(frozen=True)
class Rescan:
    accounts: int
    contacts: int
    suggestions: int


async def suggest_merges_everywhere(settings: Settings, account_name: str | None) -> Rescan:
    """Scan every contact (of one account, when named) for likely duplicates."""
    services = build_services(settings, with_hub=False)
    await services.start()
    try:
        async with services.read_session() as session:
            query = select(Account.id).order_by(Account.id)
            if account_name:
                query = query.where(Account.name == account_name)
            account_ids = list(await session.scalars(query))
        contacts = found = 0
        for account_id in account_ids:
            scanned, suggested = await _scan_account(services, account_id)
            contacts += scanned
            found += suggested
        return Rescan(len(account_ids), contacts, found)
    finally:
        await services.stop()


async def _scan_account(services: Services, account_id: int) -> tuple[int, int]:
    after, scanned, pending = 0, 0, set[int]()
    while True:
        # The app's own sessions: suggestions reach webhook subscribers and open screens.
        async with services.session() as session:
            batch = list(
                await session.scalars(
                    select(Contact)
                    .where(
                        Contact.account_id == account_id,
                        Contact.merged_into_id.is_(None),
                        Contact.id > after,
                    )
                    .order_by(Contact.id)
                    .limit(BATCH)
                )
            )
            for contact in batch:
                pending.update(s.id for s in await scan_contact(session, contact=contact))
            await events.commit(session)
        if not batch:
            return scanned, len(pending)
        scanned += len(batch)
        after = batch[-1].id
