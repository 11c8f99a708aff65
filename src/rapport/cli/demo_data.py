"""Demo data that looks like a real support team's morning: people, teams, an API inbox, and
about thirty customers with conversations in every state. Everything goes through the domain
actions, so the event log, timelines and counts are exactly what real traffic would produce.
"""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.channels.webchat.config import WebchatConfig
from rapport.db import outbox
from rapport.db.engine import open_database
from rapport.domain import events
from rapport.domain.accounts.actions import create_account
from rapport.domain.accounts.models import Account
from rapport.domain.agents.actions import create_team, create_user, set_team_members
from rapport.domain.agents.models import Role, Team, User
from rapport.domain.contacts import actions as contact_actions
from rapport.domain.contacts.actions import update_contact
from rapport.domain.contacts.models import Contact, IdentityKind, Verification
from rapport.domain.contacts.queries import attribute_definitions
from rapport.domain.conversations import actions
from rapport.domain.conversations.models import Conversation, DeliveryStatus, Message, Status
from rapport.domain.events import Event
from rapport.domain.inboxes.actions import create_inbox
from rapport.domain.inboxes.models import Inbox
from rapport.domain.ports import ChannelPolicy, IdentityClaim, InboundMessage
from rapport.domain.segments.actions import create_segment
from rapport.lib.clock import utcnow
from rapport.lib.crypto import SecretBox
from rapport.settings import Settings
from rapport.web.sandbox.catalog import seed_sandbox_inboxes

DEMO_PASSWORD = "rapport-demo"
DEMO_LOGINS = [
    ("admin", "admin@rapport.demo", DEMO_PASSWORD),
    ("agent", "ana@rapport.demo", DEMO_PASSWORD),
    ("agent", "ben@rapport.demo", DEMO_PASSWORD),
    ("agent", "carla@rapport.demo", DEMO_PASSWORD),
]
AGENTS = [
    ("Ana Ruiz", "ana@rapport.demo"),
    ("Ben Okafor", "ben@rapport.demo"),
    ("Carla Mendes", "carla@rapport.demo"),
]

CUSTOMERS = [
    ("María García", "Café Aurora"),
    ("James Whitfield", "Northwind Traders"),
    ("Lucía Fernández", ""),
    ("Tom Becker", "Becker & Sons"),
    ("Aisha Khan", "Brightline Studio"),
    ("Diego Torres", "Torres Logística"),
    ("Emma Johansson", ""),
    ("Kenji Watanabe", "Kumo Labs"),
    ("Sofía Navarro", "Navarro Dental"),
    ("Liam O'Connor", ""),
    ("Chloé Martin", "Atelier Lumière"),
    ("Noah Williams", "Williams Plumbing"),
    ("Valentina Rossi", ""),
    ("Omar Haddad", "Cedar Foods"),
    ("Hannah Schmidt", "Schmidt GmbH"),
    ("Mateo López", ""),
    ("Grace Lee", "Lee Architecture"),
    ("Pablo Herrera", "Herrera Bikes"),
    ("Olivia Brown", ""),
    ("Ravi Patel", "Patel Pharmacy"),
    ("Camila Vargas", ""),
    ("Lucas Dubois", "Dubois Wines"),
    ("Isabella Costa", "Costa Travel"),
    ("Ethan Clarke", ""),
    ("Nadia Petrova", "Volga Design"),
    ("Javier Moreno", "Moreno Seguros"),
    ("Zoe Anderson", ""),
    ("Samuel Adeyemi", "Lagos Tech Hub"),
    ("Elena Sánchez", "Panadería Sol"),
    ("Daniel Kim", "Kim & Park LLP"),
]

THREADS = [
    [
        "Hi, I was charged twice for my March invoice. Can you check?",
        "Thanks for flagging this. I can see the duplicate charge and I've started the refund.",
        "Great, how long until it shows up?",
    ],
    [
        "Hola, ¿podéis cambiar la dirección de envío de mi pedido 4821?",
        "¡Claro! ¿Cuál es la nueva dirección?",
        "Calle Mayor 12, 3ºB, 28013 Madrid. ¡Gracias!",
    ],
    [
        "The mobile app logs me out every few minutes since the update.",
        "Sorry about that. Which phone and app version are you on?",
        "iPhone 15, version 4.2.1",
    ],
    [
        "Do you offer a discount for nonprofits?",
        "We do: 30% on every plan. I'll send you the form.",
    ],
    [
        "My export to CSV is stuck at 90%.",
        "I've restarted the export on our side; it should finish in a minute.",
        "Got it, thank you!",
    ],
    ["¿Tenéis soporte en fin de semana?", "Sí, el chat está atendido los sábados de 10 a 14 h."],
    [
        "Can I add a second admin to our account?",
        "Yes: Settings → Users → Add user, and choose the Admin role.",
    ],
    [
        "The invoice PDF shows the wrong VAT number.",
        "I've corrected it and reissued the invoice. You'll get it by email shortly.",
    ],
    [
        "Password reset email never arrives.",
        "It went to a blocked address on our side; I've fixed it. Please try again.",
        "Worked now, thanks.",
    ],
    [
        "Quiero cancelar mi suscripción.",
        "Lamento oírlo. ¿Puedo preguntar el motivo? A veces podemos ayudar.",
    ],
]

