"""Database plumbing: declarative base, engine and sessions, the outbox."""
