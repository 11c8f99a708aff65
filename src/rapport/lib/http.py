"""The one outbound HTTP client: webhooks, provider APIs and media downloads all go through it.

It refuses targets that are not plain http(s) on public addresses, checked after DNS resolution at
every hop (redirects included), and pins the connection to the address it checked so a DNS answer
that changes between the check and the connect (rebinding) cannot reach an internal host.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

import httpx


class BlockedTarget(httpx.RequestError):
    """The URL points at a scheme or address Rapport must not call."""


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def _resolve(host: str, port: int) -> list[str]:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return [host]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpx.ConnectError(f"cannot resolve {host}: {exc}") from exc
    return [str(info[4][0]) for info in infos]


class GuardedTransport(httpx.AsyncBaseTransport):
    """Checks every request's target address before letting the inner transport connect."""

    def __init__(self, *, allow_private: bool, inner: httpx.AsyncBaseTransport | None = None):
        self._allow_private = allow_private
        self._inner = inner or httpx.AsyncHTTPTransport(retries=0)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise BlockedTarget(f"scheme {url.scheme!r} is not allowed", request=request)
        port = url.port or (443 if url.scheme == "https" else 80)
        addresses = await _resolve(url.host, port)
        if not addresses:
            raise httpx.ConnectError(f"no address for {url.host}", request=request)
        if not self._allow_private:
            blocked = [a for a in addresses if not is_public_address(a)]
            if blocked:
                raise BlockedTarget(
                    f"{url.host} resolves to a non-public address ({blocked[0]})", request=request
                )
            request.url = url.copy_with(host=addresses[0])
            if url.scheme == "https":
                request.extensions = {**request.extensions, "sni_hostname": url.host}
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def build_client(
    *, allow_private: bool = False, timeout: float = 15.0, max_redirects: int = 3
) -> httpx.AsyncClient:
    """The outbound client; redirects are followed through the guard so each hop is checked."""
    return httpx.AsyncClient(
        transport=GuardedTransport(allow_private=allow_private),
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        follow_redirects=True,
        max_redirects=max_redirects,
        headers={"User-Agent": "Rapport/0.1 (+https://github.com/rapport-cc/rapport)"},
    )


def retry_after_seconds(response: httpx.Response, default: float) -> float:
    """Seconds to wait from a Retry-After header (delta-seconds form), else the default."""
    value = response.headers.get("Retry-After", "").strip()
    if value.isdigit():
        return float(min(int(value), 3600))
    return default


class TooLarge(httpx.HTTPError):
    """A download went past the size allowed for it."""


async def fetch_limited(
    client: httpx.AsyncClient, url: str, *, limit: int, **kwargs: Any
) -> tuple[bytes, str]:
    """GET a file, refusing it once it passes `limit` bytes; returns (data, content type).

    The declared Content-Length is checked first and the body is counted as it streams, so a
    provider (or an attacker's URL) cannot make Rapport hold more than the limit in memory.
    """
    async with client.stream("GET", url, **kwargs) as response:
        response.raise_for_status()
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise TooLarge(f"{url} is {declared} bytes, more than {limit}")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"{url} is more than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks), response.headers.get("Content-Type", "")
