"""The `api` channel: custom integrations post messages in and receive replies, both signed."""

from rapport.channels.api.adapter import ApiChannel, ApiConfig

__all__ = ["ApiChannel", "ApiConfig"]