WEBSITE_CHAT = WebchatConfig(
    greeting="Hi there 👋 We're the Acme team. Ask us anything: we usually answer in a few "
    "minutes, here or on WhatsApp if you leave your number.",
    pre_chat_fields=["name*", "phone"],
).model_dump(mode="json")

NOTES = [
    "Customer is on the legacy plan; refund needs a supervisor's OK.",
    "Known issue, engineering ticket ENG-2231.",
    "VIP account, reply within the hour.",
]


async def seed_demo(settings: Settings) -> bool:
    """Create the demo account unless one exists. Returns True when it created it."""
    db = open_database(settings.database_url)
    try:
        async with db.session() as session:
            if await session.scalar(select(Account.id).limit(1)) is not None:
                return False
            box = SecretBox(settings.secret_key.get_secret_value())
            await _seed(session, box, settings.public_url)
            return True
    finally:
        await db.dispose()


async def _seed(session: AsyncSession, box: SecretBox, public_url: str) -> None:
    rng = random.Random(7)  # noqa: S311 - demo spread, not security
    account = await create_account(session, name="Acme Support", default_region="ES")
    admin = await create_user(
        session,
        account_id=account.id,
        email="admin@rapport.demo",
        name="Alex Admin",
        password=DEMO_PASSWORD,
        role=Role.admin,
    )
    agents = [
        await create_user(
            session,
            account_id=account.id,
            email=email,
            name=name,
            password=DEMO_PASSWORD,
            role=Role.agent,
        )
        for name, email in AGENTS
    ]
    billing = await create_team(
        session, account_id=account.id, name="Billing", description="Invoices, refunds, plans"
    )
    technical = await create_team(
        session, account_id=account.id, name="Technical", description="Bugs, integrations, the app"
    )
    await set_team_members(session, team=billing, user_ids=[agents[0].id, agents[1].id])
    await set_team_members(session, team=technical, user_ids=[agents[1].id, agents[2].id])
    inbox = await create_inbox(
        session,
        account_id=account.id,
        name="Website backend",
        channel="api",
        config={
            "secret": "demo-secret-change-me-0123456789",
            "previous_secret": "",
            "outbound_url": None,
        },
        box=box,
    )
    await events.commit(session)
    for index, (name, company) in enumerate(CUSTOMERS):
        await _customer(
            session,
            rng,
            account,
            inbox,
            index,
            name,
            company,
            [admin, *agents],
            [billing, technical],
        )
    # The first customer again, from new addresses and without accents: a suggested merge.
    await _customer(
        session,
        rng,
        account,
        inbox,
        len(CUSTOMERS),
        "Maria Garcia",
        "Cafe Aurora",
        [admin, *agents],
        [billing, technical],
    )
    await _profiles(session, rng, account)
    # The website chat: the sandbox page (/sandbox) carries its widget, so a newcomer can be a
    # website visitor, then write from a phone as the same person.
    await create_inbox(
        session,
        account_id=account.id,
        name="Website chat",
        channel="webchat",
        config=WEBSITE_CHAT,
        box=box,
    )
    # SMS, phone, Telegram, WhatsApp, Messenger and Instagram inboxes played by the sandbox's
    # fake providers (/sandbox).
    await seed_sandbox_inboxes(session, account_id=account.id, box=box, public_url=public_url)
    await events.commit(session)


