"""Signing in and out, sessions, CSRF, rate limits, roles and API tokens."""

import pytest

from rapport.domain.agents.models import Role
from rapport.web.app import SESSION_COOKIE
from tests.conftest import make_settings
from tests.support.factory import PASSWORD, csrf_of, login


async def test_pages_need_a_session(client):
    response = await client.get("/conversations")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/conversations"


async def test_htmx_requests_are_redirected_by_header(client):
    response = await client.get("/conversations", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login")


async def test_sign_in_with_the_right_password_only(client, factory):
    account = await factory.account()
    user = await factory.user(account)
    page = await client.get("/login")
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    wrong = await client.post(
        "/login", data={"email": user.email, "password": "nope", "csrf_token": token}
    )
    assert wrong.status_code == 401 and "do not match" in wrong.text
    unknown = await client.post(
        "/login", data={"email": "ghost@example.com", "password": "nope", "csrf_token": token}
    )
    assert unknown.status_code == 401 and unknown.text.count("do not match") == 1  # same answer
    await login(client, user)
    assert (await client.get("/conversations")).status_code == 200


async def test_the_session_cookie_is_http_only_and_same_site(client, factory):
    account = await factory.account()
    user = await factory.user(account)
    page = await client.get("/login")
    cookie = page.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    await login(client, user)


async def test_cookies_are_secure_behind_https(db_url, tmp_path):
    settings = make_settings(db_url, tmp_path, public_url="https://support.example.com")
    assert settings.secure_cookies


async def test_state_changing_forms_need_the_csrf_token(client, factory):
    account = await factory.account()
    user = await factory.user(account)
    await login(client, user)
    refused = await client.post("/profile", data={"name": "Mallory"})
    assert refused.status_code == 403
    forged = await client.post("/profile", data={"name": "Mallory", "csrf_token": "guess"})
    assert forged.status_code == 403
    token = await csrf_of(client)
    accepted = await client.post("/profile", data={"name": "Ana", "csrf_token": token})
    assert accepted.status_code == 303
    assert (
        await client.post("/profile", data={"name": "Ana"}, headers={"X-CSRF-Token": token})
    ).status_code == 303


async def test_logout_ends_the_session(client, factory):
    account = await factory.account()
    user = await factory.user(account)
    token = await login(client, user)
    await client.post("/logout", data={"csrf_token": token})
    assert (await client.get("/conversations")).status_code == 303


async def test_a_password_change_ends_every_other_session(app, factory):
    import httpx

    account = await factory.account()
    user = await factory.user(account)
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as laptop,
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as phone,
    ):
        token = await login(laptop, user)
        await login(phone, user)
        changed = await laptop.post(
            "/profile/password",
            data={
                "current_password": PASSWORD,
                "new_password": "a much better one",
                "csrf_token": token,
            },
        )
        assert changed.status_code == 200 and "Other sessions were signed out" in changed.text
        assert (await laptop.get("/conversations")).status_code == 200
        assert (await phone.get("/conversations")).status_code == 303


async def test_a_wrong_current_password_changes_nothing(client, factory):
    account = await factory.account()
    user = await factory.user(account)
    token = await login(client, user)
    response = await client.post(
        "/profile/password",
        data={
            "current_password": "wrong",
            "new_password": "a much better one",
            "csrf_token": token,
        },
    )
    assert response.status_code == 422
    assert (await client.get("/conversations")).status_code == 200


async def test_login_is_rate_limited(db_url, tmp_path, factory):
    import httpx

    from rapport.web.app import create_app

    settings = make_settings(db_url, tmp_path, login_rate_limit="3/minute")
    application = create_app(settings)
    application.state.services = factory.services
    factory.services.settings = settings
    account = await factory.account()
    user = await factory.user(account)
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        page = await client.get("/login")
        token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        statuses = []
        for _ in range(4):
            response = await client.post(
                "/login", data={"email": user.email, "password": "guess", "csrf_token": token}
            )
            statuses.append(response.status_code)
        assert statuses == [401, 401, 401, 429]
        blocked = await client.post(
            "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token}
        )
        assert blocked.status_code == 429  # even the right password waits


@pytest.mark.parametrize(
    "path", ["/settings/inboxes", "/settings/users", "/settings/teams", "/settings/account"]
)
async def test_agents_cannot_reach_admin_pages(client, factory, path):
    account = await factory.account()
    agent = await factory.user(account, role=Role.agent)
    await login(client, agent)
    assert (await client.get(path)).status_code == 404


async def test_admins_can(client, factory):
    account = await factory.account()
    admin = await factory.user(account, role=Role.admin)
    await login(client, admin)
    assert (await client.get("/settings/users")).status_code == 200


async def test_api_tokens_are_shown_once_stored_hashed_and_revocable(client, services, factory):
    from sqlalchemy import select

    from rapport.domain.agents.models import ApiToken

    account = await factory.account()
    user = await factory.user(account)
    csrf = await login(client, user)
    page = await client.post("/profile/tokens", data={"name": "CRM sync", "csrf_token": csrf})
    plain = page.text.split('id="new-token">')[1].split("<")[0]
    assert plain.startswith("rpt_")
    async with services.read_session() as session:
        stored = await session.scalar(select(ApiToken))
    assert plain not in (stored.token_hash, stored.prefix)
    api = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {plain}"})
    assert api.status_code == 200 and api.json()["email"] == user.email
    assert (
        await client.get("/api/v1/me", headers={"Authorization": "Bearer rpt_wrong"})
    ).status_code == 401
    assert (await client.get("/api/v1/me")).status_code == 401  # the session cookie does not count
    await client.post(f"/profile/tokens/{stored.id}/revoke", data={"csrf_token": csrf})
    assert (
        await client.get("/api/v1/me", headers={"Authorization": f"Bearer {plain}"})
    ).status_code == 401
