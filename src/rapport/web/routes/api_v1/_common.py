"""What the API v1 modules share: path ids, the admin check, error answers for the docs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from pydantic import BaseModel, Field

from rapport.domain.errors import Forbidden
from rapport.web.deps import Agent
from rapport.web.schemas import MAX_ID

# A path id: positive and 64-bit (anything else names nothing, and is a 422, not a crash).
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]


# Page cursors the API hands out: "<unix seconds with 6 decimals>:<id>".
CURSOR_PATTERN = r"^[0-9]{1,12}\.[0-9]{6}:[0-9]{1,18}$"


class ErrorRead(BaseModel):
    detail: str
    field: str | None = Field(default=None, description="The input the message is about")


class ValidationItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class InvalidRead(BaseModel):
    """A 422: the request's shape (a list, one item per problem) or its meaning (a message)."""

    detail: str | list[ValidationItem]
    field: str | None = None


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the error answers a route gives (400, 401 and 422 always)."""
    described = {
        400: "The request is malformed",
        401: "A valid API token is required",
        403: "Your role may not do this",
        404: "Not found in your account",
        409: "It clashes with the current state",
    }
    answers: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorRead, "description": described[code]} for code in (400, 401, *codes)
    }
    answers[422] = {"model": InvalidRead, "description": "The input is not acceptable"}
    return answers


def require_admin(agent: Agent) -> None:
    if not agent.user.is_admin:
        raise Forbidden("this needs an admin's API token")


def require_supervisor(agent: Agent) -> None:
    if not agent.user.is_supervisor_or_admin:
        raise Forbidden("this needs a supervisor's or an admin's API token")
