"""Channel inboxes and provider fixtures for tests (the fixtures live next to each adapter)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI

from rapport.channels import registry
from rapport.domain import events
from rapport.domain.accounts.models import Account
from rapport.domain.inboxes.actions import create_inbox
from rapport.domain.inboxes.models import Inbox
from rapport.services import Services

CHANNELS = Path(__file__).parents[2] / "src" / "rapport" / "channels"


def fixture_path(channel: str, name: str) -> Path:
    return CHANNELS / channel / "fixtures" / name


def fixture_json(channel: str, name: str) -> Any:
    return json.loads(fixture_path(channel, name).read_text(encoding="utf-8"))


def form_params(channel: str, name: str) -> list[tuple[str, str]]:
    """A form-encoded webhook fixture's parameters, in the documented order."""
    return list(fixture_json(channel, name).items())


def form_body(params: list[tuple[str, str]]) -> bytes:
    return urlencode(params).encode()


def fixture_names(channel: str, prefix: str = "") -> list[str]:
    folder = CHANNELS / channel / "fixtures"
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(prefix))


async def channel_inbox(
    services: Services, account: Account, channel: str, config: dict[str, Any], name: str = ""
) -> Inbox:
    """An inbox whose config went through the adapter's own validation, as the admin form does."""
    validated = registry.adapter_for(channel).validate_config(config)
    async with services.session() as session:
        inbox = await create_inbox(
            session,
            account_id=account.id,
            name=name or channel.upper(),
            channel=channel,
            config=validated,
            box=services.box,
        )
        await events.commit(session)
        return inbox


def provider_app(*routers: Any) -> FastAPI:
    """A bare app serving fake provider routers (run it with tests.support.live.serve)."""
    app = FastAPI()
    for router in routers:
        app.include_router(router)
    return app
