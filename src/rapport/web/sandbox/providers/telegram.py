"""A fake Telegram Bot API: the methods Rapport calls, and the updates Telegram would post.

It follows the Bot API document the telegram adapter cites: /bot<token>/<method> answering
{"ok": true, "result": ...} or {"ok": false, "error_code", "description", "parameters"},
setWebhook's secret_token sent back as X-Telegram-Bot-Api-Secret-Token on every update,
getFile then /file/bot<token>/<file_path> for downloads. Telegram has no delivery receipts, so
nothing comes back after a send.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from fastapi import APIRouter, Request
from starlette.datastructures import UploadFile
from starlette.responses import JSONResponse, Response

from rapport.domain.errors import InvalidInput
from rapport.web.sandbox.common import (
    CustomerMessage,
    Deliver,
    Faults,
    InboxSpec,
    SandboxInbox,
    SignedCall,
    Transcript,
    error_response,
    slow,
)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
SANDBOX_BOT_TOKEN = "7000000001:sandbox-telegram-bot-token-0123456789"
SANDBOX_WEBHOOK_SECRET = "sandbox-telegram-webhook-secret-0123456789"
FILE_FIELDS = {
    "sendPhoto": "photo",
    "sendDocument": "document",
    "sendAudio": "audio",
    "sendVideo": "video",
    "sendVoice": "voice",
}


Uploads = dict[str, tuple[str, str, bytes]]  # field -> (filename, content type, data)
Handler = Callable[[str, dict[str, Any], Uploads], Awaitable[Any]]


def _now() -> int:
    return int(datetime.now(UTC).timestamp())


def _fail(status: int, description: str) -> JSONResponse:
    return JSONResponse(
        {"ok": False, "error_code": status, "description": description}, status_code=status
    )


def update_call(url: str, secret: str, update: dict[str, Any]) -> SignedCall:
    """An update posted the way Telegram posts it (JSON, the webhook's secret token)."""
    return SignedCall(
        url=url,
        body=json.dumps(update).encode(),
        headers={"Content-Type": "application/json", SECRET_HEADER: secret},
    )


class FakeTelegram:
    name: ClassVar[str] = "telegram"
    label: ClassVar[str] = "Telegram"
    channels: ClassVar[tuple[str, ...]] = ("telegram",)

    def __init__(self, *, tokens: Sequence[str] = (SANDBOX_BOT_TOKEN,), base_url: str = "") -> None:
        self.tokens = set(tokens)
        self.base_url = base_url
        self.calls: list[tuple[str, dict[str, Any]]] = []  # (method, parameters), in order
        self.webhooks: dict[str, dict[str, Any]] = {}  # bot token -> setWebhook parameters
        self.files: dict[str, tuple[str, bytes]] = {}  # file_id -> (content type, data)
        self.downloads = 0
        self.faults = Faults()
        self.transcript = Transcript()
        self._update_ids = itertools.count(900_000_001)
        self._message_ids = itertools.count(1)
        self._methods: dict[str, Handler] = {
            "getMe": self._get_me,
            "setWebhook": self._set_webhook,
            "getFile": self._get_file,
            "sendMessage": self._send_message,
            "sendMediaGroup": self._send_media_group,
            **{method: self._file_sender(field) for method, field in FILE_FIELDS.items()},
        }
        self.router = APIRouter()
        self.router.add_api_route("/bot{token}/{method}", self._method, methods=["POST", "GET"])
        self.router.add_api_route("/file/bot{token}/{file_path:path}", self._download)

    def attach(self, base_url: str, deliver: Deliver) -> None:
        """Serve at base_url (Telegram sends no receipts, so nothing is delivered later)."""
        self.base_url = base_url

    def sandbox_inboxes(self) -> list[InboxSpec]:
        config = {
            "bot_token": SANDBOX_BOT_TOKEN,
            "webhook_secret": SANDBOX_WEBHOOK_SECRET,
            "api_base_url": self.base_url,
        }
        return [InboxSpec("Telegram bot", "telegram", config)]

    # --- the Bot API Rapport calls -------------------------------------------------------------

    async def _params(self, request: Request) -> tuple[dict[str, Any], Uploads]:
        if request.headers.get("content-type", "").startswith("application/json"):
            return dict(await request.json()), {}
        params: dict[str, Any] = {}
        uploads: Uploads = {}
        async with request.form() as form:
            for key, value in form.items():
                if isinstance(value, UploadFile):
                    kind = value.content_type or "application/octet-stream"
                    uploads[key] = (value.filename or key, kind, await value.read())
                else:
                    params[key] = value
        return params, uploads

    async def _method(self, token: str, method: str, request: Request) -> Response:
        if token not in self.tokens:
            return _fail(401, "Unauthorized")
        params, uploads = await self._params(request)
        self.calls.append((method, params))
        fault = self.faults.next()
        if fault is not None:
            await slow(fault)
            retry = {"retry_after": fault.retry_after} if fault.retry_after is not None else {}
            body = {"ok": False, "error_code": fault.status, "parameters": retry}
            body["description"] = f"Too Many Requests: retry after {fault.retry_after}"
            return error_response(fault, body)
        handler = self._methods.get(method)
        if handler is None:
            return _fail(404, "Not Found: method not found")
        result = await handler(token, params, uploads)
        if isinstance(result, Response):
            return result
        return JSONResponse({"ok": True, "result": result})

    def _bot(self, token: str) -> dict[str, Any]:
        bot_id = int(token.split(":", 1)[0])
        return {
            "id": bot_id,
            "is_bot": True,
            "first_name": "Sandbox bot",
            "username": "rapport_sandbox_bot",
        }

    async def _get_me(self, token: str, params: dict[str, Any], uploads: Uploads) -> Any:
        return self._bot(token)

    async def _set_webhook(self, token: str, params: dict[str, Any], uploads: Uploads) -> Any:
        self.webhooks[token] = params
        return True

    async def _get_file(self, token: str, params: dict[str, Any], uploads: Uploads) -> Any:
        file_id = str(params.get("file_id", ""))
        if file_id not in self.files:
            return _fail(400, "Bad Request: invalid file_id")
        size = len(self.files[file_id][1])
        return {
            "file_id": file_id,
            "file_unique_id": file_id[-8:],
            "file_size": size,
            "file_path": f"documents/{file_id}",
        }

    def _sent(
        self, token: str, params: dict[str, Any], text: str, media: list[str]
    ) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        message = {
            "message_id": next(self._message_ids),
            "from": self._bot(token),
            "chat": {"id": chat_id, "type": "private"},
            "date": _now(),
        }
        thread = (token.split(":", 1)[0], str(chat_id))
        self.transcript.add(
            thread, "business", text, str(message["message_id"]), status="sent", media=media
        )
        return message

    async def _send_message(self, token: str, params: dict[str, Any], uploads: Uploads) -> Any:
        if not params.get("chat_id") or not params.get("text"):
            return _fail(400, "Bad Request: message text is empty")
        return {**self._sent(token, params, str(params["text"]), []), "text": params["text"]}

    async def _file_message(
        self, token: str, params: dict[str, Any], uploads: Uploads, field: str
    ) -> Any:
        if field not in uploads:
            return _fail(400, f"Bad Request: there is no {field} in the request")
        filename, content_type, data = uploads[field]
        file_id = self.add_file(content_type, data)
        message = self._sent(token, params, str(params.get("caption", "")), [filename])
        message[field] = {"file_id": file_id, "file_unique_id": file_id[-8:], "file_name": filename}
        if params.get("caption"):
            message["caption"] = params["caption"]
        return message

    async def _send_media_group(self, token: str, params: dict[str, Any], uploads: Uploads) -> Any:
        media = json.loads(params.get("media", "[]"))
        if not 2 <= len(media) <= 10:
            return _fail(400, "Bad Request: media group must include 2-10 items")
        names = [uploads[item["media"].removeprefix("attach://")][0] for item in media]
        caption = str(media[0].get("caption", ""))
        message = self._sent(token, params, caption, names)
        return [message] + [{**message, "message_id": next(self._message_ids)} for _ in media[1:]]

    def _file_sender(self, field: str) -> Handler:
        async def send_file(token: str, params: dict[str, Any], uploads: Uploads) -> Any:
            return await self._file_message(token, params, uploads, field)

        return send_file

    async def _download(self, token: str, file_path: str) -> Response:
        self.downloads += 1
        file_id = file_path.rsplit("/", 1)[-1]
        if token not in self.tokens or file_id not in self.files:
            return _fail(404, "Not Found")
        content_type, data = self.files[file_id]
        return Response(data, media_type=content_type)

    # --- what customers do ---------------------------------------------------------------------

    def add_file(self, content_type: str, data: bytes) -> str:
        file_id = "AgAC" + uuid.uuid4().hex
        self.files[file_id] = (content_type, data)
        return file_id

    def message_update(
        self,
        *,
        user_id: int,
        first_name: str,
        last_name: str = "",
        text: str = "",
        media: Sequence[tuple[str, str, bytes]] = (),
        reply_to: int | None = None,
    ) -> dict[str, Any]:
        """The Update a private message from this user would produce."""
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if last_name:
            user["last_name"] = last_name
        chat = {"id": user_id, "type": "private", "first_name": first_name}
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "from": user,
            "chat": chat,
            "date": _now(),
        }
        message.update(self._content(text, media))
        if reply_to is not None:
            message["reply_to_message"] = {"message_id": reply_to, "chat": chat, "date": _now()}
        return {"update_id": next(self._update_ids), "message": message}

    def _content(self, text: str, media: Sequence[tuple[str, str, bytes]]) -> dict[str, Any]:
        if not media:
            return {"text": text}
        name, content_type, data = media[0]
        file_id = self.add_file(content_type, data)
        content: dict[str, Any] = {"caption": text} if text else {}
        if content_type.startswith("image/"):
            content["photo"] = [
                {
                    "file_id": file_id,
                    "file_unique_id": file_id[-8:],
                    "file_size": len(data),
                    "width": 800,
                    "height": 600,
                }
            ]
        else:
            content["document"] = {
                "file_id": file_id,
                "file_unique_id": file_id[-8:],
                "file_name": name,
                "mime_type": content_type,
                "file_size": len(data),
            }
        return content

    def plays(self, inbox: SandboxInbox) -> bool:
        base = str(inbox.config.get("api_base_url", "")).rstrip("/")
        return inbox.channel in self.channels and bool(self.base_url) and base == self.base_url

    def thread_of(self, inbox: SandboxInbox, customer: str) -> tuple[str, str]:
        return (str(inbox.config["bot_token"]).split(":", 1)[0], customer)

    async def customer_says(
        self, inbox: SandboxInbox, message: CustomerMessage, deliver: Deliver
    ) -> None:
        if not message.customer.isdigit():
            raise InvalidInput("a Telegram user id is a number", field="customer")
        first, _, last = message.name.partition(" ")
        update = self.message_update(
            user_id=int(message.customer),
            first_name=first or "Customer",
            last_name=last,
            text=message.text,
            media=message.media,
        )
        sent = update["message"]
        self.transcript.add(
            self.thread_of(inbox, message.customer),
            "customer",
            message.text,
            str(sent["message_id"]),
            media=[m[0] for m in message.media],
        )
        await deliver(update_call(inbox.webhook_url, str(inbox.config["webhook_secret"]), update))
