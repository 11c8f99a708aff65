"""The `instagram` channel: an Instagram professional account's direct messages."""

from rapport.channels.instagram.adapter import InstagramChannel, InstagramConfig

__all__ = ["InstagramChannel", "InstagramConfig"]
