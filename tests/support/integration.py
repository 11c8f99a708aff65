"""A fake integration behind an API inbox's `outbound_url`: it receives Rapport's replies.

It follows what channels/api/adapter.py documents for the receiving side: a signed JSON POST
per reply carrying `Idempotency-Key` (and X-Rapport-Delivery), the same on every retry of one
reply. Like a real provider with idempotency keys, it accepts a key once and answers every
later request with that key with the first answer, without sending anything again. It can
hold its answers (a provider that accepted a send and has not answered yet) until released.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rapport.lib import signatures
from tests.support.factory import API_SECRET


@dataclass
class FakeIntegration:
    secret: str = API_SECRET
    answers: dict[str, dict[str, str]] = field(default_factory=dict)  # key -> first answer
    accepted: Counter[int] = field(default_factory=Counter)  # sends accepted per message id
    keys: defaultdict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    requests: int = 0
    waiting: int = 0  # accepted sends whose answer is being held
    answered: int = 0  # requests answered so far
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.release.set()  # answers at once until `hold()`

    def hold(self) -> None:
        """From now on, accept sends but keep the answers until `let_go()`."""
        self.release.clear()

    def let_go(self) -> None:
        self.release.set()

    def app(self) -> Starlette:
        async def receive(request: Request) -> Response:
            body = await request.body()
            self.requests += 1
            signatures.verify(
                [self.secret],
                body,
                timestamp=request.headers.get(signatures.TIMESTAMP_HEADER),
                signature=request.headers.get(signatures.SIGNATURE_HEADER),
            )
            key = request.headers["idempotency-key"]
            assert request.headers[signatures.DELIVERY_HEADER] == key
            message_id = int((await request.json())["message_id"])
            self.keys[message_id].append(key)
            if key in self.answers:  # a retry of a send already accepted: replay the answer
                self.answered += 1
                return JSONResponse(self.answers[key])
            self.answers[key] = {"id": f"int-{len(self.answers)}"}
            self.accepted[message_id] += 1
            if not self.release.is_set():
                self.waiting += 1
                await self.release.wait()
                self.waiting -= 1
            self.answered += 1
            return JSONResponse(self.answers[key], status_code=201)

        return Starlette(routes=[Route("/replies", receive, methods=["POST"])])
