"""The `webchat` channel: the website chat widget, its visitors' messages and their identity."""

from rapport.channels.webchat.adapter import WebchatChannel
from rapport.channels.webchat.config import WebchatConfig

__all__ = ["WebchatChannel", "WebchatConfig"]
