"""JSON API v1: contacts and identities, outbound conversations, auth, tenancy, error answers."""

import pytest
from sqlalchemy import func, select

from rapport.domain.agents.models import Role
from rapport.domain.contacts.models import Contact, Identity
from rapport.domain.conversations.actions import StoredFile
from rapport.domain.conversations.models import Conversation, Message
from tests.support.api import api_headers


@pytest.fixture
async def acme(factory):
    return await factory.account("Acme", default_region="ES")


async def _count(services, model, *where):
    async with services.read_session() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.mark.parametrize(
    "authorization", [None, "", "Bearer", "Bearer rpt_not-a-token", "Basic dXNlcjpwYXNz"]
)
async def test_calls_without_a_valid_token_are_401_json(client, authorization):
    headers = {"Authorization": authorization} if authorization is not None else {}
    for method, url in [("GET", "/api/v1/contacts"), ("POST", "/api/v1/contacts")]:
        response = await client.request(method, url, headers=headers, json={})
        assert response.status_code == 401
        assert response.json() == {"detail": "a valid API token is required"}
        assert response.headers["www-authenticate"] == "Bearer"


async def test_a_revoked_token_is_refused(client, services, factory, acme):
    from rapport.domain import events
    from rapport.domain.agents.actions import create_api_token, revoke_api_token

    user = await factory.user(acme)
    async with services.session() as session:
        token, plain = await create_api_token(session, user=user, name="x")
        await revoke_api_token(session, user=user, token_id=token.id)
        await events.commit(session)
    response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {plain}"})
    assert response.status_code == 401


