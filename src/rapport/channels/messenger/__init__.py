"""The `messenger` channel: a Facebook Page's Messenger inbox (webhooks in, Send API out)."""

from rapport.channels.messenger.adapter import MessengerChannel, MessengerConfig

__all__ = ["MessengerChannel", "MessengerConfig"]
