"""Test data through the real domain actions (never raw inserts), so events and invariants hold."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from itertools import count
from typing import Any

import httpx

from rapport.domain import events
from rapport.domain.accounts.actions import create_account
from rapport.domain.accounts.models import Account
from rapport.domain.agents.actions import create_team, create_user, set_team_members
from rapport.domain.agents.models import Role, Team, User
from rapport.domain.contacts.models import IdentityKind, Verification
from rapport.domain.conversations import actions
from rapport.domain.conversations.actions import Received, StoredFile
from rapport.domain.inboxes.actions import create_inbox
from rapport.domain.inboxes.models import Inbox
from rapport.domain.ports import IdentityClaim, InboundMessage
from rapport.lib import signatures
from rapport.services import Services

PASSWORD = "correct horse battery"
API_SECRET = "api-inbox-secret-0123456789abcdef"
_seq = count(1)


class Factory:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def account(self, name: str = "Acme", **kwargs: Any) -> Account:
        async with self.services.session() as session:
            account = await create_account(session, name=name, **kwargs)
            await events.commit(session)
            return account

    async def user(
        self,
        account: Account,
        *,
        role: Role = Role.agent,
        name: str | None = None,
        email: str | None = None,
        password: str = PASSWORD,
        locale: str | None = None,
    ) -> User:
        n = next(_seq)
        async with self.services.session() as session:
            user = await create_user(
                session,
                account_id=account.id,
                email=email or f"user{n}@example.com",
                name=name or f"Agent {n}",
                password=password,
                role=role,
                locale=locale,
            )
            await events.commit(session)
            return user

    async def team(self, account: Account, name: str, members: list[User] = ()) -> Team:  # type: ignore[assignment]
        async with self.services.session() as session:
            team = await create_team(session, account_id=account.id, name=name)
            await set_team_members(session, team=team, user_ids=[m.id for m in members])
            await events.commit(session)
            return team

    async def api_inbox(
        self,
        account: Account,
        *,
        name: str = "Backend",
        outbound_url: str | None = None,
        secret: str = API_SECRET,
    ) -> Inbox:
        async with self.services.session() as session:
            inbox = await create_inbox(
                session,
                account_id=account.id,
                name=name,
                channel="api",
                config={"secret": secret, "previous_secret": "", "outbound_url": outbound_url},
                box=self.services.box,
            )
            await events.commit(session)
            return inbox

    async def receive(
        self,
        account: Account,
        inbox: Inbox,
        *,
        text: str = "Hello",
        external_id: str = "cust-1",
        name: str = "Customer",
        provider_id: str | None = None,
        claims: tuple[IdentityClaim, ...] | None = None,
        files: Sequence[StoredFile] = (),
    ) -> Received:
        inbound = InboundMessage(
            sender=claims
            or (IdentityClaim(IdentityKind.external, external_id, Verification.verified),),
            sender_name=name,
            content=text,
            provider_id=provider_id or f"msg-{next(_seq)}",
        )
        async with self.services.session() as session:
            # Load fresh rows: merging a stale Account would write back its old event counter.
            account = await session.get(Account, account.id)
            inbox = await session.get(Inbox, inbox.id)
            assert account is not None and inbox is not None
            received = await actions.receive_message(
                session, account=account, inbox=inbox, inbound=inbound, files=files
            )
            await events.commit(session)
            assert received is not None
            return received


def signed_api_call(
    body: dict[str, Any], secret: str = API_SECRET, *, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    stamp, signature = signatures.sign(secret, raw, timestamp=timestamp)
    return raw, {
        "Content-Type": "application/json",
        signatures.TIMESTAMP_HEADER: stamp,
        signatures.SIGNATURE_HEADER: signature,
    }


def api_message(n: int, customer: str) -> dict[str, Any]:
    """The `api` channel's call for message number `n` from `customer`."""
    return {"id": f"m-{n}", "contact": {"id": customer, "name": customer}, "content": f"#{n}"}


async def deliver_api_calls(
    client: httpx.AsyncClient, inbox: Any, calls: list[dict[str, Any]]
) -> None:
    """Post each call to the inbox's webhook, signed, and check it was acknowledged."""
    for call in calls:
        body, headers = signed_api_call(call)
        response = await client.post(f"/hooks/api/{inbox.id}", content=body, headers=headers)
        assert response.status_code == 200


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def login(client: httpx.AsyncClient, user: User, password: str = PASSWORD) -> str:
    """Sign in through the real form; returns the session's CSRF token."""
    page = await client.get("/login")
    token = _CSRF.search(page.text)
    assert token, "login form has a CSRF token"
    response = await client.post(
        "/login",
        data={"email": user.email, "password": password, "csrf_token": token.group(1), "next": "/"},
    )
    assert response.status_code == 303, response.text
    return await csrf_of(client)


async def csrf_of(client: httpx.AsyncClient) -> str:
    page = await client.get("/profile")
    token = _CSRF.search(page.text)
    assert token
    return token.group(1)
