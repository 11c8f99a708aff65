"""The `whatsapp` channel: the WhatsApp Cloud API (webhooks in, Graph API out)."""

from rapport.channels.whatsapp.adapter import WhatsAppChannel, WhatsAppConfig

__all__ = ["WhatsAppChannel", "WhatsAppConfig"]
