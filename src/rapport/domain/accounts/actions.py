"""Account actions."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from rapport.domain.accounts.models import Account, JoinPolicy, Visibility
from rapport.domain.errors import InvalidInput


async def create_account(
    session: AsyncSession,
    *,
    name: str,
    default_region: str = "US",
    timezone: str = "UTC",
    locale: str = "en",
) -> Account:
    if not name.strip():
        raise InvalidInput("an account needs a name", field="name")
    account = Account(
        name=name.strip(),
        default_region=default_region.upper(),
        timezone=timezone,
        locale=locale,
        join_policy=JoinPolicy.always,
        agent_visibility=Visibility.all,
    )
    session.add(account)
    await session.flush()
    return account


async def update_account_settings(
    session: AsyncSession,
    *,
    account: Account,
    name: str,
    default_region: str,
    join_policy: JoinPolicy,
    join_window_hours: int,
    agent_visibility: Visibility,
) -> Account:
    if not name.strip():
        raise InvalidInput("an account needs a name", field="name")
    if not (len(default_region) == 2 and default_region.isalpha()):
        raise InvalidInput("use a two-letter country code such as US or ES", field="default_region")
    if not 1 <= join_window_hours <= 24 * 90:
        raise InvalidInput("the window is between 1 hour and 90 days", field="join_window_hours")
    account.name = name.strip()
    account.default_region = default_region.upper()
    account.join_policy = join_policy
    account.join_window_hours = join_window_hours
    account.agent_visibility = agent_visibility
    return account
