"""The customer timeline stays index-backed on a big PostgreSQL database (asserted on the plan).

The database is seeded set-based (INSERT ... SELECT generate_series) with a few hundred thousand
events and messages across thousands of contacts, then ANALYZEd, so the planner chooses as it
would in production. Every statement `contact_timeline` runs is then EXPLAINed with its own
parameters: none may scan events or messages sequentially.
"""

import pytest
from sqlalchemy import event, text

from rapport.domain.accounts.models import Visibility
from rapport.domain.agents.models import Role
from rapport.domain.contacts.queries import contact_timeline
from rapport.domain.conversations.policies import Viewer
from tests.support.customers import cross_channel_history

CONTACTS = 4000
EVENTS = 240_000
MESSAGES = 120_000


@pytest.fixture
def backend():
    return "postgres"


SEED = [
    # Contacts, each with one conversation.
    """INSERT INTO contacts (account_id, name, company, attributes, created_at, updated_at,
                             last_activity_at)
       SELECT :account, 'Seeded ' || g, '', '{}'::jsonb, now(), now(), now()
       FROM generate_series(1, :contacts) g""",
    """INSERT INTO conversations (account_id, contact_id, channel, status, subject, priority,
                                  created_at, last_activity_at)
       SELECT :account, c.id, 'api', 'resolved', 'seeded', 0, now(), now()
       FROM contacts c WHERE c.account_id = :account AND c.name LIKE 'Seeded %'""",
    # Messages spread over the seeded conversations.
    """INSERT INTO messages (account_id, conversation_id, channel, direction, private,
                             sender_type, content, content_type, payload, status, created_at)
       SELECT :account, v.id, 'api', 'incoming', false, 'contact', 'seeded message ' || g,
              'text', '{}'::jsonb, 'received', now()
       FROM generate_series(1, :messages) g
       JOIN (SELECT id, row_number() OVER (ORDER BY id) AS n FROM conversations
             WHERE account_id = :account AND subject = 'seeded') v
         ON v.n = 1 + (g % :contacts)""",
    # Events: a mix of types, each about one seeded contact, numbered after the real ones.
    """INSERT INTO events (account_id, seq, type, contact_id, conversation_id, data, created_at)
       SELECT :account, 1000000 + g,
              (ARRAY['message.created', 'message.status_changed', 'conversation.assigned',
                     'contact.updated', 'conversation.status_changed'])[1 + g % 5],
              v.contact_id, v.id, jsonb_build_object('message_id', g), now()
       FROM generate_series(1, :events) g
       JOIN (SELECT id, contact_id, row_number() OVER (ORDER BY id) AS n FROM conversations
             WHERE account_id = :account AND subject = 'seeded') v
         ON v.n = 1 + (g % :contacts)""",
    "ANALYZE contacts",
    "ANALYZE conversations",
    "ANALYZE messages",
    "ANALYZE events",
]


def _nodes(plan):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


async def _explain_each(services, run):
    """Run `run(session)` capturing its statements, then EXPLAIN each with its parameters."""
    captured = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        captured.append((statement, parameters))

    engine = services.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        async with services.read_session() as session:
            await run(session)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    plans = []
    async with services.read_session() as session:
        conn = await session.connection()
        for statement, parameters in captured:
            result = await conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters)
            plans.append((statement, result.scalar_one()[0]["Plan"]))
    return plans


async def test_the_timeline_query_uses_indexes_on_a_big_database(services, factory):
    account = await factory.account()
    agent = await factory.user(account, name="Ana")
    history = await cross_channel_history(services, factory, account, agent)
    async with services.session() as session:
        params = {
            "account": account.id,
            "contacts": CONTACTS,
            "events": EVENTS,
            "messages": MESSAGES,
        }
        for sql in SEED:
            await session.execute(text(sql), params if ":" in sql else {})
        await session.commit()  # raw seed rows, no domain events: conventions allow tests this

    restricted = Viewer(
        user_id=agent.id,
        account_id=account.id,
        role=Role.agent,
        team_ids=frozenset(),
        visibility=Visibility.assigned,
    )

    async def run(session):
        first = await contact_timeline(
            session, account_id=account.id, contact_id=history.contact_id, before=None, limit=3
        )
        assert [i.kind for i in first.items][:1] == ["contact.custom_event"]
        await contact_timeline(
            session,
            account_id=account.id,
            contact_id=history.contact_id,
            before=first.next_before,
            limit=3,
            viewer=restricted,
        )
        busy = await session.scalar(
            text("SELECT contact_id FROM events WHERE seq > 1000000 GROUP BY contact_id LIMIT 1")
        )
        page = await contact_timeline(
            session, account_id=account.id, contact_id=busy, before=None, limit=30
        )
        assert len(page.items) == 30 and page.next_before is not None
        await contact_timeline(
            session, account_id=account.id, contact_id=busy, before=page.next_before, limit=30
        )

    plans = await _explain_each(services, run)
    timeline_plans = [(s, p) for s, p in plans if "FROM events" in s or "FROM messages" in s]
    assert len(timeline_plans) >= 6
    for statement, plan in timeline_plans:
        scans = [
            (n["Node Type"], n.get("Relation Name"), n.get("Index Name")) for n in _nodes(plan)
        ]
        assert not [s for s in scans if s[0] == "Seq Scan" and s[1] in ("events", "messages")], (
            statement,
            scans,
        )
        if "FROM events" in statement:
            assert any(s[2] == "ix_events_contact" for s in scans), (statement, scans)
