"""Real servers inside the test's event loop: Rapport on a random port, and a webhook receiver."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def serve(app: Any, port: int | None = None) -> AsyncIterator[str]:
    """Run an ASGI app with uvicorn on 127.0.0.1; yields its base URL."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def eventually(check: Callable[[], Awaitable[Any]], within: float = 10.0) -> Any:
    """Poll until `check` returns a truthy value (or raise its last assertion on timeout)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            result = await check()
            if result:
                return result
            failure: BaseException | None = AssertionError("condition never became true")
        except AssertionError as exc:
            failure = exc
        if asyncio.get_running_loop().time() > deadline:
            assert failure is not None
            raise failure
        await asyncio.sleep(0.05)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    """Records every POST; answers with the queued statuses first (to simulate 429/5xx)."""

    calls: list[Received] = field(default_factory=list)
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            self.calls.append(Received(dict(request.headers), await request.body()))
            if self.answers:
                status, headers = self.answers.pop(0)
                return Response("busy", status_code=status, headers=headers)
            return JSONResponse({"id": f"ext-{len(self.calls)}"})

        async def file(request: Request) -> Response:
            return Response(b"%PDF-1.4 fake receipt", media_type="application/pdf")

        return Starlette(
            routes=[Route("/hook", hook, methods=["POST"]), Route("/files/{name}", file)]
        )
