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
