"""The `sms` channel: SMS and MMS through a Twilio-compatible provider, with STOP honoured."""

from rapport.channels.sms.adapter import SmsChannel, SmsConfig
from rapport.channels.sms.policy import SmsNotes, SmsPolicy

__all__ = ["SmsChannel", "SmsConfig", "SmsNotes", "SmsPolicy"]
