"""Agent actions: users, passwords, teams, API tokens."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.domain.agents.models import ApiToken, Role, Team, TeamMember, User
from rapport.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from rapport.lib.clock import utcnow
from rapport.lib.crypto import random_token, sha256_hex
from rapport.lib.identities import InvalidIdentity, normalise_email
from rapport.lib.passwords import MIN_PASSWORD_LENGTH, hash_password, verify_password

API_TOKEN_PREFIX = "rpt_"
SUPPORTED_LOCALES = ("en", "es")
MAX_AVATAR_URL_LENGTH = 500  # the column's width


def _valid_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"the password needs at least {MIN_PASSWORD_LENGTH} characters", field="password"
        )
    return password


def _valid_email(email: str) -> str:
    try:
        return normalise_email(email)
    except InvalidIdentity as exc:
        raise InvalidInput("that is not an email address", field="email") from exc


async def create_user(
    session: AsyncSession,
    *,
    account_id: int,
    email: str,
    name: str,
    password: str,
    role: Role = Role.agent,
    locale: str | None = None,
) -> User:
    email = _valid_email(email)
    if not name.strip():
        raise InvalidInput("a user needs a name", field="name")
    if await session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict("a user with that email already exists")
    if locale is not None and locale not in SUPPORTED_LOCALES:
        raise InvalidInput("unsupported language", field="locale")
    user = User(
        account_id=account_id,
        email=email,
        name=name.strip(),
        password_hash=hash_password(_valid_password(password)),
        role=role,
        locale=locale,
        is_active=True,
        session_version=1,
    )
    session.add(user)
    await session.flush()
    return user


async def change_password(
    session: AsyncSession, *, user: User, current_password: str, new_password: str
) -> User:
    """Change a password; every other session of the user ends (their version is bumped)."""
    if not verify_password(user.password_hash, current_password):
        raise InvalidInput("the current password is wrong", field="current_password")
    user.password_hash = hash_password(_valid_password(new_password))
    user.session_version += 1
    return user


async def update_profile(
    session: AsyncSession,
    *,
    user: User,
    name: str,
    locale: str | None,
    avatar_url: str | None = None,
) -> User:
    """Name, language and picture; `avatar_url` None leaves the picture, "" removes it.

    Everything is checked before anything changes, so a refused edit leaves no trace."""
    if not name.strip():
        raise InvalidInput("a user needs a name", field="name")
    if locale not in (None, *SUPPORTED_LOCALES):
        raise InvalidInput("unsupported language", field="locale")
    picture = _avatar_url(avatar_url) if avatar_url is not None else user.avatar_url
    user.name = name.strip()
    user.locale = locale
    user.avatar_url = picture
    return user


def _avatar_url(value: str) -> str | None:
    """A picture customers' browsers load (next to replies in the website chat): an https
    address, so it never shows as mixed content on a customer's site; None shows initials."""
    value = value.strip()
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
        raise InvalidInput(
            "the picture's address must start with https:// and name a host", field="avatar_url"
        )
    if len(value) > MAX_AVATAR_URL_LENGTH:
        raise InvalidInput("the picture's address is too long", field="avatar_url")
    return value


async def set_role_and_status(
    session: AsyncSession, *, actor: User, user: User, role: Role, is_active: bool
) -> User:
    """An admin changes someone's role or deactivates them (never the last active admin)."""
    if user.account_id != actor.account_id:
        raise NotFound("user")
    demoting_admin = user.role == Role.admin and (role != Role.admin or not is_active)
    if demoting_admin:
        admins = await session.scalar(
            select(func.count(User.id)).where(
                User.account_id == user.account_id, User.role == Role.admin, User.is_active
            )
        )
        if (admins or 0) <= 1:
            raise Conflict("an account keeps at least one active admin")
    if not is_active and user.is_active:
        user.session_version += 1
    user.role = role
    user.is_active = is_active
    return user


async def create_team(
    session: AsyncSession, *, account_id: int, name: str, description: str = ""
) -> Team:
    if not name.strip():
        raise InvalidInput("a team needs a name", field="name")
    clash = await session.scalar(
        select(Team.id).where(Team.account_id == account_id, Team.name == name.strip())
    )
    if clash is not None:
        raise Conflict("a team with that name already exists")
    team = Team(account_id=account_id, name=name.strip(), description=description.strip())
    session.add(team)
    await session.flush()
    return team


async def set_team_members(session: AsyncSession, *, team: Team, user_ids: Iterable[int]) -> None:
    wanted = set(user_ids)
    valid = set(
        await session.scalars(
            select(User.id).where(User.account_id == team.account_id, User.id.in_(wanted))
        )
    )
    if wanted - valid:
        raise NotFound("user")
    await session.execute(delete(TeamMember).where(TeamMember.team_id == team.id))
    for user_id in sorted(valid):
        session.add(TeamMember(team_id=team.id, user_id=user_id, account_id=team.account_id))
    await session.flush()


async def create_api_token(
    session: AsyncSession, *, user: User, name: str, trusted: bool = False
) -> tuple[ApiToken, str]:
    """A new personal API token. The plain token is returned once and only its hash is kept.

    Only admins may make a trusted token (identities it adds count as verified).
    """
    if not name.strip():
        raise InvalidInput("name the token after what will use it", field="name")
    if trusted and not user.is_admin:
        raise Forbidden("only admins can create trusted tokens")
    plain = API_TOKEN_PREFIX + random_token(30)
    token = ApiToken(
        account_id=user.account_id,
        user_id=user.id,
        name=name.strip()[:120],
        token_hash=sha256_hex(plain),
        prefix=plain[:10],
        trusted=trusted,
    )
    session.add(token)
    await session.flush()
    return token, plain


async def revoke_api_token(session: AsyncSession, *, user: User, token_id: int) -> None:
    token = await session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise NotFound("token")
    token.revoked_at = token.revoked_at or utcnow()


def api_token_touch_due(token: ApiToken) -> bool:
    """Whether this use should be recorded (at most every few minutes, so reads stay reads)."""
    return token.last_used_at is None or utcnow() - token.last_used_at > timedelta(minutes=5)


async def touch_api_token(session: AsyncSession, *, token: ApiToken) -> None:
    """Record use, at most every few minutes so reads through the API stay reads."""
    if api_token_touch_due(token):
        token.last_used_at = utcnow()
