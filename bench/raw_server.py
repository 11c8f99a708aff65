"""The raw baseline: the least a server can do to acknowledge a signed SMS webhook durably.

Same libraries as Rapport (uvicorn, FastAPI, SQLAlchemy async with asyncpg or aiosqlite): check
the provider's HMAC-SHA1 signature over the URL and sorted parameters, insert the payload with
dedup on the message id, commit, answer. With --ws it also sends one frame to every connected
websocket after commit (the S2/S10 baseline). SQLite gets Rapport's settings: WAL,
synchronous=NORMAL, a busy timeout and BEGIN IMMEDIATE.
"""

import argparse
import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qsl

import uvicorn
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import Response
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.env import AUTH_TOKEN

INSERT = text(
    "INSERT INTO raw_inbound (dedupe_key, body, received_at) VALUES (:key, :body, "
    "CURRENT_TIMESTAMP) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id"
)


def make_engine(url: str):  # type: ignore[no-untyped-def]
    if not url.startswith("sqlite"):
        return create_async_engine(
            url.replace("postgresql://", "postgresql+asyncpg://"), pool_size=10, max_overflow=10
        )
    engine = create_async_engine(
        url.replace("sqlite://", "sqlite+aiosqlite://"), connect_args={"timeout": 30}
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=30000"):
            dbapi_connection.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection):  # type: ignore[no-untyped-def]
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def build(url: str, ws: bool) -> FastAPI:
    engine = make_engine(url)
    sockets: set[WebSocket] = set()
    pk = "INTEGER PRIMARY KEY" if url.startswith("sqlite") else "BIGSERIAL PRIMARY KEY"
    blob = "BLOB" if url.startswith("sqlite") else "BYTEA"

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    f"CREATE TABLE IF NOT EXISTS raw_inbound (id {pk}, dedupe_key VARCHAR(255) "
                    f"NOT NULL UNIQUE, body {blob} NOT NULL, received_at TIMESTAMP NOT NULL)"
                )
            )
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.post("/hooks/sms/{inbox_id}")
    async def hook(inbox_id: int, request: Request) -> Response:
        body = await request.body()
        params = parse_qsl(body.decode(), keep_blank_values=True)
        data = str(request.url) + "".join(name + value for name, value in sorted(params))
        digest = hmac.new(AUTH_TOKEN.encode(), data.encode(), hashlib.sha1).digest()
        given = request.headers.get("x-twilio-signature", "")
        if not hmac.compare_digest(base64.b64encode(digest).decode(), given):
            return Response("forbidden", status_code=403)
        sid = dict(params)["MessageSid"]
        async with engine.begin() as conn:
            new = (await conn.execute(INSERT, {"key": f"message:{sid}", "body": body})).first()
        if ws and new is not None:
            frame = json.dumps({"sid": sid})
            for socket in list(sockets):
                await socket.send_text(frame)
        return Response("<Response/>", media_type="text/xml")

    @app.websocket("/ws")
    async def follow(socket: WebSocket) -> None:
        await socket.accept()
        sockets.add(socket)
        try:
            while True:
                await socket.receive_text()
        except WebSocketDisconnect:
            sockets.discard(socket)

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--ws", action="store_true")
    args = parser.parse_args()
    uvicorn.run(
        build(args.db, args.ws),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
    )
