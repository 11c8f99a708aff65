"""Playwright on the system Chromium, as TESTING.md describes, and small helpers for pages."""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, async_playwright

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
ROOT = Path(__file__).resolve().parents[2]
# Screenshots land in test-results/ (ignored by git); `make screenshots` points this at
# docs/images to refresh the pictures the README and docs show.
SCREENSHOTS = ROOT / os.environ.get("RAPPORT_SCREENSHOTS", "test-results/screenshots")


@asynccontextmanager
async def chromium_browser(executable: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def sign_in(page: Any, base_url: str, email: str, password: str) -> None:
    await page.goto(f"{base_url}/login")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base_url}/conversations")


async def screenshot(page: Any, name: str) -> None:
    """Save a screenshot of a key screen (see SCREENSHOTS)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / name))


def png(width: int = 96, height: int = 64) -> bytes:
    """A small, real PNG (a warm gradient) so browsers render it as an image."""
    rows = b"".join(
        b"\x00" + b"".join(bytes((200 - y, 120 + x // 2, 60 + (x + y) // 3)) for x in range(width))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
