"""The `telegram` channel: a Telegram bot's webhook updates in, Bot API messages out.

In:  POST /hooks/telegram/{inbox_id}, a JSON Update, with X-Telegram-Bot-Api-Secret-Token equal
     to the secret Rapport gave setWebhook (compared in constant time before anything else).
     Rapport calls setWebhook itself when the inbox is saved; nothing to paste anywhere.
Out: sendMessage, or one sendPhoto/sendDocument/... (sendMediaGroup for several files) so a reply
     is always one call; 429 honours parameters.retry_after ("Making requests").
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import AnyHttpUrl, BaseModel, Field

from rapport.channels.base import BadPayload, Channel, RawRequest, SendContext, VerificationFailed
from rapport.channels.telegram import api
from rapport.channels.telegram.parse import load_update, message_key, parse_update
from rapport.domain.contacts.models import IdentityKind
from rapport.domain.ports import (
    ChannelPolicy,
    MediaRef,
    OutboundAttachment,
    OutboundMessage,
    Parsed,
    ProviderReceipt,
    SendError,
)
from rapport.lib.http import TooLarge, fetch_limited

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_TEXT, MAX_CAPTION = 4096, 1024
# The updates Rapport reads; message_reaction must be asked for by name (setWebhook).
ALLOWED_UPDATES = ["message", "edited_message", "message_reaction", "callback_query"]
PHOTO_TYPES = {"image/jpeg", "image/png", "image/webp", "image/gif"}


class TelegramConfig(BaseModel):
    bot_token: str = Field(
        pattern=r"^\d+:[A-Za-z0-9_-]+$", description="The bot's token, from @BotFather"
    )
    webhook_secret: str = Field(
        default_factory=lambda: secrets.token_urlsafe(32),
        pattern=r"^[A-Za-z0-9_-]{1,256}$",
        description="Proves calls come from Telegram; Rapport makes one if you leave it blank",
    )
    api_base_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("https://api.telegram.org"), description="The Bot API address"
    )

    def bot(self) -> api.Bot:
        return api.Bot(str(self.api_base_url), self.bot_token)


def _method(attachment: OutboundAttachment) -> tuple[str, str]:
    """The Bot API method and field for one file."""
    kind = attachment.content_type.split(";", 1)[0].strip().lower()
    if kind in PHOTO_TYPES:
        return "sendPhoto", "photo"
    if kind.startswith("video/"):
        return "sendVideo", "video"
    if kind.startswith("audio/"):
        return "sendAudio", "audio"
    return "sendDocument", "document"


class TelegramChannel(Channel[TelegramConfig]):
    kind: ClassVar[str] = "telegram"
    label: ClassVar[str] = "Telegram"
    Config = TelegramConfig
    secret_fields: ClassVar[tuple[str, ...]] = ("bot_token", "webhook_secret")
    policy: ClassVar[ChannelPolicy] = ChannelPolicy(
        identity_kind=IdentityKind.telegram, max_length=MAX_TEXT
    )

    def verify(self, request: RawRequest, config: TelegramConfig) -> None:
        supplied = request.header(SECRET_HEADER)
        if not supplied:
            raise VerificationFailed("missing secret token", status_code=401)
        if not hmac.compare_digest(supplied.encode(), config.webhook_secret.encode()):
            raise VerificationFailed("wrong secret token", status_code=403)

    def dedupe_key(self, request: RawRequest, config: TelegramConfig) -> str:
        """(bot id, update_id): a new bot on the same inbox starts its ids again."""
        return f"update:{config.bot().id}:{load_update(request.body)['update_id']}"

    def parse(self, body: bytes, content_type: str, config: TelegramConfig) -> Sequence[Parsed]:
        return parse_update(load_update(body))

    async def fetch_media(self, ref: MediaRef, config: TelegramConfig, ctx: SendContext) -> bytes:
        if ref.provider_media_id is None:
            raise BadPayload("a Telegram file without a file_id")
        if ref.size is not None and ref.size > api.MAX_DOWNLOAD_BYTES:
            raise BadPayload(f"{ref.filename} is larger than bots may download (20 MB)")
        bot = config.bot()
        try:
            found = await api.call(ctx.http, bot, "getFile", {"file_id": ref.provider_media_id})
        except api.TelegramError as exc:
            raise BadPayload(f"Telegram has no such file: {exc}") from exc
        try:
            data, _type = await fetch_limited(
                ctx.http, bot.file_url(found["file_path"]), limit=api.MAX_DOWNLOAD_BYTES
            )
        except TooLarge as exc:
            raise BadPayload(str(exc)) from exc
        return data

    async def send(
        self, outbound: OutboundMessage, config: TelegramConfig, ctx: SendContext
    ) -> ProviderReceipt:
        if outbound.metadata.get("in_doubt"):
            # An earlier attempt reached the Bot API call and never came back (the worker
            # stopped mid-send). Telegram has no idempotency key and no list of sent messages,
            # so sending again could put a second copy on the customer's phone.
            raise SendError(
                "Sending stopped before Telegram answered; the message may have been delivered, "
                "so it was not sent again. Check with the customer before retrying.",
                retryable=False,
            )
        chat_id = int(outbound.to)
        bot = config.bot()
        if not outbound.attachments:
            if len(outbound.content) > MAX_TEXT:
                raise SendError(
                    "a Telegram message can be at most 4,096 characters", retryable=False
                )
            result = await api.send(ctx.http, bot, "sendMessage", json=_text(chat_id, outbound))
        elif len(outbound.content) > MAX_CAPTION:
            raise SendError("a caption can be at most 1,024 characters", retryable=False)
        elif len(outbound.attachments) == 1:
            result = await self._one_file(ctx, bot, chat_id, outbound)
        else:
            result = await self._album(ctx, bot, chat_id, outbound)
        first = result[0] if isinstance(result, list) else result
        return ProviderReceipt(provider_id=message_key(chat_id, first["message_id"]))

    async def _one_file(
        self, ctx: SendContext, bot: api.Bot, chat_id: int, outbound: OutboundMessage
    ) -> Any:
        [attachment] = outbound.attachments
        method, field = _method(attachment)
        data = await ctx.read_file(attachment.storage_key)
        params = {"chat_id": str(chat_id), "caption": outbound.content}
        files = {field: (attachment.filename, data, attachment.content_type)}
        return await api.send(ctx.http, bot, method, data=params, files=files)

    async def _album(
        self, ctx: SendContext, bot: api.Bot, chat_id: int, outbound: OutboundMessage
    ) -> Any:
        """Several files in one call, so a retry can never repeat half of them."""
        files: dict[str, tuple[str, bytes, str]] = {}
        media = []
        for n, attachment in enumerate(outbound.attachments[:10]):
            name = f"file{n}"
            files[name] = (
                attachment.filename,
                await ctx.read_file(attachment.storage_key),
                attachment.content_type,
            )
            item: dict[str, Any] = {"type": "document", "media": f"attach://{name}"}
            if n == 0 and outbound.content:
                item["caption"] = outbound.content
            media.append(item)
        params = {"chat_id": str(chat_id), "media": json.dumps(media)}
        return await api.send(ctx.http, bot, "sendMediaGroup", data=params, files=files)

    async def connect(self, inbox_id: int, config: TelegramConfig, ctx: SendContext) -> None:
        """setWebhook with our URL and secret, so Telegram starts calling Rapport."""
        await api.call(
            ctx.http,
            config.bot(),
            "setWebhook",
            {
                "url": ctx.public_url + self.webhook_path(inbox_id),
                "secret_token": config.webhook_secret,
                "allowed_updates": ALLOWED_UPDATES,
            },
        )


def _text(chat_id: int, outbound: OutboundMessage) -> dict[str, Any]:
    params: dict[str, Any] = {"chat_id": chat_id, "text": outbound.content}
    if outbound.reply_to_provider_id and ":" in outbound.reply_to_provider_id:
        message_id = outbound.reply_to_provider_id.split(":")[1]
        if message_id.isdigit():
            params["reply_parameters"] = {
                "message_id": int(message_id),
                "allow_sending_without_reply": True,
            }
    return params
