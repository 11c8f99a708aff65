"""ChannelPolicy: the verdict the reply box shows, and the consent rule."""

from datetime import timedelta

from rapport.domain.contacts.models import IdentityKind
from rapport.domain.ports import ChannelPolicy, ReplyContext
from rapport.lib.clock import utcnow


def _ctx(**kwargs):
    return ReplyContext(now=utcnow(), last_incoming_at=utcnow(), recipient="+34600000001", **kwargs)


def test_an_opt_out_refuses_channels_that_require_consent():
    sms = ChannelPolicy(identity_kind=IdentityKind.phone, consent_required=True)
    check = sms.check(_ctx(opted_out=True))
    assert not check.allowed and check.reason == "the customer opted out on this channel"
    assert sms.check(_ctx(opted_out=False)).allowed


def test_an_sms_opt_out_does_not_close_other_channels_on_the_same_phone():
    whatsapp = ChannelPolicy(identity_kind=IdentityKind.phone, reply_window=timedelta(hours=24))
    assert whatsapp.check(_ctx(opted_out=True)).allowed
