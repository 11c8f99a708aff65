"""Merging two contacts and undoing it: everything moves, and everything comes back exactly."""

import pytest
from sqlalchemy import select

from rapport.domain import events
from rapport.domain.accounts.models import Account
from rapport.domain.contacts import merge, suggestions
from rapport.domain.contacts.actions import resolve_contact, update_contact
from rapport.domain.contacts.merge_models import ContactMerge, MergeSuggestion
from rapport.domain.contacts.merge_queries import review_queue, survivor_of
from rapport.domain.contacts.models import Contact, Identity, IdentityKind, Verification
from rapport.domain.contacts.queries import search_contacts
from rapport.domain.conversations import actions
from rapport.domain.conversations.models import Conversation, Status
from rapport.domain.errors import Conflict, InvalidInput, NotFound
from rapport.domain.events import Event, PublishedEvent
from rapport.domain.ports import IdentityClaim

PHONE = IdentityKind.phone


def _claim(kind, value, verification=Verification.provider):
    return (IdentityClaim(kind, value, verification),)


async def state_of(services, contact_id):
    """Everything a merge may touch, as plain values."""
    async with services.read_session() as session:
        contact = await session.get(Contact, contact_id)
        identities = await session.scalars(
            select(Identity).where(Identity.contact_id == contact_id).order_by(Identity.id)
        )
        conversations = await session.scalars(
            select(Conversation.id).where(Conversation.contact_id == contact_id)
        )
        event_ids = await session.scalars(select(Event.id).where(Event.contact_id == contact_id))
        return {
            "profile": (
                contact.name,
                contact.company,
                contact.avatar_url,
                contact.attributes,
                contact.merged_into_id,
                contact.updated_at,
                contact.last_activity_at,
            ),
            "identities": [(i.id, i.kind, i.value, i.verification) for i in identities],
            "conversations": sorted(conversations),
            "events": sorted(event_ids),
        }


async def set_attributes(services, contact_id, attributes, **fields):
    async with services.session() as session:
        contact = await session.get(Contact, contact_id)
        contact.attributes = attributes
        for name, value in fields.items():
            setattr(contact, name, value)
        await events.commit(session)


async def do(services, fn, **kwargs):
    async with services.session() as session:
        result = await fn(session, **kwargs)
        await events.commit(session)
        return result


async def two_customers(services, factory):
    """Ana by SMS-like phone, with attributes; 'A. Ruiz' by email, with other attributes."""
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    first = await factory.receive(
        account, inbox, text="hi by phone", name="Ana", claims=_claim(PHONE, "+34612345678")
    )
    await factory.receive(
        account, inbox, text="again", name="Ana", claims=_claim(PHONE, "+34612345678")
    )
    second = await factory.receive(
        account,
        inbox,
        text="hi by mail",
        name="",
        claims=_claim(IdentityKind.email, "ana@example.com", Verification.verified),
    )
    survivor_id = first.conversation.contact_id
    merged_id = second.conversation.contact_id
    await set_attributes(services, survivor_id, {"plan": "gold", "city": "Madrid"})
    await set_attributes(
        services, merged_id, {"plan": "silver", "order": 42}, company="Acme", avatar_url="/a.png"
    )
    return account, inbox, survivor_id, merged_id


