"""The one visibility rule: who may see a conversation.

Views, search, exports, notifications and realtime fan-out all ask these two functions, which
say the same thing twice: once in Python (for fan-out, with no database query) and once in SQL
(for lists). A property-based test keeps the two in agreement.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, false, or_, true

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


def visible_filter(viewer: Viewer) -> ColumnElement[bool]:
    """The same rule as `can_see`, as a SQL condition on conversations."""
    same_account = Conversation.account_id == viewer.account_id
    if viewer.sees_everything:
        return and_(same_account, true())
    mine = Conversation.assignee_id == viewer.user_id
    if viewer.visibility == Visibility.team:
        team_ok = Conversation.team_id.in_(sorted(viewer.team_ids)) if viewer.team_ids else false()
        return and_(same_account, or_(mine, Conversation.team_id.is_(None), team_ok))
    return and_(same_account, mine)
