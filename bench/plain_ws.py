"""The websocket baseline: the `websockets` library alone, holding idle sockets (S4) and
fanning one frame out to all of them with `websockets.broadcast` (S5).

A client that sends "broadcast <text>" makes the server broadcast <text> to every other socket.
"""

import argparse
import asyncio

import websockets
from websockets.asyncio.server import ServerConnection, broadcast, serve


async def main(port: int) -> None:
    connections: set[ServerConnection] = set()

    async def handler(socket: ServerConnection) -> None:
        connections.add(socket)
        try:
            async for message in socket:
                if isinstance(message, str) and message.startswith("broadcast "):
                    broadcast(connections - {socket}, message.removeprefix("broadcast "))
        except websockets.ConnectionClosed:
            pass
        finally:
            connections.discard(socket)

    async with serve(handler, "127.0.0.1", port, max_size=1024 * 1024, backlog=4096):
        await asyncio.Future()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(main(parser.parse_args().port))
