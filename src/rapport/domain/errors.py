"""Domain errors. Only `web/` turns them into HTTP answers (404, 403, 409, 422)."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the core raises on purpose."""


class NotFound(DomainError):
    """The object does not exist in this account (the same answer as 'not yours')."""


class Forbidden(DomainError):
    """The user may not do this."""


class Conflict(DomainError):
    """The request clashes with the current state."""


class InvalidInput(DomainError):
    """The input is not acceptable; the message says why, for a person."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
