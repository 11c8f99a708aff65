"""Calling the Telegram Bot API: one method, one answer, errors turned into SendError.

"Making requests": https://api.telegram.org/bot<token>/METHOD, parameters as JSON or
multipart/form-data, answers {"ok": true, "result": ...} or {"ok": false, "error_code",
"description", "parameters": {"retry_after": seconds}}. Files are downloaded from
https://api.telegram.org/file/bot<token>/<file_path> after getFile (up to 20 MB).

The Bot API takes no idempotency key and has no way to list what a bot sent. So a call is only
retried when it certainly did not happen (refused with 429 or 5xx, or the connection was never
made); a call that may have reached Telegram but got no answer becomes a dead letter the agent
can look at and retry, rather than a second copy on the customer's phone. The same goes for an
attempt the worker never finished (killed while sending): the adapter finds the message in
doubt and makes it a dead letter instead of sending it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from rapport.domain.ports import SendError

MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class Bot:
    base_url: str
    token: str

    @property
    def id(self) -> str:
        return self.token.split(":", 1)[0]

    def method_url(self, method: str) -> str:
        return f"{self.base_url.rstrip('/')}/bot{self.token}/{method}"

    def file_url(self, file_path: str) -> str:
        return f"{self.base_url.rstrip('/')}/file/bot{self.token}/{file_path}"


class TelegramError(Exception):
    """The Bot API said no (for connect and getFile, shown to the admin or flagged)."""


def _send_error(response: httpx.Response, data: dict[str, Any]) -> SendError:
    description = str(data.get("description") or f"HTTP {response.status_code}")
    parameters = data.get("parameters") if isinstance(data.get("parameters"), dict) else {}
    if response.status_code == 429 or response.status_code >= 500:
        retry_after = parameters.get("retry_after") if parameters else None
        return SendError(
            f"Telegram answered {response.status_code}: {description}",
            retryable=True,
            retry_after=float(retry_after) if isinstance(retry_after, int | float) else None,
            not_sent=True,
        )
    return SendError(f"Telegram refused the message: {description}", retryable=False)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


async def send(
    http: httpx.AsyncClient,
    bot: Bot,
    method: str,
    *,
    json: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    files: dict[str, tuple[str, bytes, str]] | None = None,
) -> Any:
    """Call a sending method; its `result` or a SendError saying whether to try again."""
    try:
        response = await http.post(bot.method_url(method), json=json, data=data, files=files)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise SendError("could not reach Telegram", retryable=True, not_sent=True) from exc
    except httpx.HTTPError as exc:
        raise SendError(
            "Telegram did not answer in time; the message may have been delivered, so it was "
            "not sent again. Check with the customer before retrying.",
            retryable=False,
        ) from exc
    body = _json(response)
    if response.status_code != 200 or not body.get("ok"):
        raise _send_error(response, body)
    return body.get("result")


async def call(http: httpx.AsyncClient, bot: Bot, method: str, params: dict[str, Any]) -> Any:
    """Call a method that changes nothing a customer sees (setWebhook, getFile)."""
    response = await http.post(bot.method_url(method), json=params)
    body = _json(response)
    if response.status_code != 200 or not body.get("ok"):
        raise TelegramError(str(body.get("description") or f"HTTP {response.status_code}"))
    return body.get("result")