async def test_merge_then_unmerge_returns_both_contacts_to_exactly_their_earlier_state(
    services, factory
):
    account, _inbox, survivor_id, merged_id = await two_customers(services, factory)
    user = await factory.user(account)
    before = {cid: await state_of(services, cid) for cid in (survivor_id, merged_id)}

    record = await do(
        services,
        merge.merge_contacts,
        account_id=account.id,
        survivor_id=survivor_id,
        merged_id=merged_id,
        actor_user_id=user.id,
    )
    merged_state = await state_of(services, survivor_id)
    loser_state = await state_of(services, merged_id)
    assert [i[2] for i in merged_state["identities"]] == ["+34612345678", "ana@example.com"]
    assert merged_state["conversations"] == sorted(
        before[survivor_id]["conversations"] + before[merged_id]["conversations"]
    )
    assert set(before[merged_id]["events"]) < set(merged_state["events"])
    name, company, avatar, attributes, *_ = merged_state["profile"]
    # The survivor wins a conflict and takes what it lacked; the loser's value is kept.
    assert (name, company, avatar) == ("Ana", "Acme", "/a.png")
    assert attributes == {"plan": "gold", "city": "Madrid", "order": 42}
    assert loser_state["profile"][4] == survivor_id
    assert loser_state["identities"] == loser_state["conversations"] == []
    async with services.read_session() as session:
        stored = await session.get(ContactMerge, record.id)
        merged_event = await session.scalar(select(Event).where(Event.type == "contact.merged"))
    assert stored.moved["attributes_kept_from_survivor"] == {"plan": "silver"}
    assert stored.snapshot["merged"]["attributes"] == {"plan": "silver", "order": 42}
    assert merged_event.actor_user_id == user.id and merged_event.contact_id == survivor_id
    assert merged_event.data == {
        "contact_id": survivor_id,
        "merged_id": merged_id,
        "merge_id": record.id,
    }

    survivor, restored = await do(
        services,
        merge.unmerge_contacts,
        account_id=account.id,
        merge_id=record.id,
        actor_user_id=user.id,
    )
    assert (survivor.id, restored.id) == (survivor_id, merged_id)
    after = {cid: await state_of(services, cid) for cid in (survivor_id, merged_id)}
    # The merge and unmerge events themselves stay on the survivor's log: drop them to compare.
    async with services.read_session() as session:
        own = set(
            await session.scalars(
                select(Event.id).where(Event.type.in_(["contact.merged", "contact.unmerged"]))
            )
        )
    after[survivor_id]["events"] = [e for e in after[survivor_id]["events"] if e not in own]
    assert after == before


async def test_what_arrives_after_the_merge_stays_and_moved_conversations_go_back_whole(
    services, factory
):
    account, inbox, survivor_id, merged_id = await two_customers(services, factory)
    before_loser = await state_of(services, merged_id)
    [moved_id] = before_loser["conversations"]
    record = await do(
        services,
        merge.merge_contacts,
        account_id=account.id,
        survivor_id=survivor_id,
        merged_id=merged_id,
        actor_user_id=None,
    )
    # An agent resolves the conversation that came from the merged contact...
    async with services.session() as session:
        moved = await session.get(Conversation, moved_id)
        await actions.change_status(session, conversation=moved, actor=None, status=Status.resolved)
        await events.commit(session)
    # ...and the customer writes from a new number too, joining the survivor's own conversation.
    later = await factory.receive(
        account,
        inbox,
        text="new number",
        claims=(
            IdentityClaim(PHONE, "+34612345678", Verification.provider),
            IdentityClaim(PHONE, "+34699000111", Verification.provider),
        ),
    )
    assert later.conversation.contact_id == survivor_id and later.conversation.id != moved_id
    await do(
        services,
        merge.unmerge_contacts,
        account_id=account.id,
        merge_id=record.id,
        actor_user_id=None,
    )
    loser = await state_of(services, merged_id)
    survivor = await state_of(services, survivor_id)
    async with services.read_session() as session:
        resolved_event = await session.scalar(
            select(Event.id).where(Event.type == "conversation.status_changed")
        )
    assert loser == {**before_loser, "events": sorted([*before_loser["events"], resolved_event])}
    assert "+34699000111" in [i[2] for i in survivor["identities"]]
    assert later.conversation.id in survivor["conversations"]


