"""A signed-in agent's realtime connection, as the browser makes it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import websockets

from rapport.domain.agents.models import User
from tests.support.factory import login


class AgentSocket:
    """Logs in over HTTP, then follows /ws like app.js does (resume from the last seq seen)."""

    def __init__(self, base_url: str, user: User) -> None:
        self.base_url = base_url
        self.user = user
        self.http = httpx.AsyncClient(base_url=base_url)
        self.events: list[dict[str, Any]] = []
        self.last_seq = 0
        self._ws: Any = None

    async def connect(self, *, resume: bool = True) -> dict[str, Any]:
        if not self.http.cookies:
            await login(self.http, self.user)
        cookie = "; ".join(f"{k}={v}" for k, v in self.http.cookies.items())
        url = self.base_url.replace("http", "ws", 1) + "/ws"
        if resume and self.last_seq:
            url += f"?after={self.last_seq}"
        self._ws = await websockets.connect(
            url, additional_headers={"Cookie": cookie}, origin=self.base_url
        )
        while True:  # replayed events, then the "live" marker
            frame = await self._next(5)
            if frame["kind"] in ("live", "reset"):
                self.last_seq = max(self.last_seq, frame["seq"])
                return frame

    async def _next(self, timeout: float) -> dict[str, Any]:
        frame = json.loads(await asyncio.wait_for(self._ws.recv(), timeout))
        if frame["kind"] == "event" and frame["seq"] > self.last_seq:
            self.last_seq = frame["seq"]
            self.events.append(frame)
        return frame

    async def wait_for(self, predicate, timeout: float = 10.0) -> dict[str, Any]:
        for event in self.events:
            if predicate(event):
                return event
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            frame = await self._next(max(0.01, deadline - loop.time()))
            if frame["kind"] == "event" and predicate(frame):
                return frame

    async def disconnect(self) -> None:
        if self._ws is not None:
            await self._ws.close()
            self._ws = None

    async def close(self) -> None:
        await self.disconnect()
        await self.http.aclose()
