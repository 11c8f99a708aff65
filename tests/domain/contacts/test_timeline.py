"""The customer timeline: one list across channels, paginated by event id, visibility-aware."""

from rapport.domain.accounts.models import Visibility
from rapport.domain.agents.models import Role
from rapport.domain.agents.queries import viewer_for
from rapport.domain.contacts.queries import contact_timeline, earlier_conversations
from rapport.domain.conversations.policies import Viewer
from tests.support.customers import cross_channel_history, phone_claim


async def _all_pages(session, account_id, contact_id, limit, viewer=None):
    pages, before = [], None
    while True:
        page = await contact_timeline(
            session,
            account_id=account_id,
            contact_id=contact_id,
            before=before,
            limit=limit,
            viewer=viewer,
        )
        pages.append(page.items)
        if page.next_before is None:
            return pages
        before = page.next_before


async def test_one_timeline_across_channels_with_switches_notes_and_custom_events(
    services, factory
):
    account = await factory.account(default_region="ES")
    agent = await factory.user(account, name="Ana")
    history = await cross_channel_history(services, factory, account, agent)
    async with services.read_session() as session:
        [items] = await _all_pages(session, account.id, history.contact_id, limit=50)
        kinds = [i.kind for i in reversed(items)]
        assert kinds == [
            "message.created",
            "conversation.channel_switched",
            "message.created",
            "conversation.assigned",
            "message.created",
            "contact.custom_event",
        ]
        oldest, switch, sms, assigned, note, custom = reversed(items)
        assert (oldest.message.channel, oldest.message.content) == ("api", "Where is my order?")
        assert (switch.event.data["from_channel"], switch.event.data["to_channel"]) == (
            "api",
            "sms",
        )
        assert sms.message.channel == "sms"
        assert assigned.actor_name == "Ana"
        assert note.message.private and note.actor_name == "Ana"
        assert custom.event.data["name"] == "order.placed"


async def test_pages_walk_back_without_gaps_or_repeats(services, factory):
    account = await factory.account()
    agent = await factory.user(account)
    history = await cross_channel_history(services, factory, account, agent)
    for n in range(7):
        await factory.receive(account, history.api, text=f"more {n}", claims=phone_claim())
    async with services.read_session() as session:
        [everything] = await _all_pages(session, account.id, history.contact_id, limit=100)
        pages = await _all_pages(session, account.id, history.contact_id, limit=4)
        assert all(len(p) == 4 for p in pages[:-1]) and len(pages) == 4
        walked = [i.event.id for page in pages for i in page]
        assert walked == [i.event.id for i in everything]
        assert walked == sorted(walked, reverse=True)
        # Another account asking for this contact sees nothing.
        other = await factory.account("Globex")
        assert await _all_pages(session, other.id, history.contact_id, limit=4) == [[]]


async def test_conversations_an_agent_may_not_see_stay_out_of_their_timeline(services, factory):
    account = await factory.account()
    admin = await factory.user(account, role=Role.admin)
    history = await cross_channel_history(services, factory, account, admin)
    restricted = Viewer(
        user_id=admin.id + 1000,
        account_id=account.id,
        role=Role.agent,
        team_ids=frozenset(),
        visibility=Visibility.assigned,
    )
    async with services.read_session() as session:
        [items] = await _all_pages(session, account.id, history.contact_id, 50, restricted)
        assert [i.kind for i in items] == ["contact.custom_event"]
        assert (
            await earlier_conversations(
                session, contact_id=history.contact_id, viewer=restricted, exclude_id=None
            )
            == []
        )
        viewer = await viewer_for(session, admin, account)
        [earlier] = await earlier_conversations(
            session, contact_id=history.contact_id, viewer=viewer, exclude_id=None
        )
        assert [m.content for m in earlier.last_messages] == [
            "Where is my order?",
            "Texting you instead",
            "Checked the warehouse",
        ]
