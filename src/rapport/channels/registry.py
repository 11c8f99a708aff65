"""The one list of channel adapters. Adding a channel adds one line here."""

from __future__ import annotations

from typing import Any

from rapport.channels.api import ApiChannel
from rapport.channels.base import Channel
from rapport.channels.email import EmailChannel
from rapport.channels.instagram import InstagramChannel
from rapport.channels.messenger import MessengerChannel
from rapport.channels.sms import SmsChannel
from rapport.channels.telegram import TelegramChannel
from rapport.channels.voice import VoiceChannel
from rapport.channels.webchat import WebchatChannel
from rapport.channels.whatsapp import WhatsAppChannel
from rapport.domain.inboxes.models import Inbox
from rapport.domain.inboxes.queries import inbox_config
from rapport.lib.crypto import SecretBox

ADAPTERS: tuple[Channel[Any], ...] = (
    ApiChannel(),
    WebchatChannel(),
    EmailChannel(),
    SmsChannel(),
    VoiceChannel(),
    WhatsAppChannel(),
    MessengerChannel(),
    InstagramChannel(),
    TelegramChannel(),
)

_BY_KIND: dict[str, Channel[Any]] = {adapter.kind: adapter for adapter in ADAPTERS}


def adapter_for(kind: str) -> Channel[Any]:
    """The adapter of a channel kind; KeyError for a kind Rapport does not have."""
    return _BY_KIND[kind]


def kinds() -> list[str]:
    return list(_BY_KIND)


# Decrypted, validated adapter configs keyed by the inbox's ciphertext. Any change to an
# inbox's settings writes a new ciphertext (Fernet never reuses a token), so an entry can never
# be stale. Saves a decrypt and a pydantic validation on every provider call and every job.
_CONFIGS: dict[tuple[str, int, str], Any] = {}
_CONFIGS_MAX = 1024


def inbox_adapter(inbox: Inbox, box: SecretBox) -> tuple[Channel[Any], Any]:
    """The inbox's adapter and its loaded config."""
    adapter = _BY_KIND[inbox.channel]
    key = (inbox.channel, inbox.id, inbox.config_encrypted or "")
    config = _CONFIGS.get(key)
    if config is None:
        config = adapter.load_config(inbox_config(inbox, box))
        if len(_CONFIGS) >= _CONFIGS_MAX:
            _CONFIGS.clear()
        _CONFIGS[key] = config
    return adapter, config
