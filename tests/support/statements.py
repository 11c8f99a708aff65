"""What SQL a piece of code sends: statement counts as test assertions, not timings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event


@contextmanager
def sql_sent(services: Any) -> Iterator[list[str]]:
    """The statements sent while the block runs, whitespace folded (BEGIN and COMMIT are left
    to the drivers, which send them with or around these)."""
    sent: list[str] = []

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(" ".join(statement.split()))

    engine = services.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
