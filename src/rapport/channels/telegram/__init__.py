"""The `telegram` channel: a Telegram bot, its webhook set by Rapport itself."""

from rapport.channels.telegram.adapter import TelegramChannel, TelegramConfig

__all__ = ["TelegramChannel", "TelegramConfig"]
