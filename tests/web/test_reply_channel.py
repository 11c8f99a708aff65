"""Choosing the reply channel: every address x inbox the contact can be reached on, each judged
by its channel's policy and explained; the server judges again on send and the reply goes out
on the chosen route, in the same conversation."""

from datetime import timedelta
from html.parser import HTMLParser

from sqlalchemy import select

from rapport.domain import events
from rapport.domain.contacts.models import Identity, IdentityKind, Verification
from rapport.domain.conversations.models import Conversation, Message
from rapport.domain.inboxes.actions import create_inbox
from rapport.domain.inboxes.models import Inbox
from rapport.domain.ports import IdentityClaim
from rapport.web.sandbox.providers.meta import SANDBOX_TEMPLATES
from tests.support.channels import channel_inbox
from tests.support.factory import login
from tests.support.fakes import running_twilio, sms_config
from tests.support.meta import fake_meta_server, make_inbox, run_jobs, whatsapp_config

PHONE = "+34612345678"
SECOND_PHONE = "+34699111222"
EMAIL = "lucia@example.com"


class _Options(HTMLParser):
    """The reply box's channel options: value, disabled, selected, data attributes, label."""

    def __init__(self):
        super().__init__()
        self.options, self._in_route, self._current = [], False, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "select":
            self._in_route = attrs.get("id") == "reply-route"
        if tag == "option" and self._in_route:
            self._current = {**attrs, "label": ""}
            self.options.append(self._current)

    def handle_data(self, data):
        if self._current is not None:
            self._current["label"] += data

    def handle_endtag(self, tag):
        if tag == "option":
            if self._current is not None:
                self._current["label"] = " ".join(self._current["label"].split())
            self._current = None
        if tag == "select":
            self._in_route = False


def options_of(html):
    parser = _Options()
    parser.feed(html)
    return parser.options


def phone(value=PHONE, kind=IdentityKind.phone):
    return (IdentityClaim(kind, value, Verification.provider),)


async def _age_incoming(services, conversation_id, hours):
    """Time travel: the customer's messages were written `hours` ago."""
    async with services.session() as session:
        for message in await session.scalars(
            select(Message).where(Message.conversation_id == conversation_id)
        ):
            message.created_at -= timedelta(hours=hours)
        conversation = await session.get(Conversation, conversation_id)
        conversation.last_incoming_at -= timedelta(hours=hours)
        await events.commit(session)


async def _post(client, csrf, conversation_id, **data):
    return await client.post(
        f"/conversations/{conversation_id}/messages",
        data=data,
        headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
    )


async def test_every_address_on_every_inbox_is_listed_and_unreachable_ones_say_why(
    client, services, factory
):
    async with fake_meta_server() as meta, running_twilio(client) as twilio:
        account = await factory.account(default_region="ES")
        whatsapp = await make_inbox(
            services, account, "whatsapp", whatsapp_config(meta.base_url), name="WhatsApp line"
        )
        sms = await channel_inbox(services, account, "sms", sms_config(twilio), name="SMS line")
        old_sms = await channel_inbox(services, account, "sms", sms_config(twilio), name="Old SMS")
        async with services.session() as session:
            row = await session.get(Inbox, old_sms.id)
            row.is_active = False
            await create_inbox(
                session,
                account_id=account.id,
                name="Bot",
                channel="telegram",
                config={},
                box=services.box,
            )
            await events.commit(session)
        agent = await factory.user(account)
        received = await factory.receive(account, whatsapp, claims=phone())
        await factory.receive(account, sms, claims=phone(SECOND_PHONE) + phone())
        await factory.receive(account, whatsapp, claims=phone(), text="latest on WhatsApp")
        async with services.session() as session:
            second = await session.scalar(select(Identity).where(Identity.value == SECOND_PHONE))
            second.opted_out_at = second.last_seen_at  # STOP by SMS from the second phone
            await events.commit(session)

        await login(client, agent)
        page = await client.get(f"/conversations/{received.conversation.id}")

    options = options_of(page.text)
    labels = [o["label"] for o in options]
    # The default is the channel of the last incoming message, first and selected.
    assert "selected" in options[0] and labels[0].startswith("WhatsApp · WhatsApp line → +346")
    assert "last used by the customer" in labels[0]
    assert options[0]["data-window"].startswith("The 24-hour window is open until")
    by_label = {o["label"]: o for o in options}
    sms_routes = [o for o in options if "SMS line" in o["label"]]
    assert {o["label"].split("→ ")[1].split(" ")[0] for o in sms_routes} == {PHONE, SECOND_PHONE}
    opted_out = next(o for o in sms_routes if SECOND_PHONE in o["label"])
    assert "disabled" in opted_out and "opted out" in opted_out["data-reason"]
    assert not any("disabled" in o for o in sms_routes if PHONE in o["label"].split("→ ")[1])
    old = next(o for label, o in by_label.items() if "Old SMS" in label)
    assert "disabled" in old and old["data-reason"] == "this inbox is disabled"
    bot = next(o for label, o in by_label.items() if "Bot" in label)
    assert "disabled" in bot and bot["data-reason"] == "no address on this channel"
    assert sms_routes[0]["data-channel"] == "sms" and sms_routes[0]["data-max-length"] == "1600"
    assert 'data-gsm7-basic="' in page.text  # the live segment counter's alphabet


