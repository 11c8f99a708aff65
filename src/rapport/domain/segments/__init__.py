"""Segments: saved filters over contacts (attributes, labels, identities, activity)."""