async def test_merge_refuses_itself_a_merged_contact_another_account_and_a_second_undo(
    services, factory
):
    account, _inbox, survivor_id, merged_id = await two_customers(services, factory)
    other_account = await factory.account("Globex")
    kwargs = {"account_id": account.id, "actor_user_id": None}
    with pytest.raises(InvalidInput, match="itself"):
        await do(
            services, merge.merge_contacts, survivor_id=survivor_id, merged_id=survivor_id, **kwargs
        )
    with pytest.raises(NotFound):
        await do(
            services,
            merge.merge_contacts,
            account_id=other_account.id,
            survivor_id=survivor_id,
            merged_id=merged_id,
            actor_user_id=None,
        )
    record = await do(
        services, merge.merge_contacts, survivor_id=survivor_id, merged_id=merged_id, **kwargs
    )
    with pytest.raises(Conflict, match="already merged"):
        await do(
            services, merge.merge_contacts, survivor_id=merged_id, merged_id=survivor_id, **kwargs
        )
    with pytest.raises(NotFound):
        await do(
            services,
            merge.unmerge_contacts,
            account_id=other_account.id,
            merge_id=record.id,
            actor_user_id=None,
        )
    await do(services, merge.unmerge_contacts, merge_id=record.id, **kwargs)
    with pytest.raises(Conflict, match="already undone"):
        await do(services, merge.unmerge_contacts, merge_id=record.id, **kwargs)
    with pytest.raises(NotFound):
        await do(
            services, merge.suggest_merges, account_id=other_account.id, contact_id=survivor_id
        )


async def test_a_merged_contact_disappears_from_search_and_cannot_be_edited(services, factory):
    account, _inbox, survivor_id, merged_id = await two_customers(services, factory)
    await do(
        services,
        merge.merge_contacts,
        account_id=account.id,
        survivor_id=survivor_id,
        merged_id=merged_id,
        actor_user_id=None,
    )
    async with services.read_session() as session:
        found = await search_contacts(session, account_id=account.id, text="ana@example.com")
        everyone = await search_contacts(session, account_id=account.id)
    assert [c.id for c in found] == [survivor_id]
    assert merged_id not in [c.id for c in everyone]
    with pytest.raises(Conflict):
        async with services.session() as session:
            loser = await session.get(Contact, merged_id)
            await update_contact(session, contact=loser, name="Someone")


async def test_similar_name_and_company_are_suggested_with_a_score_and_reasons(services, factory):
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    first = await factory.receive(account, inbox, name="Ana Ruiz", external_id="shop-1")
    second = await factory.receive(account, inbox, name="Ruíz, Ana", external_id="shop-2")
    third = await factory.receive(account, inbox, name="Ana Ruiz", external_id="shop-3")
    ids = [r.conversation.contact_id for r in (first, second, third)]
    for contact_id, company in zip(ids, ["Acme Inc.", "ACME inc", "Globex"], strict=True):
        async with services.session() as session:
            contact = await session.get(Contact, contact_id)
            await update_contact(session, contact=contact, company=company)
            await events.commit(session)
    async with services.read_session() as session:
        [suggestion] = (await session.scalars(select(MergeSuggestion))).all()
    assert (suggestion.contact_id, suggestion.other_contact_id) == (ids[0], ids[1])
    [reason] = suggestion.reasons
    assert reason["code"] == "similar_name_company" and reason["name"] >= 85
    assert 60 <= suggestion.score <= 80  # weaker than a shared phone or email

    # Dismissed, it is not suggested again by a rescan; a rescan finds nothing new for Globex.
    await do(
        services,
        merge.dismiss_suggestion,
        account_id=account.id,
        suggestion_id=suggestion.id,
        actor_user_id=None,
    )
    assert await do(services, merge.suggest_merges, account_id=account.id, contact_id=ids[0]) == []
    assert await do(services, merge.suggest_merges, account_id=account.id, contact_id=ids[2]) == []


