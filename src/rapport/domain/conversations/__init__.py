"""Conversations: threads of work with one contact, across channels, and their messages."""
