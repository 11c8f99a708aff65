"""Reply windows as the reply box explains them: WhatsApp asks for a template, Messenger and
Instagram allow a person to answer for 7 days with the human agent tag."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rapport.channels.instagram import InstagramChannel
from rapport.channels.messenger import MessengerChannel
from rapport.channels.whatsapp import WhatsAppChannel
from rapport.domain.ports import ReplyContext

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def ctx(hours_ago: float | None) -> ReplyContext:
    last = None if hours_ago is None else NOW - timedelta(hours=hours_ago)
    return ReplyContext(now=NOW, last_incoming_at=last, recipient="someone")


def test_whatsapp_window() -> None:
    policy = WhatsAppChannel.policy
    assert policy.check(ctx(23)).allowed and not policy.check(ctx(23)).needs_template
    closed = policy.check(ctx(25))
    assert closed.allowed and closed.needs_template
    assert policy.check(ctx(None)).needs_template


@pytest.mark.parametrize("adapter", [MessengerChannel, InstagramChannel])
def test_messenger_and_instagram_windows(adapter) -> None:
    policy = adapter.policy
    inside = policy.check(ctx(2))
    assert inside.allowed and inside.reason is None
    tagged = policy.check(ctx(48))
    assert tagged.allowed and not tagged.needs_template
    assert tagged.reason and "human agent" in tagged.reason
    closed = policy.check(ctx(24 * 7 + 1))
    assert not closed.allowed and closed.reason == "the reply window is closed"
    assert not policy.check(ctx(None)).allowed
