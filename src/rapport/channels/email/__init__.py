"""The `email` channel: SMTP listener and IMAP polling in, SMTP out, threaded both ways."""

from rapport.channels.email.adapter import EmailChannel
from rapport.channels.email.config import EmailConfig

__all__ = ["EmailChannel", "EmailConfig"]
