"""Conventions a reviewer would otherwise have to remember."""

import ast
from pathlib import Path

SRC = Path(__file__).parents[1] / "src" / "rapport"


def _calls(path: Path, attribute: str) -> list[int]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == attribute
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id in {"session", "writer", "other"}
    ]


def test_commits_go_through_the_event_log():
    """`session.commit()` would skip numbering and publishing events: use `events.commit`."""
    allowed = {SRC / "domain" / "events.py", SRC / "db" / "outbox.py"}
    offenders = [
        f"{path.relative_to(SRC)}:{line}"
        for path in SRC.rglob("*.py")
        if path not in allowed
        for line in _calls(path, "commit")
    ]
    assert offenders == []


def test_state_changes_live_in_actions():
    """Routes and workers call actions; they never add rows themselves."""
    offenders = [
        f"{path.relative_to(SRC)}:{line}"
        for folder in ("web", "workers")
        for path in (SRC / folder).rglob("*.py")
        for line in _calls(path, "add") + _calls(path, "delete")
    ]
    assert offenders == []