async def test_contact_create_read_update_search_and_page(client, services, factory, acme):
    headers = await api_headers(services, await factory.user(acme))
    created = await client.post(
        "/api/v1/contacts",
        headers=headers,
        json={
            "name": "Ana García",
            "company": "Olivos SL",
            "identities": [
                {"kind": "phone", "value": "612 34 56 78"},
                {"kind": "email", "value": "  Ana@Example.COM "},
            ],
        },
    )
    assert created.status_code == 201, created.text
    contact = created.json()
    kinds = {i["kind"]: i for i in contact["identities"]}
    assert kinds["phone"]["value"] == "+34612345678"  # E.164 with the account's region
    assert kinds["email"]["value"] == "ana@example.com"
    assert {i["verification"] for i in contact["identities"]} == {"agent"}

    got = await client.get(f"/api/v1/contacts/{contact['id']}", headers=headers)
    assert got.json()["name"] == "Ana García"
    patched = await client.patch(
        f"/api/v1/contacts/{contact['id']}", headers=headers, json={"company": "Olivos SA"}
    )
    assert patched.json()["company"] == "Olivos SA" and patched.json()["name"] == "Ana García"

    for n in range(3):
        await client.post("/api/v1/contacts", headers=headers, json={"name": f"Other {n}"})
    found = await client.get("/api/v1/contacts", headers=headers, params={"q": "+3461234"})
    assert [c["id"] for c in found.json()["items"]] == [contact["id"]]
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/contacts", headers=headers, params=params)).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 4 and len(set(seen)) == 4
    bad = await client.get("/api/v1/contacts", headers=headers, params={"cursor": "nonsense"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "cursor"]


async def test_lookup_normalises_the_value_like_an_arriving_message(
    client, services, factory, acme
):
    headers = await api_headers(services, await factory.user(acme))
    made = await client.post(
        "/api/v1/contacts",
        headers=headers,
        json={"identities": [{"kind": "phone", "value": "+34 612-34-56-78"}]},
    )
    for value in ["612345678", "+34612345678", "0034 612 345 678"]:
        found = await client.get(
            "/api/v1/contacts/lookup", headers=headers, params={"kind": "phone", "value": value}
        )
        assert found.status_code == 200, value
        assert found.json()["id"] == made.json()["id"]
    missing = await client.get(
        "/api/v1/contacts/lookup", headers=headers, params={"kind": "email", "value": "no@x.org"}
    )
    assert missing.status_code == 404 and missing.json() == {"detail": "Not found"}
    invalid = await client.get(
        "/api/v1/contacts/lookup", headers=headers, params={"kind": "phone", "value": "abc"}
    )
    assert invalid.status_code == 422


async def test_identities_added_by_token_trust(client, services, factory, acme):
    admin = await factory.user(acme, role=Role.admin)
    plain = await api_headers(services, admin)
    trusted = await api_headers(services, admin, trusted=True)
    contact = (await client.post("/api/v1/contacts", headers=plain, json={"name": "Bo"})).json()
    url = f"/api/v1/contacts/{contact['id']}/identities"
    by_agent = await client.post(url, headers=plain, json={"kind": "email", "value": "bo@x.org"})
    assert by_agent.status_code == 201 and by_agent.json()["verification"] == "agent"
    verified = await client.post(url, headers=trusted, json={"kind": "external", "value": "crm-77"})
    assert verified.json()["verification"] == "verified"
    again = await client.post(url, headers=plain, json={"kind": "email", "value": "BO@x.org"})
    assert again.status_code == 201 and again.json()["id"] == by_agent.json()["id"]

    other = (await client.post("/api/v1/contacts", headers=plain, json={"name": "Cy"})).json()
    taken = await client.post(
        f"/api/v1/contacts/{other['id']}/identities",
        headers=plain,
        json={"kind": "email", "value": "bo@x.org"},
    )
    assert taken.status_code == 409 and "merge" in taken.json()["detail"]
    clash = await client.post(
        "/api/v1/contacts",
        headers=plain,
        json={"identities": [{"kind": "external", "value": "crm-77"}]},
    )
    assert clash.status_code == 409

    removed = await client.delete(f"{url}/{by_agent.json()['id']}", headers=plain)
    assert removed.status_code == 204
    left = (await client.get(f"/api/v1/contacts/{contact['id']}", headers=plain)).json()
    assert [i["kind"] for i in left["identities"]] == ["external"]
    gone = await client.delete(f"{url}/{by_agent.json()['id']}", headers=plain)
    assert gone.status_code == 404


async def test_only_admins_create_trusted_tokens(services, factory, acme):
    from rapport.domain.errors import Forbidden

    agent = await factory.user(acme)
    with pytest.raises(Forbidden):
        await api_headers(services, agent, trusted=True)


async def test_delete_erases_the_contact_and_its_history(client, services, factory, worker, acme):
    inbox = await factory.api_inbox(acme)
    photo = await services.files.save(b"\xff\xd8 a photo", suffix=".jpg")
    received = await factory.receive(
        acme,
        inbox,
        external_id="gone-1",
        text="forget me",
        files=[StoredFile("me.jpg", "image/jpeg", 10, photo)],
    )
    contact_id = received.conversation.contact_id
    agent = await api_headers(services, await factory.user(acme))
    supervisor = await api_headers(services, await factory.user(acme, role=Role.supervisor))
    url = f"/api/v1/contacts/{contact_id}"
    refused = await client.delete(url, headers=agent)
    assert refused.status_code == 403 and "supervisor" in refused.json()["detail"]
    assert (await client.delete(url, headers=supervisor)).status_code == 204
    assert (await client.get(url, headers=agent)).status_code == 404
    assert await _count(services, Contact) == 0
    assert await _count(services, Identity) == 0
    assert await _count(services, Conversation) == 0
    assert await _count(services, Message) == 0
    await worker.drain()  # the stored file goes once the erasure has committed
    assert not (services.settings.storage_dir / photo).exists()
    assert (await client.delete(url, headers=supervisor)).status_code == 404


async def test_another_accounts_contacts_are_404(client, services, factory, acme):
    globex = await factory.account("Globex")
    theirs = await api_headers(services, await factory.user(globex, role=Role.admin))
    made = await client.post(
        "/api/v1/contacts",
        headers=theirs,
        json={"name": "Secret", "identities": [{"kind": "email", "value": "s@globex.com"}]},
    )
    ours = await api_headers(services, await factory.user(acme, role=Role.admin))
    cid = made.json()["id"]
    for method, url, body in [
        ("GET", f"/api/v1/contacts/{cid}", None),
        ("PATCH", f"/api/v1/contacts/{cid}", {"name": "x"}),
        ("DELETE", f"/api/v1/contacts/{cid}", None),
        ("POST", f"/api/v1/contacts/{cid}/identities", {"kind": "email", "value": "a@b.co"}),
        ("GET", "/api/v1/contacts/lookup?kind=email&value=s@globex.com", None),
    ]:
        response = await client.request(method, url, headers=ours, json=body)
        assert response.status_code == 404, (method, url)
    listed = (await client.get("/api/v1/contacts", headers=ours)).json()
    assert listed["items"] == []
    # The same identity is free in another account: accounts never see each other.
    mine = await client.post(
        "/api/v1/contacts",
        headers=ours,
        json={"identities": [{"kind": "email", "value": "s@globex.com"}]},
    )
    assert mine.status_code == 201


async def test_an_outbound_conversation_sends_its_first_message(client, services, factory, acme):
    inbox = await factory.api_inbox(acme, outbound_url="https://integration.example/out")
    headers = await api_headers(services, await factory.user(acme))
    contact = (
        await client.post(
            "/api/v1/contacts",
            headers=headers,
            json={"name": "Di", "identities": [{"kind": "external", "value": "di-1"}]},
        )
    ).json()
    started = await client.post(
        "/api/v1/conversations",
        headers=headers,
        json={
            "contact_id": contact["id"],
            "inbox_id": inbox.id,
            "content": "Your order shipped",
            "client_id": "ship-1",
        },
    )
    assert started.status_code == 201, started.text
    conversation = started.json()
    assert conversation["contact_id"] == contact["id"] and conversation["channel"] == "api"
    messages = await client.get(
        f"/api/v1/conversations/{conversation['id']}/messages", headers=headers
    )
    [message] = messages.json()
    assert message["content"] == "Your order shipped" and message["status"] == "queued"
    listed = await client.get(
        "/api/v1/conversations", headers=headers, params={"contact_id": contact["id"]}
    )
    assert [c["id"] for c in listed.json()["items"]] == [conversation["id"]]
    of_contact = await client.get(
        f"/api/v1/contacts/{contact['id']}/conversations", headers=headers
    )
    assert [c["id"] for c in of_contact.json()] == [conversation["id"]]

    nobody = (await client.post("/api/v1/contacts", headers=headers, json={"name": "No"})).json()
    unreachable = await client.post(
        "/api/v1/conversations",
        headers=headers,
        json={"contact_id": nobody["id"], "inbox_id": inbox.id, "content": "hi"},
    )
    assert unreachable.status_code == 409
    assert await _count(services, Conversation) == 1  # the refused one left nothing behind


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/api/v1/contacts", {"name": "x", "role": "admin"}),  # unknown fields are refused
        ("/api/v1/contacts", {"name": "nul\u0000"}),
        ("/api/v1/contacts", {"identities": [{"kind": "fax", "value": "1"}]}),
        ("/api/v1/conversations", {"contact_id": 2**70, "inbox_id": 1, "content": "x"}),
    ],
)
async def test_bad_input_is_a_clear_422(client, services, factory, acme, url, body):
    headers = await api_headers(services, await factory.user(acme))
    response = await client.post(url, headers=headers, json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"]
    huge = await client.get(f"/api/v1/contacts/{2**64}", headers=headers)
    assert huge.status_code == 422


async def test_merge_then_unmerge_through_the_api(client, services, factory, acme):
    headers = await api_headers(services, await factory.user(acme))
    inbox = await factory.api_inbox(acme)
    one = await factory.receive(acme, inbox, external_id="crm-1", text="first")
    two = await factory.receive(acme, inbox, external_id="crm-2", text="second")
    survivor, merged = one.conversation.contact_id, two.conversation.contact_id
    done = await client.post(
        f"/api/v1/contacts/{survivor}/merges", headers=headers, json={"merged_id": merged}
    )
    assert done.status_code == 201, done.text
    record = done.json()
    assert record["survivor_id"] == survivor and record["merged_id"] == merged
    joined = (await client.get(f"/api/v1/contacts/{survivor}", headers=headers)).json()
    assert sorted(i["value"] for i in joined["identities"]) == ["crm-1", "crm-2"]
    gone = (await client.get(f"/api/v1/contacts/{merged}", headers=headers)).json()
    assert gone["merged_into_id"] == survivor
    listed = await client.get(f"/api/v1/contacts/{survivor}/merges", headers=headers)
    assert [m["id"] for m in listed.json()] == [record["id"]]
    twice = await client.post(
        f"/api/v1/contacts/{survivor}/merges", headers=headers, json={"merged_id": merged}
    )
    assert twice.status_code == 409

    undone = await client.post(f"/api/v1/merges/{record['id']}/unmerge", headers=headers)
    assert undone.status_code == 200 and undone.json()["unmerged_at"] is not None
    back = (await client.get(f"/api/v1/contacts/{merged}", headers=headers)).json()
    assert back["merged_into_id"] is None
    assert [i["value"] for i in back["identities"]] == ["crm-2"]
    again = await client.post(f"/api/v1/merges/{record['id']}/unmerge", headers=headers)
    assert again.status_code == 409
    itself = await client.post(
        f"/api/v1/contacts/{survivor}/merges", headers=headers, json={"merged_id": survivor}
    )
    assert itself.status_code == 422


async def test_an_admin_makes_a_trusted_token_on_the_profile_page(client, services, factory, acme):
    import re

    from rapport.domain.agents.models import ApiToken
    from tests.support.factory import login

    admin = await factory.user(acme, role=Role.admin)
    csrf = await login(client, admin)
    page = await client.post(
        "/profile/tokens", data={"csrf_token": csrf, "name": "backend", "trusted": "true"}
    )
    plain = re.search(r"rpt_[A-Za-z0-9_-]+", page.text).group(0)
    async with services.read_session() as session:
        token = await session.scalar(select(ApiToken))
    assert token.trusted is True
    headers = {"Authorization": f"Bearer {plain}"}
    made = await client.post(
        "/api/v1/contacts",
        headers=headers,
        json={"identities": [{"kind": "email", "value": "v@x.org"}]},
    )
    assert made.json()["identities"][0]["verification"] == "verified"


@pytest.mark.parametrize(
    "cursor",
    ["1e400:1", "9" * 30 + ":1", "1.000000:" + "9" * 30, "-5:1", "nan:1", ":", "1:"],
)
async def test_forged_cursors_are_422_not_a_crash(client, services, factory, acme, cursor):
    headers = await api_headers(services, await factory.user(acme))
    for url in ("/api/v1/contacts", "/api/v1/conversations"):
        response = await client.get(url, headers=headers, params={"cursor": cursor})
        assert response.status_code == 422, (url, cursor)


async def test_segments_list_get_and_their_contacts(client, services, factory, acme):
    from rapport.domain import events
    from rapport.domain.segments.actions import create_segment

    headers = await api_headers(services, await factory.user(acme))
    for n in range(3):
        await client.post(
            "/api/v1/contacts",
            headers=headers,
            json={"name": f"P{n}", "identities": [{"kind": "phone", "value": f"61234567{n}"}]},
        )
    await client.post("/api/v1/contacts", headers=headers, json={"name": "No phone"})
    async with services.session() as session:
        segment = await create_segment(
            session,
            account_id=acme.id,
            name="Reachable by phone",
            filters={"conditions": [{"type": "identity", "kind": "phone", "op": "has"}]},
        )
        await events.commit(session)
    listed = await client.get("/api/v1/segments", headers=headers)
    assert [s["name"] for s in listed.json()] == ["Reachable by phone"]
    got = await client.get(f"/api/v1/segments/{segment.id}", headers=headers)
    assert got.json()["filters"]["conditions"][0]["kind"] == "phone"
    url = f"/api/v1/segments/{segment.id}/contacts"
    first = (await client.get(url, headers=headers, params={"limit": 2})).json()
    assert first["count"] == 3 and len(first["items"]) == 2 and first["next_offset"] == 2
    rest = (await client.get(url, headers=headers, params={"offset": 2, "limit": 2})).json()
    assert len(rest["items"]) == 1 and rest["next_offset"] is None
    names = {c["name"] for c in first["items"] + rest["items"]}
    assert names == {"P0", "P1", "P2"}
    assert rest["items"][0]["identities"][0]["kind"] == "phone"

    globex = await factory.account("Globex")
    theirs = await api_headers(services, await factory.user(globex))
    assert (await client.get(url, headers=theirs)).status_code == 404
    assert (await client.get(f"/api/v1/segments/{segment.id}", headers=theirs)).status_code == 404
    assert (await client.get("/api/v1/segments", headers=theirs)).json() == []


async def test_the_openapi_document_holds_the_api_only_and_the_docs_are_served(client):
    spec = (await client.get("/api/openapi.json")).json()
    assert spec["paths"] and all(p.startswith("/api/v1/") for p in spec["paths"])
    for path in ("/api/v1/contacts/lookup", "/api/v1/segments", "/api/v1/webhooks"):
        assert path in spec["paths"]
    assert spec["components"]["securitySchemes"]["ApiToken"]["scheme"] == "bearer"
    page = await client.get("/api/docs")
    assert page.status_code == 200 and "/static/vendor/swagger-ui/swagger-ui-bundle.js" in page.text
    bundle = await client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js")
    assert bundle.status_code == 200


async def test_patch_sets_and_unsets_custom_attributes(client, services, factory, acme):
    from rapport.domain import events
    from rapport.domain.contacts.actions import define_attribute

    async with services.session() as session:
        await define_attribute(
            session,
            account_id=acme.id,
            label="Plan",
            kind="list",
            key="plan",
            options=["free", "pro"],
        )
        await define_attribute(
            session, account_id=acme.id, label="Seats", kind="number", key="seats"
        )
        await events.commit(session)
    headers = await api_headers(services, await factory.user(acme))
    contact = (await client.post("/api/v1/contacts", headers=headers, json={"name": "Eva"})).json()
    url = f"/api/v1/contacts/{contact['id']}"
    done = await client.patch(
        url, headers=headers, json={"attributes": {"plan": "pro", "seats": 3}}
    )
    assert done.status_code == 200, done.text
    assert done.json()["attributes"] == {"plan": "pro", "seats": 3}
    bad = await client.patch(
        url, headers=headers, json={"name": "Changed", "attributes": {"plan": "gold"}}
    )
    assert bad.status_code == 422 and bad.json()["field"] == "plan"
    unknown = await client.patch(url, headers=headers, json={"attributes": {"colour": "red"}})
    assert unknown.status_code == 422 and unknown.json()["field"] == "colour"
    after = (await client.get(url, headers=headers)).json()
    assert after["name"] == "Eva" and after["attributes"] == {"plan": "pro", "seats": 3}
    unset = await client.patch(url, headers=headers, json={"attributes": {"plan": None}})
    assert unset.json()["attributes"] == {"seats": 3}
