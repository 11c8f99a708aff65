"""Consent (SMS STOP/START) is recorded on the identity, once per change, as an event."""

from sqlalchemy import select

from rapport.domain import events
from rapport.domain.contacts.actions import record_consent
from rapport.domain.contacts.models import Identity, IdentityKind, Verification
from rapport.domain.events import Event
from rapport.domain.ports import Consent, IdentityClaim

PHONE = IdentityClaim(IdentityKind.phone, "+34 612 34 56 78", Verification.provider)


async def _consent(services, account, consent, keyword):
    async with services.session() as session:
        account = await session.merge(account)
        identity = await record_consent(
            session, account=account, claim=PHONE, consent=consent, channel="sms", keyword=keyword
        )
        await events.commit(session)
        return identity


async def _consent_events(services):
    async with services.read_session() as session:
        rows = await session.scalars(select(Event).where(Event.type == "contact.consent_changed"))
        return [row.data for row in rows]


async def test_stop_then_start_is_recorded_on_the_identity_once_each(services, factory):
    account = await factory.account(default_region="ES")
    inbox = await factory.api_inbox(account)
    await factory.receive(account, inbox, claims=(PHONE,))

    stopped = await _consent(services, account, Consent.opt_out, "STOP")
    assert stopped.opted_out_at is not None and stopped.value == "+34612345678"
    await _consent(services, account, Consent.opt_out, "BAJA")  # already out: nothing new
    started = await _consent(services, account, Consent.opt_in, "START")
    assert started.opted_out_at is None

    recorded = await _consent_events(services)
    assert [(e["opted_out"], e["keyword"]) for e in recorded] == [(True, "STOP"), (False, "START")]
    assert all(e["contact_id"] == stopped.contact_id for e in recorded)


async def test_an_unknown_identity_changes_nothing(services, factory):
    account = await factory.account()
    assert await _consent(services, account, Consent.opt_out, "STOP") is None
    async with services.read_session() as session:
        assert (await session.scalar(select(Identity))) is None
    assert await _consent_events(services) == []
