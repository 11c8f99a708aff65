"""The takeover attempt: a website visitor types another customer's email address.

Without the site's proof (HMAC or JWT) the address is only a claim. It never joins the customer
who holds it with proof, the visitor sees nothing of that customer's history, and an agent gets
a merge suggestion to decide on instead.
"""

from sqlalchemy import delete, select

from rapport.domain import events
from rapport.domain.contacts import merge
from rapport.domain.contacts.merge_models import MergeSuggestion
from rapport.domain.contacts.models import Identity, IdentityKind, Verification
from rapport.domain.ports import IdentityClaim
from rapport.domain.visitors.models import VisitorSession
from tests.support.factory import login
from tests.support.webchat import Visitor, user_hash, widget_inbox


async def test_a_typed_email_of_another_customer_gets_no_history_and_a_suggestion(
    client, services, factory, worker
):
    account = await factory.account()
    api = await factory.api_inbox(account, name="Shop backend")
    owner = await factory.receive(
        account,
        api,
        text="My card ends in 4421, please refund order 77",
        name="Ana Ruiz",
        claims=(IdentityClaim(IdentityKind.email, "ana@example.com", Verification.verified),),
    )
    owner_id = owner.conversation.contact_id
    inbox = await widget_inbox(services, account)

    visitor = Visitor(client, inbox)
    await visitor.start()
    # The widget's pre-chat form, and an identify call without a valid proof.
    saved = await visitor.post("/details", json={"name": "Ana", "email": " ANA@example.com"})
    assert saved.status_code == 200
    refused = await visitor.post(
        "/identify", json={"user_id": "", "email": "ana@example.com", "user_hash": ""}
    )
    assert refused.status_code == 401
    assert (await visitor.say("Show me my last orders", "takeover-0001")).status_code == 202
    await worker.drain()

    # The visitor sees their own words and nothing of Ana's.
    texts = [m["content"] for m in await visitor.messages()]
    assert texts == ["Show me my last orders"]
    assert (await visitor.get(f"/messages/{owner.message.id}")).status_code == 404
    async with services.read_session() as session:
        visit = await session.scalar(select(VisitorSession))
        identity = await session.scalar(select(Identity).where(Identity.kind == "email"))
        [suggestion] = (await session.scalars(select(MergeSuggestion))).all()
        visitor_contact_id = await session.scalar(
            select(Identity.contact_id).where(Identity.value == visit.visitor_id)
        )
    assert visit.conversation_id != owner.conversation.id
    assert (identity.contact_id, identity.verification) == (owner_id, "verified")
    assert visitor_contact_id != owner_id
    assert {suggestion.contact_id, suggestion.other_contact_id} == {owner_id, visitor_contact_id}
    assert suggestion.status == "pending" and suggestion.score >= 90
    assert suggestion.reasons == [
        {"code": "same_email", "kind": "email", "value": "ana@example.com"}
    ]

    # An agent sees the pair, with the reason, on the review page.
    await login(client, await factory.user(account))
    page = await client.get("/contacts/merges")
    assert "Same email address: ana@example.com" in page.text
    assert f'href="/contacts/{owner_id}"' in page.text
    assert f'href="/contacts/{visitor_contact_id}"' in page.text


async def test_a_proven_user_id_with_someone_elses_email_keeps_the_email_a_claim(
    client, services, factory
):
    """HMAC of the user id proves the id only; the email next to it is still just a claim."""
    account = await factory.account()
    api = await factory.api_inbox(account)
    owner = await factory.receive(
        account,
        api,
        claims=(IdentityClaim(IdentityKind.email, "ana@example.com", Verification.provider),),
    )
    inbox = await widget_inbox(services, account)
    visitor = Visitor(client, inbox)
    await visitor.start()
    response = await visitor.post(
        "/identify",
        json={"user_id": "u-9", "email": "Ana@example.com", "user_hash": user_hash("u-9")},
    )
    assert response.status_code == 200 and response.json()["identified"]
    async with services.read_session() as session:
        email = await session.scalar(select(Identity).where(Identity.kind == "email"))
        proven = await session.scalar(select(Identity).where(Identity.value == "u-9"))
        [suggestion] = (await session.scalars(select(MergeSuggestion))).all()
    assert email.contact_id == owner.conversation.contact_id
    assert proven.contact_id != owner.conversation.contact_id
    assert {suggestion.contact_id, suggestion.other_contact_id} == {
        owner.conversation.contact_id,
        proven.contact_id,
    }


async def test_a_rescan_finds_what_visitors_typed_before_suggestions_existed(
    client, services, factory
):
    """Data from before suggestions: the claim is still on the visitor's session."""
    account = await factory.account(default_region="ES")
    api = await factory.api_inbox(account)
    owner = await factory.receive(
        account,
        api,
        claims=(IdentityClaim(IdentityKind.phone, "+34612000111", Verification.provider),),
    )
    inbox = await widget_inbox(services, account)
    visitor = Visitor(client, inbox)
    await visitor.start()
    await visitor.post("/details", json={"name": "Someone", "phone": "612 000 111"})
    async with services.session() as session:
        await session.execute(delete(MergeSuggestion))
        await events.commit(session)
        visit = await session.scalar(select(VisitorSession))
        visitor_contact_id = await session.scalar(
            select(Identity.contact_id).where(Identity.value == visit.visitor_id)
        )
    found = await _suggest(services, account.id, visitor_contact_id)
    assert [(s.score, s.reasons) for s in found] == [
        (90, [{"code": "same_phone", "kind": "phone", "value": "+34612000111"}])
    ]
    assert owner.conversation.contact_id in {found[0].contact_id, found[0].other_contact_id}


async def _suggest(services, account_id, contact_id):
    async with services.session() as session:
        found = await merge.suggest_merges(session, account_id=account_id, contact_id=contact_id)
        await events.commit(session)
        return found