async def test_a_typed_claim_of_a_proven_identity_becomes_a_suggestion_not_a_join(
    services, factory
):
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    owner = await factory.receive(
        account,
        inbox,
        name="Ana",
        claims=_claim(IdentityKind.email, "ana@example.com", Verification.verified),
    )
    async with services.session() as session:
        fresh = await session.get(Account, account.id)
        resolved = await resolve_contact(
            session,
            account=fresh,
            claims=[
                IdentityClaim(IdentityKind.external, "stranger-1", Verification.verified),
                IdentityClaim(IdentityKind.email, " ANA@Example.com ", Verification.unverified),
            ],
        )
        await events.commit(session)
    assert resolved.contact.id != owner.conversation.contact_id
    assert [(c.value, other) for c, other in resolved.conflicts] == [
        ("ana@example.com", owner.conversation.contact_id)
    ]
    suggestions = await do(
        services, merge.suggest_merges, account_id=account.id, contact_id=resolved.contact.id
    )
    [suggestion] = suggestions
    assert suggestion.reasons == [
        {"code": "same_email", "kind": "email", "value": "ana@example.com"}
    ]
    assert suggestion.score == 90


async def test_merges_of_merges_are_followed_and_undone_newest_first(services, factory):
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    a, b, c = [
        (await factory.receive(account, inbox, external_id=f"c-{n}")).conversation.contact_id
        for n in range(3)
    ]
    kwargs = {"account_id": account.id, "actor_user_id": None}
    first = await do(services, merge.merge_contacts, survivor_id=b, merged_id=a, **kwargs)
    second = await do(services, merge.merge_contacts, survivor_id=c, merged_id=b, **kwargs)
    async with services.read_session() as session:
        oldest = await session.get(Contact, a)
        assert (await survivor_of(session, contact=oldest)).id == c
        # Every event written, merge events included, validates as its typed class.
        for row in await session.scalars(select(Event)):
            assert PublishedEvent.from_row(row).event.type == row.type
    with pytest.raises(Conflict, match="undo that merge first"):
        await do(services, merge.unmerge_contacts, merge_id=first.id, **kwargs)
    await do(services, merge.unmerge_contacts, merge_id=second.id, **kwargs)
    await do(services, merge.unmerge_contacts, merge_id=first.id, **kwargs)
    async with services.read_session() as session:
        owners = {i.value: i.contact_id for i in await session.scalars(select(Identity))}
    assert owners == {"c-0": a, "c-1": b, "c-2": c}


async def test_the_merged_contacts_other_suggestions_carry_over_to_the_survivor(services, factory):
    account, inbox, survivor_id, merged_id = await two_customers(services, factory)
    third = await factory.receive(
        account,
        inbox,
        claims=_claim(IdentityKind.email, "boss@acme.example", Verification.verified),
    )
    third_id = third.conversation.contact_id
    async with services.session() as session:
        await suggestions.suggest_pair(
            session,
            account_id=account.id,
            contact_id=merged_id,
            other_id=third_id,
            reasons=[suggestions.identity_reason("email", "boss@acme.example")],
        )
        await events.commit(session)
    await do(
        services,
        merge.merge_contacts,
        account_id=account.id,
        survivor_id=survivor_id,
        merged_id=merged_id,
        actor_user_id=None,
    )
    async with services.read_session() as session:
        queue = await review_queue(session, account_id=account.id)
    assert [(p.left.contact.id, p.right.contact.id) for p in queue] == [(survivor_id, third_id)]
    assert queue[0].suggestion.reasons[0]["value"] == "boss@acme.example"


async def test_rows_already_loaded_in_the_session_follow_the_merge(services, factory):
    """A caller (the JSON API) may hold the rows it read before merging in the same session."""
    account, _inbox, survivor_id, merged_id = await two_customers(services, factory)
    async with services.session() as session:
        loaded = list(
            await session.scalars(select(Identity).where(Identity.contact_id == merged_id))
        )
        record = await merge.merge_contacts(
            session,
            account_id=account.id,
            survivor_id=survivor_id,
            merged_id=merged_id,
            actor_user_id=None,
        )
        assert [i.contact_id for i in loaded] == [survivor_id]
        await merge.unmerge_contacts(
            session, account_id=account.id, merge_id=record.id, actor_user_id=None
        )
        assert [i.contact_id for i in loaded] == [merged_id]
        await events.commit(session)
