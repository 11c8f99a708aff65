"""The inbox list and its scope counts: the visibility rule and the filters, as built-once
statements with bound values, agree with `can_see` for every kind of viewer."""

import pytest
from sqlalchemy import update

from rapport.domain import events
from rapport.domain.accounts.models import Visibility
from rapport.domain.agents.models import Role
from rapport.domain.conversations.models import Conversation, Status
from rapport.domain.conversations.policies import Viewer, can_see
from rapport.domain.conversations.queries import ConversationFilter, Scope, list_conversations
from tests.support.statements import sql_sent


@pytest.fixture
async def world(services, factory):
    """Six conversations over two agents, two teams and nobody; one of them resolved."""
    account = await factory.account()
    inbox = await factory.api_inbox(account)
    ana = await factory.user(account, name="Ana")
    bea = await factory.user(account, name="Bea")
    red = await factory.team(account, "Red", [ana])
    blue = await factory.team(account, "Blue", [bea])
    layout = [
        (ana.id, None, Status.open),
        (bea.id, red.id, Status.open),
        (None, blue.id, Status.open),
        (None, None, Status.open),
        (bea.id, None, Status.open),
        (ana.id, blue.id, Status.resolved),
    ]
    rows = []
    for n, (assignee_id, team_id, status) in enumerate(layout):
        received = await factory.receive(account, inbox, external_id=f"c{n}", name=f"C{n}")
        async with services.session() as session:
            await session.execute(
                update(Conversation)
                .where(Conversation.id == received.conversation.id)
                .values(assignee_id=assignee_id, team_id=team_id, status=status)
            )
            await events.commit(session)
        rows.append((received.conversation.id, assignee_id, team_id, status))
    return account, ana, red, blue, rows


def _viewers(account, ana, red, blue):
    common = {"user_id": ana.id, "account_id": account.id}
    return [
        Viewer(**common, role=Role.admin, team_ids=frozenset(), visibility=Visibility.assigned),
        Viewer(**common, role=Role.agent, team_ids=frozenset(), visibility=Visibility.all),
        Viewer(**common, role=Role.agent, team_ids=frozenset({red.id}), visibility=Visibility.team),
        Viewer(
            **common,
            role=Role.agent,
            team_ids=frozenset({red.id, blue.id}),
            visibility=Visibility.team,
        ),
        Viewer(**common, role=Role.agent, team_ids=frozenset(), visibility=Visibility.team),
        Viewer(
            **common, role=Role.agent, team_ids=frozenset({red.id}), visibility=Visibility.assigned
        ),
    ]


async def test_the_list_and_counts_agree_with_the_visibility_rule(services, world):
    account, ana, red, blue, rows = world
    filters = [
        ConversationFilter(scope=Scope.all),
        ConversationFilter(scope=Scope.mine),
        ConversationFilter(scope=Scope.unassigned),
        ConversationFilter(scope=Scope.all, status=None),
        ConversationFilter(scope=Scope.all, team_id=blue.id, status=None),
    ]
    for viewer in _viewers(account, ana, red, blue):
        for flt in filters:

            def expected(scope, viewer=viewer, flt=flt):
                return {
                    cid
                    for cid, assignee, team, status in rows
                    if can_see(viewer, account_id=account.id, assignee_id=assignee, team_id=team)
                    and (flt.status is None or status == flt.status)
                    and (flt.team_id is None or team == flt.team_id)
                    and (scope != Scope.mine or assignee == viewer.user_id)
                    and (scope != Scope.unassigned or assignee is None)
                }

            async with services.read_session() as session:
                page = await list_conversations(session, viewer=viewer, flt=flt)
            shown = {item.conversation.id for item in page.items}
            assert shown == expected(flt.scope), (viewer, flt)
            assert page.counts == {scope: len(expected(scope)) for scope in Scope}, (viewer, flt)


async def test_a_page_is_three_statements_and_the_cursor_continues_it(services, world):
    account, ana, red, blue, rows = world
    viewer = _viewers(account, ana, red, blue)[0]
    flt = ConversationFilter(scope=Scope.all, status=None)
    with sql_sent(services) as sent:
        async with services.read_session() as session:
            first = await list_conversations(session, viewer=viewer, flt=flt, limit=4)
    # The page, the previews, and the three counts as one statement.
    assert len(sent) == 3, "\n".join(sent)
    assert first.next_cursor is not None
    async with services.read_session() as session:
        second = await list_conversations(
            session, viewer=viewer, flt=flt, cursor=first.next_cursor, limit=4
        )
    ids = [item.conversation.id for item in first.items + second.items]
    assert sorted(ids) == sorted(cid for cid, *_ in rows)
    assert len(set(ids)) == len(ids)
    assert second.next_cursor is None
