"""Segments: every kind of condition gives the same answer on SQLite and PostgreSQL."""

from datetime import timedelta

import pytest

from rapport.domain import events
from rapport.domain.contacts import actions as contact_actions
from rapport.domain.contacts.models import Contact, IdentityKind, Verification
from rapport.domain.contacts.queries import attribute_definitions
from rapport.domain.conversations import actions as conversation_actions
from rapport.domain.conversations.models import Conversation, Status
from rapport.domain.errors import Conflict, InvalidInput, NotFound
from rapport.domain.ports import IdentityClaim
from rapport.domain.segments import actions
from rapport.domain.segments.filters import parse_filter
from rapport.domain.segments.queries import (
    contact_in_segment,
    filter_contacts,
    filter_count,
    segment_contacts,
    segment_count,
)
from rapport.lib.clock import utcnow


def _email(value):
    return (IdentityClaim(IdentityKind.email, value, Verification.verified),)


def _phone(value):
    return (IdentityClaim(IdentityKind.phone, value, Verification.provider),)


async def _world(services, factory):
    """Four customers: Ana (Pro, 900, Madrid, VIP, phone), Ben (Free, 15, email only, resolved),
    Caro (Enterprise, 5000, Madrid, email + phone, inactive for 60 days), Dan (no attributes)."""
    account = await factory.account(default_region="ES")
    agent = await factory.user(account)
    inbox = await factory.api_inbox(account)
    people = {
        "Ana": await factory.receive(account, inbox, name="Ana", claims=_phone("+34600000001")),
        "Ben": await factory.receive(account, inbox, name="Ben", claims=_email("ben@example.com")),
        "Caro": await factory.receive(
            account,
            inbox,
            name="Caro",
            claims=_email("caro@example.com") + _phone("+34600000003"),
        ),
        "Dan": await factory.receive(account, inbox, name="Dan", external_id="dan"),
    }
    ids = {name: r.conversation.contact_id for name, r in people.items()}
    async with services.session() as session:
        for label, kind, options in [
            ("Plan", "list", "Free\nPro\nEnterprise"),
            ("Spend", "number", ""),
            ("City", "text", ""),
            ("Renews", "date", ""),
        ]:
            await contact_actions.define_attribute(
                session, account_id=account.id, label=label, kind=kind, options=options
            )
        definitions = await attribute_definitions(session, account_id=account.id)
        values = {
            "Ana": {"plan": "Pro", "spend": "900", "city": "Madrid", "renews": "2027-03-01"},
            "Ben": {"plan": "Free", "spend": "15", "city": "Bilbao", "renews": "2026-12-01"},
            "Caro": {"plan": "Enterprise", "spend": "5000", "city": "madrid centro"},
        }
        for name, attrs in values.items():
            contact = await session.get(Contact, ids[name])
            await contact_actions.set_attributes(
                session, contact=contact, definitions=definitions, values=attrs
            )
        vip = await contact_actions.create_label(session, account_id=account.id, name="VIP")
        await contact_actions.add_label(
            session, contact=await session.get(Contact, ids["Ana"]), label=vip
        )
        caro = await session.get(Contact, ids["Caro"])
        caro.last_activity_at = utcnow() - timedelta(days=60)  # seeded directly: a past visit
        ben_conversation = await session.get(Conversation, people["Ben"].conversation.id)
        await conversation_actions.change_status(
            session, conversation=ben_conversation, actor=agent, status=Status.resolved
        )
        await events.commit(session)
    return account, ids, vip


async def _names(session, account, ids, flt):
    by_id = {v: k for k, v in ids.items()}
    contacts = await filter_contacts(
        session, account_id=account.id, flt=parse_filter(flt), limit=100
    )
    assert await filter_count(session, account_id=account.id, flt=parse_filter(flt)) == len(
        contacts
    )
    return sorted(by_id[c.id] for c in contacts)


def _attr(key, op, value=None):
    return {"conditions": [{"type": "attribute", "key": key, "op": op, "value": value}]}


