"""Playwright driving the system Chromium (never a downloaded browser)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from playwright.async_api import async_playwright

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
SCREENSHOTS = Path(__file__).parents[2] / "docs" / "images"


@asynccontextmanager
async def browser(executable: str) -> AsyncIterator[Any]:
    async with async_playwright() as playwright:
        instance = await playwright.chromium.launch(executable_path=executable, args=ARGS)
        try:
            yield instance
        finally:
            await instance.close()


async def sign_in(page: Any, base_url: str, email: str, password: str) -> None:
    await page.goto(f"{base_url}/login")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base_url}/conversations")


async def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / name))
