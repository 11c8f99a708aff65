"""The customer 360 page, contact settings, segments pages, the inbox contact panel and the
custom events API, through HTTP as a browser or an integration uses them."""

import re

from rapport.domain import events
from rapport.domain.agents.actions import create_api_token
from rapport.domain.agents.models import Role
from rapport.domain.conversations import actions
from rapport.domain.conversations.models import Conversation, Status
from tests.support.customers import cross_channel_history, phone_claim
from tests.support.factory import login
from tests.support.statements import sql_sent


async def _setup(services, factory, role=Role.admin):
    account = await factory.account(default_region="ES")
    agent = await factory.user(account, role=role, name="Ana Ruiz")
    history = await cross_channel_history(services, factory, account, agent)
    return account, agent, history


async def test_the_contact_page_shows_identities_and_one_timeline(client, services, factory):
    _account, agent, history = await _setup(services, factory)
    await login(client, agent)
    page = await client.get(f"/contacts/{history.contact_id}")
    assert page.status_code == 200
    html = page.text
    assert 'data-kind="phone" data-verification="provider"' in html
    assert "from the channel" in html
    assert "Moved from API to SMS" in html
    assert "order.placed" in html and "A-1001" in html
    assert "Checked the warehouse" in html and "Private note" in html
    assert "Ana Ruiz assigned conversation" in html
    # Newest first: the custom event comes before the first message.
    assert html.index("order.placed") < html.index("Where is my order?")


async def test_load_older_pages_through_the_timeline(client, services, factory):
    account, agent, history = await _setup(services, factory)
    for n in range(35):
        await factory.receive(account, history.sms, text=f"follow-up {n}", claims=phone_claim())
    await login(client, agent)
    page = await client.get(f"/contacts/{history.contact_id}")
    assert "follow-up 34" in page.text and "Where is my order?" not in page.text
    before = re.search(r"timeline\?before=(\d+)", page.text).group(1)
    older = await client.get(f"/contacts/{history.contact_id}/timeline?before={before}")
    assert "Where is my order?" in older.text and "follow-up 34" not in older.text
    assert "Load older" not in older.text


async def test_attributes_are_edited_with_clear_errors_that_lose_nothing(client, services, factory):
    _account, agent, history = await _setup(services, factory)
    csrf = await login(client, agent)
    headers = {"X-CSRF-Token": csrf}
    for label, kind, options in [("Plan", "list", "Free\nPro"), ("Spend", "number", "")]:
        created = await client.post(
            "/settings/attributes",
            data={"label": label, "kind": kind, "options": options},
            headers=headers,
        )
        assert created.status_code == 303
    duplicate = await client.post(
        "/settings/attributes", data={"label": "Plan", "kind": "text"}, headers=headers
    )
    assert duplicate.status_code == 422
    assert "an attribute with this key already exists" in duplicate.text
    url = f"/contacts/{history.contact_id}/attributes"
    bad = await client.post(url, data={"attr.plan": "Pro", "attr.spend": "a lot"}, headers=headers)
    assert bad.status_code == 422
    assert "enter a number, such as 42 or 3.5" in bad.text
    assert 'value="a lot"' in bad.text  # what was typed is still there
    good = await client.post(url, data={"attr.plan": "Pro", "attr.spend": "12.5"}, headers=headers)
    assert good.status_code == 303
    page = await client.get(f"/contacts/{history.contact_id}")
    assert 'value="12.5"' in page.text and "<option selected>Pro</option>" in page.text


async def test_labels_are_added_and_removed_on_the_contact_page(client, services, factory):
    _account, agent, history = await _setup(services, factory, role=Role.agent)
    csrf = await login(client, agent)
    headers = {"X-CSRF-Token": csrf}
    url = f"/contacts/{history.contact_id}/labels"
    assert (await client.post(url, data={"new_label": "VIP"}, headers=headers)).status_code == 303
    page = await client.get(f"/contacts/{history.contact_id}")
    assert '<span class="label-chip">VIP</span>' in page.text
    label_id = re.search(r"/labels/(\d+)/delete", page.text).group(1)
    removed = await client.post(f"{url}/{label_id}/delete", headers=headers)
    assert removed.status_code == 303
    page = await client.get(f"/contacts/{history.contact_id}")
    assert "label-chip" not in page.text.split('id="labels"')[1].split("</section>")[0]
    refused = await client.post(url, data={}, headers=headers)
    assert refused.status_code == 422


async def test_settings_for_labels_need_an_admin(client, services, factory):
    account = await factory.account()
    agent = await factory.user(account, role=Role.agent)
    await login(client, agent)
    assert (await client.get("/settings/labels")).status_code == 404
    assert (await client.get("/settings/attributes")).status_code == 404


async def test_segments_are_created_viewed_edited_and_deleted(client, services, factory):
    account, agent, history = await _setup(services, factory)
    await factory.receive(account, history.api, external_id="nobody-else", name="Other")
    csrf = await login(client, agent)
    headers = {"X-CSRF-Token": csrf}
    form = {
        "name": "Has a phone",
        "match": "all",
        "cond_field": ["identity:phone", ""],
        "cond_op": ["has", "equals"],
        "cond_value": ["", ""],
    }
    created = await client.post("/segments", data=form, headers=headers)
    assert created.status_code == 303
    url = created.headers["location"]
    with sql_sent(services) as seen:
        page = await client.get(url)
    assert "1 contact" in page.text and "Lucía" in page.text and "Other" not in page.text
    # The segment is read once, and so are the attribute definitions its filter compiles with.
    assert sum("FROM attribute_definitions" in sql for sql in seen) == 1
    assert sum("FROM segments" in sql for sql in seen) == 1
    listing = await client.get("/segments")
    assert "Has a phone" in listing.text
    bad = await client.post(
        url,
        data={**form, "cond_field": ["last_active"], "cond_op": ["within"], "cond_value": ["soon"]},
        headers=headers,
    )
    assert bad.status_code == 422 and "not valid" in bad.text
    assert 'value="soon"' in bad.text
    edited = await client.post(
        url, data={**form, "cond_op": ["has_not", "equals"]}, headers=headers
    )
    assert edited.status_code == 303
    assert "Other" in (await client.get(url)).text
    assert "has_not" in (await client.get(url + "/edit")).text
    deleted = await client.post(url + "/delete", headers=headers)
    assert deleted.status_code == 303
    assert (await client.get(url)).status_code == 404


