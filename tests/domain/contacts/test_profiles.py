"""Custom attributes, labels and custom events on contacts (SQLite and PostgreSQL)."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from rapport.domain import events
from rapport.domain.contacts import actions, merge
from rapport.domain.contacts.models import Contact
from rapport.domain.contacts.queries import (
    attribute_definitions,
    contact_timeline,
    labels_of,
)
from rapport.domain.errors import Conflict, InvalidInput, NotFound
from rapport.domain.events import Event
from rapport.domain.segments import actions as segment_actions


async def _contact(services, factory, account, external_id="c1"):
    inbox = await factory.api_inbox(account)
    received = await factory.receive(account, inbox, external_id=external_id)
    return received.conversation.contact_id


async def _define_all(session, account_id):
    await actions.define_attribute(
        session, account_id=account_id, label="Plan", kind="list", options="Free\nPro\nEnterprise"
    )
    await actions.define_attribute(
        session, account_id=account_id, label="Lifetime value", kind="number"
    )
    await actions.define_attribute(
        session, account_id=account_id, label="Renewal date", kind="date"
    )
    await actions.define_attribute(session, account_id=account_id, label="City", kind="text")


async def test_attribute_values_are_checked_by_type(services, factory):
    account = await factory.account()
    contact_id = await _contact(services, factory, account)
    async with services.session() as session:
        await _define_all(session, account.id)
        definitions = await attribute_definitions(session, account_id=account.id)
        assert [d.key for d in definitions] == ["plan", "lifetime_value", "renewal_date", "city"]
        contact = await session.get(Contact, contact_id)
        changed = await actions.set_attributes(
            session,
            contact=contact,
            definitions=definitions,
            values={
                "plan": "Pro",
                "lifetime_value": "1 250.50",
                "renewal_date": "2027-01-31",
                "city": "  Madrid ",
            },
        )
        assert sorted(changed) == ["city", "lifetime_value", "plan", "renewal_date"]
        await events.commit(session)
    async with services.session() as session:
        contact = await session.get(Contact, contact_id)
        assert contact.attributes == {
            "plan": "Pro",
            "lifetime_value": 1250.5,
            "renewal_date": "2027-01-31",
            "city": "Madrid",
        }
        definitions = await attribute_definitions(session, account_id=account.id)
        bad = [
            ({"lifetime_value": "lots"}, "enter a number, such as 42 or 3.5"),
            ({"renewal_date": "31/01/2027"}, "enter a date as YYYY-MM-DD"),
            ({"plan": "Gold"}, "choose one of the listed options"),
            ({"city": "x" * 501}, "a text attribute holds at most 500 characters"),
            ({"nope": "1"}, "unknown attribute"),
        ]
        for values, message in bad:
            with pytest.raises(InvalidInput, match=message) as caught:
                await actions.set_attributes(
                    session,
                    contact=contact,
                    definitions=definitions,
                    values={"city": "Sevilla", **values},
                )
            assert caught.value.field == next(iter(values))
        # All or nothing: the valid city in the same submission was not applied.
        assert contact.attributes["city"] == "Madrid"
        # An empty value unsets.
        await actions.set_attributes(
            session, contact=contact, definitions=definitions, values={"city": ""}
        )
        await events.commit(session)
        assert "city" not in (await session.get(Contact, contact_id)).attributes
        updates = await session.scalars(
            select(Event).where(Event.type == "contact.updated", Event.contact_id == contact_id)
        )
        assert [e.data["fields"] for e in updates] == [["attributes"], ["attributes"]]


async def test_attribute_definitions_are_validated(services, factory):
    account = await factory.account()
    async with services.session() as session:
        await actions.define_attribute(session, account_id=account.id, label="Plan", kind="text")
        with pytest.raises(Conflict):
            await actions.define_attribute(
                session, account_id=account.id, label="plan", kind="number"
            )
        with pytest.raises(InvalidInput, match="at least one option"):
            await actions.define_attribute(
                session, account_id=account.id, label="Tier", kind="list", options=" , "
            )
        with pytest.raises(InvalidInput, match="unknown attribute type"):
            await actions.define_attribute(session, account_id=account.id, label="X", kind="colour")
        with pytest.raises(InvalidInput, match="a key starts with a letter"):
            await actions.define_attribute(
                session, account_id=account.id, label="X", kind="text", key="9 lives"
            )


async def test_labels_go_on_and_off_and_stay_in_their_account(services, factory):
    acme, globex = await factory.account("Acme"), await factory.account("Globex")
    contact_id = await _contact(services, factory, acme)
    async with services.session() as session:
        vip = await actions.create_label(session, account_id=acme.id, name=" VIP ", color="Red")
        foreign = await actions.create_label(session, account_id=globex.id, name="VIP")
        assert (vip.name, vip.color) == ("VIP", "red")
        with pytest.raises(Conflict):
            await actions.create_label(session, account_id=acme.id, name="VIP")
        with pytest.raises(InvalidInput, match="choose a colour"):
            await actions.create_label(session, account_id=acme.id, name="Red", color="#ff0000")
        contact = await session.get(Contact, contact_id)
        assert await actions.add_label(session, contact=contact, label=vip)
        assert not await actions.add_label(session, contact=contact, label=vip)
        with pytest.raises(NotFound):
            await actions.add_label(session, contact=contact, label=foreign)
        await events.commit(session)
        assert [label.name for label in await labels_of(session, contact_id)] == ["VIP"]
        assert await actions.remove_label(session, contact=contact, label=vip)
        await events.commit(session)
        assert await labels_of(session, contact_id) == []


async def test_custom_events_are_validated_and_land_on_the_timeline(services, factory):
    account = await factory.account()
    contact_id = await _contact(services, factory, account)
    when = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
    async with services.session() as session:
        for name, properties, message in [
            ("", {}, "an event name"),
            ("order placed!", {}, "an event name"),
            ("x" * 65, {}, "an event name"),
            ("order.placed", [], "properties must be a JSON object"),
            ("order.placed", {"blob": "x" * 9000}, "at most 8 KB"),
            ("order.placed", {f"k{i}": i for i in range(51)}, "at most 50 properties"),
            ("order.placed", {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}, "at most 5 levels"),
        ]:
            with pytest.raises(InvalidInput, match=message):
                await actions.record_custom_event(
                    session,
                    account_id=account.id,
                    contact_id=contact_id,
                    name=name,
                    properties=properties,
                    occurred_at=None,
                )
        with pytest.raises(InvalidInput, match="future"):
            await actions.record_custom_event(
                session,
                account_id=account.id,
                contact_id=contact_id,
                name="x",
                properties={},
                occurred_at=datetime.now(UTC) + timedelta(days=3),
            )
        other = await factory.account("Globex")
        with pytest.raises(NotFound):
            await actions.record_custom_event(
                session,
                account_id=other.id,
                contact_id=contact_id,
                name="x",
                properties={},
                occurred_at=None,
            )
        event = await actions.record_custom_event(
            session,
            account_id=account.id,
            contact_id=contact_id,
            name="order.placed",
            properties={"order": "A-1", "items": [1, 2]},
            occurred_at=when,
        )
        [published] = [p for p in await events.commit(session) if p.event is event]
        assert published.type == "contact.custom_event"
    async with services.read_session() as session:
        page = await contact_timeline(
            session, account_id=account.id, contact_id=contact_id, before=None, limit=10
        )
        top = page.items[0]
        assert top.kind == "contact.custom_event"
        assert top.event.data["properties"] == {"order": "A-1", "items": [1, 2]}
        assert datetime.fromisoformat(top.event.data["occurred_at"]) == when
        assert page.items[-1].kind == "message.created"
        assert page.items[-1].message.content == "Hello"


async def test_a_custom_event_for_a_merged_contact_lands_on_the_survivor(services, factory):
    account = await factory.account()
    survivor_id = await _contact(services, factory, account, external_id="survivor")
    merged_id = await _contact(services, factory, account, external_id="merged")
    async with services.session() as session:
        merged = await session.get(Contact, merged_id)
        merged.merged_into_id = survivor_id  # what a merge leaves behind (merging is tested apart)
        await events.commit(session)
        event = await actions.record_custom_event(
            session,
            account_id=account.id,
            contact_id=merged_id,
            name="page.visited",
            properties={},
            occurred_at=None,
        )
        await events.commit(session)
        assert event.contact_id == survivor_id


async def test_odd_input_gets_a_clear_refusal_not_a_database_error(services, factory):
    account = await factory.account()
    contact_id = await _contact(services, factory, account)
    async with services.session() as session:
        with pytest.raises(InvalidInput, match="plain JSON values"):
            await actions.record_custom_event(
                session,
                account_id=account.id,
                contact_id=contact_id,
                name="x",
                properties={"a": "nul\x00byte"},
                occurred_at=None,
            )
        with pytest.raises(InvalidInput, match="plain JSON values"):
            await actions.record_custom_event(
                session,
                account_id=account.id,
                contact_id=contact_id,
                name="x",
                properties={"a": float("nan")},
                occurred_at=None,
            )
        with pytest.raises(InvalidInput, match="not a usable time"):
            await actions.record_custom_event(
                session,
                account_id=account.id,
                contact_id=contact_id,
                name="x",
                properties={},
                occurred_at=datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))),
            )
        label = await actions.create_label(session, account_id=account.id, name="Nul\x00l")
        definition = await actions.define_attribute(
            session, account_id=account.id, label="No\x00te", kind="text"
        )
        contact = await session.get(Contact, contact_id)
        await actions.set_attributes(
            session, contact=contact, definitions=[definition], values={definition.key: "a\x00b"}
        )
        await events.commit(session)
        assert (label.name, definition.label) == ("Null", "Note")
        assert (await session.get(Contact, contact_id)).attributes == {definition.key: "ab"}


async def test_settings_changes_are_recorded_in_the_event_log(services, factory):
    account = await factory.account()
    admin = await factory.user(account)
    async with services.session() as session:
        definition = await actions.define_attribute(
            session, account_id=account.id, label="Plan", kind="text", actor_user_id=admin.id
        )
        await actions.update_attribute(session, definition=definition, label="Tier")
        await actions.delete_attribute(session, definition=definition)
        label = await actions.create_label(session, account_id=account.id, name="VIP")
        await actions.update_label(session, label=label, name="VIPs", color="red")
        await actions.delete_label(session, label=label)
        segment = await segment_actions.create_segment(
            session, account_id=account.id, name="All", filters={}, created_by_id=admin.id
        )
        await segment_actions.update_segment(session, segment=segment, name="Everyone", filters={})
        await segment_actions.delete_segment(session, segment=segment)
        published = await events.commit(session)
    assert [(p.type, p.event.change) for p in published] == [
        ("contact_attribute.changed", "created"),
        ("contact_attribute.changed", "updated"),
        ("contact_attribute.changed", "deleted"),
        ("label.changed", "created"),
        ("label.changed", "updated"),
        ("label.changed", "deleted"),
        ("segment.changed", "created"),
        ("segment.changed", "updated"),
        ("segment.changed", "deleted"),
    ]
    assert published[0].actor_user_id == admin.id
    assert published[7].event.name == "Everyone"


async def test_labels_follow_a_merge_and_come_back_with_an_unmerge(services, factory):
    account = await factory.account()
    survivor_id = await _contact(services, factory, account, external_id="survivor")
    merged_id = await _contact(services, factory, account, external_id="merged")
    async with services.session() as session:
        vip = await actions.create_label(session, account_id=account.id, name="VIP")
        churn = await actions.create_label(session, account_id=account.id, name="Churn risk")
        survivor = await session.get(Contact, survivor_id)
        await actions.add_label(session, contact=survivor, label=vip)
        merged = await session.get(Contact, merged_id)
        await actions.add_label(session, contact=merged, label=vip)
        await actions.add_label(session, contact=merged, label=churn)
        await events.commit(session)
        record = await merge.merge_contacts(
            session,
            account_id=account.id,
            survivor_id=survivor_id,
            merged_id=merged_id,
            actor_user_id=None,
        )
        await events.commit(session)
        assert [lb.name for lb in await labels_of(session, survivor_id)] == ["Churn risk", "VIP"]
        page = await contact_timeline(
            session, account_id=account.id, contact_id=survivor_id, before=None, limit=10
        )
        assert {i.message.content for i in page.items if i.message} == {"Hello"}
        assert len([i for i in page.items if i.message]) == 2  # both contacts' first messages
        await merge.unmerge_contacts(
            session, account_id=account.id, merge_id=record.id, actor_user_id=None
        )
        await events.commit(session)
        assert [lb.name for lb in await labels_of(session, survivor_id)] == ["VIP"]
        assert [lb.name for lb in await labels_of(session, merged_id)] == ["Churn risk", "VIP"]
