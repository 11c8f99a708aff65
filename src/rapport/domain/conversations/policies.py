"""The one visibility rule: who may see a conversation.

Views, search, exports, notifications and realtime fan-out all ask these two functions, which
say the same thing twice: once in Python (for fan-out, with no database query) and once in SQL
(for lists). A property-based test keeps the two in agreement.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, and_, bindparam, or_, true

from rapport.domain.accounts.models import Visibility
from rapport.domain.agents.models import Role
from rapport.domain.conversations.models import Conversation


@dataclass(frozen=True)
class Viewer:
    """A signed-in user as the visibility rule sees them."""

    user_id: int
    account_id: int
    role: Role
    team_ids: frozenset[int]
    visibility: Visibility

    @property
    def sees_everything(self) -> bool:
        return self.role in (Role.admin, Role.supervisor) or self.visibility == Visibility.all


def can_see(
    viewer: Viewer, *, account_id: int, assignee_id: int | None, team_id: int | None
) -> bool:
    if account_id != viewer.account_id:
        return False
    if viewer.sees_everything or assignee_id == viewer.user_id:
        return True
    if viewer.visibility == Visibility.team:
        return team_id is None or team_id in viewer.team_ids
    return False


# The SQL half is written once per kind of viewer, with the viewer's values as bound
# parameters: a list built on it is a statement built once, and only its values change.
def visibility_kind(viewer: Viewer) -> str:
    """Which form of the rule applies to this viewer (the shape of its SQL)."""
    if viewer.sees_everything:
        return "all"
    if viewer.visibility == Visibility.team:
        return "team" if viewer.team_ids else "team_without_teams"
    return "assigned"


def visibility_params(viewer: Viewer) -> dict[str, object]:
    """The values `visible_condition` binds for this viewer."""
    return {
        "viewer_account_id": viewer.account_id,
        "viewer_user_id": viewer.user_id,
        "viewer_team_ids": sorted(viewer.team_ids),
    }


def _rule(kind: str, values: dict[str, object] | None) -> ColumnElement[bool]:
    def value(name: str, expanding: bool = False) -> BindParameter[Any]:
        if values is None:
            return bindparam(name, expanding=expanding)
        return bindparam(name, values[name], expanding=expanding)

    same_account = Conversation.account_id == value("viewer_account_id")
    if kind == "all":
        return and_(same_account, true())
    mine = Conversation.assignee_id == value("viewer_user_id")
    if kind == "team":
        teams = Conversation.team_id.in_(value("viewer_team_ids", expanding=True))
        return and_(same_account, or_(mine, Conversation.team_id.is_(None), teams))
    if kind == "team_without_teams":
        return and_(same_account, or_(mine, Conversation.team_id.is_(None)))
    return and_(same_account, mine)


@functools.cache
def visible_condition(kind: str) -> ColumnElement[bool]:
    """The same rule as `can_see`, as a SQL condition on conversations, for one kind of viewer;
    its values are bound at execution (`visibility_params`)."""
    return _rule(kind, None)


def visible_filter(viewer: Viewer) -> ColumnElement[bool]:
    """The rule as a SQL condition on conversations with this viewer's values in it."""
    return _rule(visibility_kind(viewer), visibility_params(viewer))