async def test_each_condition_kind(services, factory):
    account, ids, vip = await _world(services, factory)
    cases = [
        ({}, ["Ana", "Ben", "Caro", "Dan"]),
        (_attr("plan", "equals", "Pro"), ["Ana"]),
        (_attr("plan", "not_equals", "Pro"), ["Ben", "Caro", "Dan"]),
        (_attr("city", "equals", "MADRID"), ["Ana"]),
        (_attr("city", "contains", "madr"), ["Ana", "Caro"]),
        (_attr("city", "contains", "%"), []),
        (_attr("spend", "gt", 100), ["Ana", "Caro"]),
        (_attr("spend", "lt", 900), ["Ben"]),
        (_attr("spend", "equals", "900"), ["Ana"]),
        (_attr("renews", "lt", "2027-01-01"), ["Ben"]),
        (_attr("renews", "gt", "2026-12-01"), ["Ana"]),
        (_attr("renews", "is_set"), ["Ana", "Ben"]),
        (_attr("renews", "is_not_set"), ["Caro", "Dan"]),
        ({"conditions": [{"type": "label", "label_id": vip.id}]}, ["Ana"]),
        (
            {"conditions": [{"type": "label", "label_id": vip.id, "op": "has_not"}]},
            ["Ben", "Caro", "Dan"],
        ),
        ({"conditions": [{"type": "identity", "kind": "phone"}]}, ["Ana", "Caro"]),
        ({"conditions": [{"type": "identity", "kind": "email", "op": "has_not"}]}, ["Ana", "Dan"]),
        ({"conditions": [{"type": "last_active", "days": 30}]}, ["Ana", "Ben", "Dan"]),
        ({"conditions": [{"type": "last_active", "op": "not_within", "days": 30}]}, ["Caro"]),
        ({"conditions": [{"type": "open_conversation"}]}, ["Ana", "Caro", "Dan"]),
        ({"conditions": [{"type": "open_conversation", "op": "has_not"}]}, ["Ben"]),
        (
            {
                "match": "all",
                "conditions": [
                    {"type": "identity", "kind": "phone"},
                    {"type": "attribute", "key": "spend", "op": "gt", "value": 1000},
                ],
            },
            ["Caro"],
        ),
        (
            {
                "match": "any",
                "conditions": [
                    {"type": "label", "label_id": vip.id},
                    {"type": "attribute", "key": "plan", "op": "equals", "value": "Free"},
                ],
            },
            ["Ana", "Ben"],
        ),
    ]
    async with services.read_session() as session:
        for flt, expected in cases:
            # Stored filters are checked first, as saving a segment does.
            checked = await actions._checked(session, account.id, flt)
            assert await _names(session, account, ids, checked) == expected, flt


async def test_saved_segments_count_page_and_stay_in_their_account(services, factory):
    account, ids, vip = await _world(services, factory)
    other = await factory.account("Globex")
    async with services.session() as session:
        segment = await actions.create_segment(
            session,
            account_id=account.id,
            name="Madrid",
            filters=_attr("city", "contains", "madrid"),
        )
        with pytest.raises(Conflict):
            await actions.create_segment(
                session, account_id=account.id, name=" Madrid ", filters={}
            )
        await events.commit(session)
        assert await segment_count(session, account_id=account.id, segment_id=segment.id) == 2
        first = await segment_contacts(
            session, account_id=account.id, segment_id=segment.id, limit=1, offset=0
        )
        second = await segment_contacts(
            session, account_id=account.id, segment_id=segment.id, limit=1, offset=1
        )
        assert {first[0].id, second[0].id} == {ids["Ana"], ids["Caro"]}
        for name, inside in [("Ana", True), ("Ben", False)]:
            assert (
                await contact_in_segment(
                    session, account_id=account.id, segment_id=segment.id, contact_id=ids[name]
                )
                is inside
            )
        with pytest.raises(NotFound):
            await segment_count(session, account_id=other.id, segment_id=segment.id)
        await actions.update_segment(
            session,
            segment=segment,
            name="VIPs",
            filters={"conditions": [{"type": "label", "label_id": vip.id}]},
        )
        await events.commit(session)
        assert await segment_count(session, account_id=account.id, segment_id=segment.id) == 1


@pytest.mark.parametrize(
    ("flt", "message"),
    [
        ({"conditions": [{"type": "colour"}]}, "not valid"),
        ({"match": "most"}, "not valid"),
        (_attr("nope", "equals", "x"), "attribute that does not exist"),
        (_attr("plan", "gt", "Pro"), "does not fit"),
        (_attr("spend", "contains", "9"), "does not fit"),
        (_attr("spend", "gt", "lots"), "enter a number"),
        (_attr("renews", "lt", "tomorrow"), "enter a date"),
        (_attr("plan", "equals", "Gold"), "listed options"),
        (_attr("city", "equals", "  "), "needs a value"),
        ({"conditions": [{"type": "label", "label_id": 999999}]}, "label that does not exist"),
        ({"conditions": [{"type": "last_active", "days": 0}]}, "not valid"),
    ],
)
async def test_invalid_filters_are_refused_with_a_reason(services, factory, flt, message):
    account, _ids, _vip = await _world(services, factory)
    async with services.session() as session:
        with pytest.raises(InvalidInput, match=message):
            await actions.create_segment(session, account_id=account.id, name="Bad", filters=flt)
