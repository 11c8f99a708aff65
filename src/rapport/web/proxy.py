"""Forwarded headers, believed only from configured proxies.

Behind a trusted proxy the request is rewritten to what the client (or the provider) used:
client address from X-Forwarded-For, scheme from X-Forwarded-Proto, host and port from
X-Forwarded-Host / X-Forwarded-Port. From anyone else these headers are ignored, so signature
checks that depend on the URL (Twilio) and rate limits that depend on the address cannot be
fooled.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send


class TrustedProxyMiddleware:
    def __init__(self, app: ASGIApp, trusted: Sequence[str]) -> None:
        self.app = app
        self.networks = [ipaddress.ip_network(n, strict=False) for n in trusted]

    def _trusted(self, host: str | None) -> bool:
        if not host or not self.networks:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            if self._trusted(client[0] if client else None):
                scope = self._rewrite(scope)
        await self.app(scope, receive, send)

    def _rewrite(self, scope: Scope) -> Scope:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        scope = dict(scope)
        forwarded_for = headers.get("x-forwarded-for")
        if forwarded_for:
            # The right-most address not ours is the client the proxy saw.
            hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
            client = next((h for h in reversed(hops) if not self._trusted(h)), hops[0])
            scope["client"] = (client, 0)
        proto = headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        if proto in ("http", "https"):
            secure = proto == "https"
            scope["scheme"] = ("wss" if secure else "ws") if scope["type"] == "websocket" else proto
        host = headers.get("x-forwarded-host", "").split(",")[0].strip()
        port = headers.get("x-forwarded-port", "").split(",")[0].strip()
        if host or port:
            new_host = host or headers.get("host", "").rsplit(":", 1)[0]
            if port and ":" not in new_host:
                new_host = f"{new_host}:{port}"
            scope["headers"] = [(k, v) for k, v in scope["headers"] if k.lower() != b"host"] + [
                (b"host", new_host.encode("latin-1"))
            ]
        return scope