async def test_the_inbox_panel_shows_earlier_conversations_without_searching(
    client, services, factory
):
    account, agent, history = await _setup(services, factory)
    async with services.session() as session:
        conversation = await session.get(Conversation, history.conversation.id)
        await actions.change_status(
            session, conversation=conversation, actor=agent, status=Status.resolved
        )
        await events.commit(session)
    # The customer comes back later, by SMS: a new conversation.
    later = await factory.receive(account, history.sms, text="Me again", claims=phone_claim())
    assert later.conversation.id != history.conversation.id
    csrf = await login(client, agent)
    view = await client.get(f"/conversations/{later.conversation.id}")
    panel = view.text.split('id="contact-panel"')[1]
    assert "Where is my order?" in panel and "Texting you instead" in panel
    assert f"#{history.conversation.id}" in panel
    # Assigning re-renders the header; the panel is reloaded on its own and still has it.
    await client.post(
        f"/conversations/{later.conversation.id}/assign",
        data={"assignee": "me", "team": "keep"},
        headers={"X-CSRF-Token": csrf},
    )
    fragment = await client.get(f"/conversations/{later.conversation.id}/panel")
    assert 'id="contact-panel"' in fragment.text and "Where is my order?" in fragment.text


async def test_custom_events_through_the_api(client, services, factory):
    _account, agent, history = await _setup(services, factory)
    other = await factory.account("Globex")
    async with services.session() as session:
        _token, plain = await create_api_token(session, user=agent, name="shop")
        await events.commit(session)
    auth = {"Authorization": f"Bearer {plain}"}
    url = f"/api/v1/contacts/{history.contact_id}/events"
    body = {
        "name": "page.visited",
        "properties": {"path": "/pricing"},
        "occurred_at": "2026-11-20T10:00:00+01:00",
    }
    created = await client.post(url, json=body, headers=auth)
    assert created.status_code == 201, created.text
    data = created.json()
    assert data["name"] == "page.visited" and data["seq"] > 0
    assert data["occurred_at"].startswith("2026-11-20T09:00:00")
    bad = await client.post(url, json={"name": "bad name!"}, headers=auth)
    assert bad.status_code == 422 and bad.json()["field"] == "name"
    big = await client.post(url, json={"name": "x", "properties": {"b": "x" * 9000}}, headers=auth)
    assert big.status_code == 422 and "8 KB" in big.json()["detail"]
    globex_contact = (await factory.receive(other, await factory.api_inbox(other))).conversation
    foreign = await client.post(
        f"/api/v1/contacts/{globex_contact.contact_id}/events", json={"name": "x"}, headers=auth
    )
    assert foreign.status_code == 404
    assert (await client.post(url, json={"name": "x"})).status_code == 401


async def test_admins_rename_and_delete_attributes_and_labels(client, services, factory):
    account = await factory.account()
    admin = await factory.user(account, role=Role.admin)
    csrf = await login(client, admin)
    headers = {"X-CSRF-Token": csrf}
    await client.post(
        "/settings/attributes",
        data={"label": "Tier", "kind": "list", "options": "Gold, Silver"},
        headers=headers,
    )
    page = await client.get("/settings/attributes")
    definition_id = re.search(r"/settings/attributes/(\d+)/delete", page.text).group(1)
    renamed = await client.post(
        f"/settings/attributes/{definition_id}",
        data={"label": "Support tier", "options": "Gold\nSilver\nBronze"},
        headers=headers,
    )
    assert renamed.status_code == 303
    page = await client.get("/settings/attributes")
    assert "Support tier" in page.text and "Bronze" in page.text
    form = await client.get("/segments/new")
    assert 'data-ops="equals not_equals is_set is_not_set"' in form.text
    await client.post(f"/settings/attributes/{definition_id}/delete", headers=headers)
    assert "Support tier" not in (await client.get("/settings/attributes")).text

    await client.post(
        "/settings/labels", data={"name": "Churn risk", "color": "orange"}, headers=headers
    )
    page = await client.get("/settings/labels")
    assert '<span class="label-chip c-orange">Churn risk</span>' in page.text
    label_id = re.search(r"/settings/labels/(\d+)/delete", page.text).group(1)
    bad = await client.post(
        f"/settings/labels/{label_id}", data={"name": "x", "color": "#f00"}, headers=headers
    )
    assert bad.status_code == 422 and "choose a colour from the list" in bad.text
    await client.post(f"/settings/labels/{label_id}/delete", headers=headers)
    assert "Churn risk" not in (await client.get("/settings/labels")).text


async def test_the_contact_page_in_spanish(client, services, factory):
    account = await factory.account(default_region="ES")
    agent = await factory.user(account, locale="es", name="Ana Ruiz")
    history = await cross_channel_history(services, factory, account, agent)
    await login(client, agent)
    html = (await client.get(f"/contacts/{history.contact_id}")).text
    assert "Historial" in html and "del canal" in html
    assert "Pasó de API a SMS" in html
    assert "Ana Ruiz asignó la conversación" in html
