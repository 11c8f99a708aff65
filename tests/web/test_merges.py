"""The suggested merges page, merging from it, the merged contact's page, and unmerge."""

import re

from sqlalchemy import select

from rapport.domain import events
from rapport.domain.contacts.actions import update_contact
from rapport.domain.contacts.merge_models import ContactMerge, MergeSuggestion
from rapport.domain.contacts.models import Contact, IdentityKind, Verification
from rapport.domain.ports import IdentityClaim
from tests.support.factory import login


async def _pair(services, factory):
    """Two contacts of one customer: same name and company, one by phone, one by email."""
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    by_phone = await factory.receive(
        account,
        inbox,
        text="Where is my order?",
        name="Ana Ruiz",
        claims=(IdentityClaim(IdentityKind.phone, "+34612345678", Verification.provider),),
    )
    by_mail = await factory.receive(
        account,
        inbox,
        text="Order 77 never came",
        name="Ana Ruíz",
        claims=(IdentityClaim(IdentityKind.email, "ana@acme.example", Verification.verified),),
    )
    ids = (by_phone.conversation.contact_id, by_mail.conversation.contact_id)
    for contact_id in ids:
        async with services.session() as session:
            contact = await session.get(Contact, contact_id)
            await update_contact(session, contact=contact, company="Acme")
            await events.commit(session)
    return account, ids


async def test_review_merge_redirect_and_unmerge(client, services, factory):
    account, (phone_id, mail_id) = await _pair(services, factory)
    agent = await factory.user(account)
    csrf = await login(client, agent)

    listing = await client.get("/contacts")
    assert 'href="/contacts/merges"' in listing.text
    assert (await client.get("/contacts/merges/count")).text == "1"
    page = await client.get("/contacts/merges")
    assert page.status_code == 200
    assert "Similar name" in page.text and "+34 612 34 56 78" in page.text
    assert "ana@acme.example" in page.text
    [suggestion_id] = re.findall(r'data-suggestion="(\d+)"', page.text)
    panel = await client.get(f"/contacts/{phone_id}/merges")
    assert "1 suggested merge" in panel.text

    merged = await client.post(
        f"/contacts/merges/{suggestion_id}/accept",
        data={"survivor_id": str(phone_id), "csrf_token": csrf},
    )
    assert merged.status_code == 303 and merged.headers["location"] == f"/contacts/{phone_id}"
    # The merged contact is gone from lists and search; its page leads to the survivor.
    listing = await client.get("/contacts")
    assert f'href="/contacts/{mail_id}"' not in listing.text
    found = await client.get("/contacts", params={"q": "ana@acme"})
    assert f'href="/contacts/{phone_id}"' in found.text
    visit = await client.get(f"/contacts/{mail_id}")
    assert visit.status_code == 303 and visit.headers["location"] == f"/contacts/{phone_id}"
    survivor_page = await client.get(f"/contacts/{phone_id}")
    assert "ana@acme.example" in survivor_page.text
    assert (await client.get("/contacts/merges")).text.count("data-suggestion=") == 0
    assert (await client.get("/contacts/merges/count")).text == ""

    panel = await client.get(f"/contacts/{phone_id}/merges")
    [merge_id] = re.findall(r'action="/contacts/merged/(\d+)/undo"', panel.text)
    undone = await client.post(f"/contacts/merged/{merge_id}/undo", data={"csrf_token": csrf})
    assert undone.status_code == 303 and undone.headers["location"] == f"/contacts/{mail_id}"
    restored = await client.get(f"/contacts/{mail_id}")
    assert restored.status_code == 200 and "ana@acme.example" in restored.text
    async with services.read_session() as session:
        record = await session.get(ContactMerge, int(merge_id))
        suggestion = await session.get(MergeSuggestion, int(suggestion_id))
    assert record.actor_user_id == agent.id and record.unmerged_by_user_id == agent.id
    assert suggestion.status == "dismissed"  # undone: not one customer after all
    again = await client.post(f"/contacts/merged/{merge_id}/undo", data={"csrf_token": csrf})
    assert again.status_code == 409


async def test_dismiss_and_bad_choices(client, services, factory):
    account, (phone_id, mail_id) = await _pair(services, factory)
    csrf = await login(client, await factory.user(account))
    async with services.read_session() as session:
        suggestion = await session.scalar(select(MergeSuggestion))
    stranger = await client.post(
        f"/contacts/merges/{suggestion.id}/accept",
        data={"survivor_id": "999999", "csrf_token": csrf},
    )
    assert stranger.status_code == 422
    assert "Choose which of the two contacts to keep" in stranger.text
    dismissed = await client.post(
        f"/contacts/merges/{suggestion.id}/dismiss", data={"csrf_token": csrf}
    )
    assert dismissed.status_code == 303
    page = await client.get("/contacts/merges")
    assert "No suggested merges right now." in page.text
    # A rescan from the contact page does not bring a dismissed pair back.
    scanned = await client.post(f"/contacts/{phone_id}/merges/scan", data={"csrf_token": csrf})
    assert scanned.headers["location"] == f"/contacts/merges?contact_id={phone_id}"
    focused = await client.get(scanned.headers["location"])
    assert "No suggested merges right now." in focused.text
    assert (await client.get(f"/contacts/{mail_id}")).status_code == 200


async def test_the_page_speaks_spanish(client, services, factory):
    account, _ids = await _pair(services, factory)
    await login(client, await factory.user(account, locale="es"))
    page = await client.get("/contacts/merges")
    assert "Fusiones sugeridas" in page.text


async def test_another_accounts_contact_in_the_query_is_not_found(client, services, factory):
    _account, (phone_id, _mail_id) = await _pair(services, factory)
    other = await factory.account("Globex")
    await login(client, await factory.user(other))
    assert (await client.get(f"/contacts/merges?contact_id={phone_id}")).status_code == 404
    page = await client.get("/contacts/merges")
    assert "Ana" not in page.text


async def test_merge_by_hand_from_the_contact_page(client, services, factory):
    account, (phone_id, mail_id) = await _pair(services, factory)
    csrf = await login(client, await factory.user(account))
    panel = await client.get(f"/contacts/{phone_id}/merges")
    assert "Merge another contact into this one" in panel.text
    found = await client.get(
        f"/contacts/{phone_id}/merges/candidates",
        params={"q": "ana@acme"},
        headers={"HX-Request": "true"},
    )
    assert f'name="merged_id" value="{mail_id}"' in found.text
    itself = await client.get(f"/contacts/{phone_id}/merges/candidates", params={"q": "+34612"})
    assert 'name="merged_id"' not in itself.text  # never offered to merge into itself
    done = await client.post(
        f"/contacts/{phone_id}/merges", data={"merged_id": str(mail_id), "csrf_token": csrf}
    )
    assert done.status_code == 303
    assert (await client.get(f"/contacts/{mail_id}")).headers["location"] == f"/contacts/{phone_id}"
    again = await client.post(
        f"/contacts/{phone_id}/merges", data={"merged_id": str(phone_id), "csrf_token": csrf}
    )
    assert again.status_code == 422 and "cannot be merged into itself" in again.text
