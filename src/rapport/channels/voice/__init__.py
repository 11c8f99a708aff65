"""The `voice` channel (minimal): call records from Twilio-compatible status callbacks."""

from rapport.channels.voice.adapter import VoiceChannel, VoiceConfig

__all__ = ["VoiceChannel", "VoiceConfig"]