async def test_a_closed_whatsapp_window_takes_only_a_checked_template(
    client, services, factory, worker
):
    async with fake_meta_server() as meta:
        meta.templates = [dict(t) for t in SANDBOX_TEMPLATES]
        account = await factory.account(default_region="ES")
        whatsapp = await make_inbox(
            services, account, "whatsapp", whatsapp_config(meta.base_url), name="WhatsApp line"
        )
        agent = await factory.user(account)
        received = await factory.receive(account, whatsapp, claims=phone(), name="Lucía")
        conversation_id = received.conversation.id
        await _age_incoming(services, conversation_id, 30)
        csrf = await login(client, agent)
        page = await client.get(f"/conversations/{conversation_id}")
        [option] = options_of(page.text)
        assert option["data-needs-template"] == "true"
        assert "reply window is closed" in option["data-reason"]
        assert 'class="template-picker"' in page.text
        assert "order_update (en)" in page.text and "seguimiento (es)" in page.text
        assert 'data-fields="1,2"' in page.text

        route = option["value"]
        free = await _post(client, csrf, conversation_id, content="Hi again", route=route)
        assert free.status_code == 409 and "choose a template" in free.text
        unknown = await _post(
            client,
            csrf,
            conversation_id,
            route=route,
            template_name="made_up",
            template_language="en",
            template_vars=["a"],
        )
        assert unknown.status_code == 422 and "approved templates" in unknown.text
        missing = await _post(
            client,
            csrf,
            conversation_id,
            route=route,
            template_name="order_update",
            template_language="en",
            template_vars=["Lucía"],
        )
        assert missing.status_code == 422 and "every variable" in missing.text
        sent = await _post(
            client,
            csrf,
            conversation_id,
            route=route,
            template_name="order_update",
            template_language="en",
            template_vars=["Lucía", "A-1042"],
        )
        assert sent.status_code == 200
        assert "Hi Lucía, your order A-1042 is on its way." in sent.text
        await run_jobs(services, worker)

    [out] = meta.sent
    assert out.to == PHONE.lstrip("+")
    assert out.body["type"] == "template"
    assert out.body["template"]["name"] == "order_update"
    assert out.body["template"]["components"][0]["parameters"] == [
        {"type": "text", "text": "Lucía"},
        {"type": "text", "text": "A-1042"},
    ]
    async with services.read_session() as session:
        message = await session.scalar(select(Message).where(Message.direction == "outgoing"))
    assert message.conversation_id == conversation_id and message.status == "sent"
    assert message.content_type == "template"


