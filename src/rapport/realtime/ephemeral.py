"""Ephemeral signals (typing indicators): pushed live across nodes, never written to the event log.

Losing one costs nothing (the next ping or its timeout corrects the screen), so they take the
bus's fast path only: no numbering, no replay. Each carries what the one visibility rule needs
(assignee and team), so fan-out decides without the database, like committed events.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Literal

from rapport.domain.conversations.policies import Viewer, can_see

# Queued next to numbered events; the socket pumps send it whatever number they resumed from.
EPHEMERAL_SEQ = -1
# A typing indicator shows this long after the last ping unless a stop arrives first.
TYPING_TTL_SECONDS = 6


@dataclass(frozen=True)
class Typing:
    account_id: int
    conversation_id: int
    assignee_id: int | None
    team_id: int | None
    who: Literal["agent", "visitor"]
    typing: bool
    user_id: int | None = None
    name: str = ""

    def to_wire(self) -> dict[str, Any]:
        return {"kind": "typing", **asdict(self)}

    @classmethod
    def from_wire(cls, wire: dict[str, Any]) -> Typing:
        return cls(
            account_id=int(wire["account_id"]),
            conversation_id=int(wire["conversation_id"]),
            assignee_id=wire.get("assignee_id"),
            team_id=wire.get("team_id"),
            who="agent" if wire.get("who") == "agent" else "visitor",
            typing=bool(wire.get("typing")),
            user_id=wire.get("user_id"),
            name=str(wire.get("name") or "")[:200],
        )

    def for_agent(self, viewer: Viewer) -> str | None:
        """The frame an agent's tab gets, or None (not theirs to see, or their own typing)."""
        if self.who == "agent" and self.user_id == viewer.user_id:
            return None
        if not can_see(
            viewer, account_id=self.account_id, assignee_id=self.assignee_id, team_id=self.team_id
        ):
            return None
        return self._frame(conversation_id=self.conversation_id)

    def for_visitor(self, conversation_id: int) -> str | None:
        """The frame a visitor gets: only agents typing in their own conversation."""
        if self.who != "agent" or self.conversation_id != conversation_id:
            return None
        return self._frame()

    def _frame(self, **extra: Any) -> str:
        frame: dict[str, Any] = {"kind": "typing", "who": self.who, "name": self.name}
        frame.update(typing=self.typing, ttl=TYPING_TTL_SECONDS)
        return json.dumps({**frame, **extra}, separators=(",", ":"))
