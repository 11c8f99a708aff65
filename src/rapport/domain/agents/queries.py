"""Agent reads: sign-in lookups, the viewer, teams."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.domain.accounts.models import Account, Visibility
from rapport.domain.agents.models import ApiToken, Role, Team, TeamMember, User
from rapport.domain.conversations.policies import Viewer
from rapport.lib.crypto import sha256_hex
from rapport.lib.identities import InvalidIdentity, normalise_email
from rapport.lib.passwords import DUMMY_HASH, verify_password


async def authenticate(session: AsyncSession, *, email: str, password: str) -> User | None:
    """The active user with this email and password, or None. Same work either way."""
    try:
        email = normalise_email(email)
    except InvalidIdentity:
        verify_password(DUMMY_HASH, password)
        return None
    user = await session.scalar(select(User).where(User.email == email))
    if user is None or not user.is_active:
        verify_password(DUMMY_HASH, password)
        return None
    return user if verify_password(user.password_hash, password) else None


async def user_for_api_token(session: AsyncSession, plain: str) -> tuple[User, ApiToken] | None:
    row = (
        await session.execute(
            select(User, ApiToken)
            .join(ApiToken, ApiToken.user_id == User.id)
            .where(ApiToken.token_hash == sha256_hex(plain), ApiToken.revoked_at.is_(None))
        )
    ).first()
    if row is None or not row[0].is_active:
        return None
    return row[0], row[1]


async def team_ids_of(session: AsyncSession, user_id: int) -> frozenset[int]:
    rows = await session.scalars(select(TeamMember.team_id).where(TeamMember.user_id == user_id))
    return frozenset(rows)


async def viewer_for(session: AsyncSession, user: User, account: Account) -> Viewer:
    return Viewer(
        user_id=user.id,
        account_id=user.account_id,
        role=Role(user.role),
        team_ids=await team_ids_of(session, user.id),
        visibility=Visibility(account.agent_visibility),
    )


async def agents_of(session: AsyncSession, account_id: int) -> list[User]:
    rows = await session.scalars(
        select(User).where(User.account_id == account_id).order_by(User.name)
    )
    return list(rows)


async def teams_of(session: AsyncSession, account_id: int) -> list[Team]:
    rows = await session.scalars(
        select(Team).where(Team.account_id == account_id).order_by(Team.name)
    )
    return list(rows)


async def members_of(session: AsyncSession, team_id: int) -> list[int]:
    rows = await session.scalars(select(TeamMember.user_id).where(TeamMember.team_id == team_id))
    return list(rows)


async def tokens_of(session: AsyncSession, user_id: int) -> list[ApiToken]:
    rows = await session.scalars(
        select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id.desc())
    )
    return list(rows)
