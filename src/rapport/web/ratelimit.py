"""Rate limits for login and the public endpoints: in memory, or in Redis across nodes."""

from __future__ import annotations

from functools import cache

from limits import parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from rapport.services import Services


@cache
def _limiter(redis_url: str | None, prefix: str) -> MovingWindowRateLimiter:
    storage: Storage = (
        RedisStorage(f"async+{redis_url}", implementation="redispy", key_prefix=f"{prefix}:limits")
        if redis_url
        else MemoryStorage()
    )
    return MovingWindowRateLimiter(storage)


async def hit(services: Services, limit: str, *keys: str) -> bool:
    """Count one attempt; False once the limit is reached. Fails open if Redis is down."""
    limiter = _limiter(services.settings.redis_url, services.settings.redis_prefix)
    try:
        return bool(await limiter.hit(parse(limit), *keys))
    except Exception:
        return True


async def login_allowed(services: Services, *, client: str, email: str) -> bool:
    """Per address and per email, so neither one host nor a botnet can guess at will."""
    limit = services.settings.login_rate_limit
    by_client = await hit(services, limit, "login-ip", client)
    by_email = await hit(services, limit, "login-email", email.strip().lower())
    return by_client and by_email