async def test_a_closed_window_without_templates_is_disabled_with_the_reason(
    client, services, factory
):
    async with fake_meta_server() as meta:
        meta.templates = [{**t, "status": "PENDING"} for t in SANDBOX_TEMPLATES]
        account = await factory.account(default_region="ES")
        whatsapp = await make_inbox(
            services, account, "whatsapp", whatsapp_config(meta.base_url), name="WhatsApp line"
        )
        agent = await factory.user(account)
        received = await factory.receive(account, whatsapp, claims=phone())
        await _age_incoming(services, received.conversation.id, 30)
        csrf = await login(client, agent)
        page = await client.get(f"/conversations/{received.conversation.id}")
        [option] = options_of(page.text)
        refused = await _post(
            client,
            csrf,
            received.conversation.id,
            route=option["value"],
            template_name="order_update",
            template_language="en",
            template_vars=["a", "b"],
        )
    assert "disabled" in option
    assert option["data-reason"] == "the 24-hour window is closed and there is no approved template"
    assert refused.status_code == 422  # the browser cannot force a template the provider lacks


async def test_the_reply_goes_to_the_chosen_number_and_sms_length_is_checked(
    client, services, factory, worker
):
    async with running_twilio(client) as twilio:
        account = await factory.account(default_region="ES")
        sms = await channel_inbox(services, account, "sms", sms_config(twilio), name="SMS line")
        agent = await factory.user(account)
        received = await factory.receive(account, sms, claims=phone() + phone(SECOND_PHONE))
        csrf = await login(client, agent)
        page = await client.get(f"/conversations/{received.conversation.id}")
        second = next(o for o in options_of(page.text) if SECOND_PHONE in o["label"])
        too_long = await _post(
            client, csrf, received.conversation.id, content="a" * 1601, route=second["value"]
        )
        assert too_long.status_code == 422 and "longer than this channel allows" in too_long.text
        ok = await _post(
            client,
            csrf,
            received.conversation.id,
            content="¿Te llamo mañana?",
            route=second["value"],
        )
        assert ok.status_code == 200
        await worker.drain()
    [create] = twilio.creates
    assert create["To"] == SECOND_PHONE and create["Body"] == "¿Te llamo mañana?"


async def test_a_route_naming_someone_elses_address_is_refused(client, services, factory):
    account = await factory.account(default_region="ES")
    async with services.session() as session:
        sms = await create_inbox(
            session,
            account_id=account.id,
            name="SMS",
            channel="sms",
            config={},
            box=services.box,
        )
        await events.commit(session)
    agent = await factory.user(account)
    mine = await factory.receive(account, sms, claims=phone())
    other = await factory.receive(account, sms, claims=phone(SECOND_PHONE))
    async with services.read_session() as session:
        foreign = await session.scalar(
            select(Identity.id).where(Identity.contact_id == other.conversation.contact_id)
        )
    csrf = await login(client, agent)
    response = await _post(
        client, csrf, mine.conversation.id, content="hi", route=f"{sms.id}:{foreign}"
    )
    assert response.status_code == 422 and "not this contact's" in response.text


async def test_an_email_reply_keeps_the_subject_the_agent_sees(client, services, factory):
    account = await factory.account()
    async with services.session() as session:
        mail = await create_inbox(
            session,
            account_id=account.id,
            name="Support mail",
            channel="email",
            config={},
            box=services.box,
        )
        await events.commit(session)
    agent = await factory.user(account)
    received = await factory.receive(
        account, mail, claims=(IdentityClaim(IdentityKind.email, EMAIL, Verification.provider),)
    )
    csrf = await login(client, agent)
    page = await client.get(f"/conversations/{received.conversation.id}")
    [option] = options_of(page.text)
    assert option["data-channel"] == "email" and 'name="subject"' in page.text
    response = await _post(
        client,
        csrf,
        received.conversation.id,
        content="Here you go",
        route=option["value"],
        subject="Re: Invoice 2041",
    )
    assert response.status_code == 200
    async with services.read_session() as session:
        message = await session.scalar(select(Message).where(Message.direction == "outgoing"))
    assert message.payload["subject"] == "Re: Invoice 2041"
