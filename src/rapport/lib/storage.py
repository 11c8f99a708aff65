"""Attachment storage: a local folder (default). Files get random names; nothing user-chosen."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path


class LocalFileStore:
    def __init__(self, root: Path) -> None:
        self._root = root

    def _path(self, key: str) -> Path:
        path = (self._root / key).resolve()
        if self._root.resolve() not in path.parents:
            raise ValueError("bad storage key")
        return path

    async def save(self, data: bytes, *, suffix: str = "") -> str:
        token = secrets.token_hex(16)
        key = f"{token[:2]}/{token[2:4]}/{token}{suffix}"
        path = self._path(key)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".part")
            tmp.write_bytes(data)
            tmp.replace(path)

        await asyncio.to_thread(write)
        return key

    async def read(self, key: str) -> bytes:
        return await asyncio.to_thread(self._path(key).read_bytes)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)
