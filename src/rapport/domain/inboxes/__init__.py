"""Inboxes: connected channel accounts, and the raw payloads they receive."""