async def _customer(
    session: AsyncSession,
    rng: random.Random,
    account: Account,
    inbox: Inbox,
    index: int,
    name: str,
    company: str,
    users: list[User],
    teams: list[Team],
) -> None:
    slug = name.split(maxsplit=1)[0].lower().encode("ascii", "ignore").decode() or "customer"
    claims = (
        IdentityClaim(IdentityKind.external, f"cust-{1000 + index}", Verification.verified),
        IdentityClaim(IdentityKind.email, f"{slug}.{index}@example.com", Verification.verified),
        IdentityClaim(IdentityKind.phone, f"+3461{index:07d}", Verification.verified),
    )
    thread = THREADS[index % len(THREADS)]
    received = await actions.receive_message(
        session,
        account=account,
        inbox=inbox,
        inbound=InboundMessage(
            sender=claims, sender_name=name, content=thread[0], provider_id=f"demo-{index}-0"
        ),
    )
    assert received is not None
    conversation = received.conversation
    contact = await session.get(Contact, conversation.contact_id)
    assert contact is not None
    await update_contact(session, contact=contact, company=company)
    assignee = users[1 + index % 3] if index % 4 else None
    await actions.assign_conversation(
        session,
        conversation=conversation,
        actor=users[0],
        assignee_id=assignee.id if assignee else None,
        team_id=teams[index % 2].id,
    )
    author = assignee or users[1]
    policy = ChannelPolicy(identity_kind=IdentityKind.external)
    for turn, text in enumerate(thread[1:], start=1):
        if turn % 2 == 1:
            reply = await actions.send_reply(
                session,
                conversation=conversation,
                author=author,
                reply=actions.Reply(content=text, inbox=inbox, policy=policy),
            )
            await _delivered(session, reply)
        else:
            await actions.receive_message(
                session,
                account=account,
                inbox=inbox,
                inbound=InboundMessage(
                    sender=claims[:1],
                    sender_name=name,
                    content=text,
                    provider_id=f"demo-{index}-{turn}",
                ),
            )
    if index % 5 == 0:
        await actions.send_reply(
            session,
            conversation=conversation,
            author=author,
            reply=actions.Reply(content=NOTES[index % len(NOTES)], private=True),
        )
    status = [Status.open, Status.open, Status.pending, Status.resolved, Status.open][index % 5]
    if status != Status.open:
        await actions.change_status(session, conversation=conversation, actor=author, status=status)
    await events.commit(session)
    await _backdate(session, conversation.id, hours=1 + index * rng.uniform(0.6, 2.5))


async def _delivered(session: AsyncSession, reply: Message) -> None:
    """Seeded history was delivered long ago: no job should try to send it now."""
    await actions.record_sent(
        session, message=reply, provider_id=f"demo-out-{reply.id}", status=DeliveryStatus.read
    )
    if reply.outbox_job_id is not None:
        await outbox.complete(session, reply.outbox_job_id)


async def _backdate(session: AsyncSession, conversation_id: int, *, hours: float) -> None:
    """Spread the demo over the last days (demo data only: real rows keep their real times)."""
    shift = timedelta(hours=hours)
    now = utcnow()
    messages = list(
        await session.scalars(select(Message).where(Message.conversation_id == conversation_id))
    )
    for offset, message in enumerate(messages):
        message.created_at = now - shift + timedelta(minutes=offset * 7)
    conversation = await session.get(Conversation, conversation_id)
    assert conversation is not None
    conversation.created_at = now - shift
    conversation.last_activity_at = now - shift + timedelta(minutes=len(messages) * 7)
    await session.execute(
        update(Event)
        .where(Event.conversation_id == conversation_id)
        .values(created_at=now - shift + timedelta(minutes=3))
    )
    await events.commit(session)


async def _profiles(session: AsyncSession, rng: random.Random, account: Account) -> None:
    """Custom attributes, labels, a few custom events and two segments over the customers."""
    for label, kind, options in [
        ("Plan", "list", "Free\nPro\nEnterprise"),
        ("Monthly spend", "number", ""),
        ("Customer since", "date", ""),
    ]:
        await contact_actions.define_attribute(
            session, account_id=account.id, label=label, kind=kind, options=options
        )
    definitions = await attribute_definitions(session, account_id=account.id)
    vip = await contact_actions.create_label(
        session, account_id=account.id, name="VIP", color="purple"
    )
    churn = await contact_actions.create_label(
        session, account_id=account.id, name="Churn risk", color="orange"
    )
    contacts = await session.scalars(
        select(Contact).where(Contact.account_id == account.id).order_by(Contact.id)
    )
    for index, contact in enumerate(contacts):
        plan = ["Free", "Pro", "Enterprise"][index % 3]
        values = {
            "plan": plan,
            "monthly_spend": str({"Free": 0, "Pro": 49, "Enterprise": 890}[plan]),
            "customer_since": f"202{3 + index % 3}-0{1 + index % 9}-1{index % 10}",
        }
        await contact_actions.set_attributes(
            session, contact=contact, definitions=definitions, values=values
        )
        if plan == "Enterprise":
            await contact_actions.add_label(session, contact=contact, label=vip)
        if index % 4 == 3:
            await contact_actions.add_label(session, contact=contact, label=churn)
        if index % 2 == 0:
            await contact_actions.record_custom_event(
                session,
                account_id=account.id,
                contact_id=contact.id,
                name="order.placed",
                properties={"order": f"A-{1000 + index}", "total": round(rng.uniform(20, 400), 2)},
                occurred_at=utcnow() - timedelta(hours=rng.uniform(2, 48)),
            )
    await create_segment(
        session,
        account_id=account.id,
        name="VIP customers",
        description="Enterprise customers we look after personally",
        filters={"conditions": [{"type": "label", "label_id": vip.id}]},
    )
    await create_segment(
        session,
        account_id=account.id,
        name="Paying, waiting on us",
        description="Pro or Enterprise with an open conversation",
        filters={
            "conditions": [
                {"type": "attribute", "key": "monthly_spend", "op": "gt", "value": 0},
                {"type": "open_conversation", "op": "has"},
            ]
        },
    )
    await events.commit(session)
