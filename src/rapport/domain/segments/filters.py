"""A segment's filter: validated JSON (pydantic) compiled to one SQL condition on contacts.

The same condition runs on SQLite and PostgreSQL: attribute values are read with SQLAlchemy's
JSON accessors (JSON_EXTRACT on SQLite, ->> on PostgreSQL). Numbers are compared only where the
stored value is a JSON number, so a stray text value never breaks a segment on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import ColumnElement, and_, case, exists, func, not_, or_, select, true

from rapport.domain.contacts import policies
from rapport.domain.contacts.models import (
    AttributeDefinition,
    AttributeKind,
    Contact,
    ContactLabel,
    Identity,
    IdentityKind,
)
from rapport.domain.conversations.models import OPEN_STATUSES, Conversation
from rapport.domain.errors import InvalidInput

MAX_CONDITIONS = 20

AttributeOp = Literal["equals", "not_equals", "contains", "gt", "lt", "is_set", "is_not_set"]
HasOp = Literal["has", "has_not"]

# Which comparisons make sense for which attribute type.
OPS_BY_KIND: dict[AttributeKind, tuple[str, ...]] = {
    AttributeKind.text: ("equals", "not_equals", "contains", "is_set", "is_not_set"),
    AttributeKind.choice: ("equals", "not_equals", "is_set", "is_not_set"),
    AttributeKind.number: ("equals", "not_equals", "gt", "lt", "is_set", "is_not_set"),
    AttributeKind.date: ("equals", "not_equals", "gt", "lt", "is_set", "is_not_set"),
}
NEEDS_VALUE = frozenset({"equals", "not_equals", "contains", "gt", "lt"})


class _Condition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AttributeCondition(_Condition):
    type: Literal["attribute"] = "attribute"
    key: str = Field(pattern=policies.KEY_PATTERN.pattern)
    op: AttributeOp
    value: str | int | float | None = None


class LabelCondition(_Condition):
    type: Literal["label"] = "label"
    label_id: int = Field(gt=0)
    op: HasOp = "has"


class IdentityCondition(_Condition):
    type: Literal["identity"] = "identity"
    kind: IdentityKind
    op: HasOp = "has"


class ActivityCondition(_Condition):
    """Last active (a message, a custom event) within the last N days, or not."""

    type: Literal["last_active"] = "last_active"
    op: Literal["within", "not_within"] = "within"
    days: int = Field(ge=1, le=3650)


class OpenConversationCondition(_Condition):
    type: Literal["open_conversation"] = "open_conversation"
    op: HasOp = "has"


Condition = Annotated[
    AttributeCondition
    | LabelCondition
    | IdentityCondition
    | ActivityCondition
    | OpenConversationCondition,
    Field(discriminator="type"),
]


class SegmentFilter(BaseModel):
    """All (or any) of the conditions; no condition matches every contact."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    match: Literal["all", "any"] = "all"
    conditions: list[Condition] = Field(default_factory=list, max_length=MAX_CONDITIONS)


def parse_filter(raw: object) -> SegmentFilter:
    """A filter from stored or submitted JSON, or InvalidInput saying what is wrong."""
    if isinstance(raw, SegmentFilter):
        return raw
    try:
        return SegmentFilter.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInput("the segment's conditions are not valid", field="filters") from exc


def check_filter(
    flt: SegmentFilter, *, definitions: Sequence[AttributeDefinition], label_ids: set[int]
) -> SegmentFilter:
    """Check each condition against the account (attribute types, labels) and normalise values."""
    by_key = {d.key: d for d in definitions}
    checked: list[Condition] = []
    for condition in flt.conditions:
        if isinstance(condition, AttributeCondition):
            checked.append(_check_attribute(condition, by_key))
            continue
        if isinstance(condition, LabelCondition) and condition.label_id not in label_ids:
            raise InvalidInput("a condition uses a label that does not exist", field="filters")
        checked.append(condition)
    return SegmentFilter(match=flt.match, conditions=checked)


def _check_attribute(
    condition: AttributeCondition, by_key: Mapping[str, AttributeDefinition]
) -> AttributeCondition:
    definition = by_key.get(condition.key)
    if definition is None:
        raise InvalidInput("a condition uses an attribute that does not exist", field="filters")
    kind = AttributeKind(definition.kind)
    if condition.op not in OPS_BY_KIND[kind]:
        raise InvalidInput("this comparison does not fit the attribute's type", field="filters")
    if condition.op not in NEEDS_VALUE:
        return condition.model_copy(update={"value": None})
    if kind == AttributeKind.text:
        value = str(condition.value or "").replace("\x00", "").strip()
        if not value:
            raise InvalidInput("a condition needs a value to compare with", field="filters")
        return condition.model_copy(update={"value": value[: policies.TEXT_MAX]})
    try:
        parsed = policies.parse_value(kind, definition.options, condition.value)
    except InvalidInput as exc:
        raise InvalidInput(str(exc), field="filters") from None
    if parsed is None:
        raise InvalidInput("a condition needs a value to compare with", field="filters")
    return condition.model_copy(update={"value": parsed})


# --- compiling to SQL ----------------------------------------------------------------------------


def compile_filter(
    flt: SegmentFilter,
    *,
    account_id: int,
    definitions: Sequence[AttributeDefinition],
    dialect: str,
    now: datetime,
) -> ColumnElement[bool]:
    """The filter as a WHERE condition on contacts (live contacts of the account only)."""
    kinds = {d.key: AttributeKind(d.kind) for d in definitions}
    parts = [_condition_sql(c, kinds, dialect, now) for c in flt.conditions]
    scope = and_(Contact.account_id == account_id, Contact.merged_into_id.is_(None))
    if not parts:
        return scope
    combined = and_(*parts) if flt.match == "all" else or_(*parts)
    return and_(scope, combined)


def _condition_sql(
    condition: Condition, kinds: Mapping[str, AttributeKind], dialect: str, now: datetime
) -> ColumnElement[bool]:
    if isinstance(condition, AttributeCondition):
        kind = kinds.get(condition.key)
        if kind is None:  # the attribute was deleted since: the condition matches nobody
            return not_(true())
        return _attribute_sql(condition, kind, dialect)
    if isinstance(condition, LabelCondition):
        has = exists(
            select(ContactLabel.contact_id).where(
                ContactLabel.contact_id == Contact.id, ContactLabel.label_id == condition.label_id
            )
        )
        return has if condition.op == "has" else not_(has)
    if isinstance(condition, IdentityCondition):
        has = exists(
            select(Identity.id).where(
                Identity.contact_id == Contact.id, Identity.kind == condition.kind.value
            )
        )
        return has if condition.op == "has" else not_(has)
    if isinstance(condition, ActivityCondition):
        recent = Contact.last_activity_at >= now - timedelta(days=condition.days)
        return recent if condition.op == "within" else not_(recent)
    has_open = exists(
        select(Conversation.id).where(
            Conversation.contact_id == Contact.id,
            Conversation.status.in_([s.value for s in OPEN_STATUSES]),
        )
    )
    return has_open if condition.op == "has" else not_(has_open)


def _attribute_sql(
    condition: AttributeCondition, kind: AttributeKind, dialect: str
) -> ColumnElement[bool]:
    text_value: ColumnElement[str] = Contact.attributes[condition.key].as_string()
    if condition.op in ("is_set", "is_not_set"):
        is_set = text_value.is_not(None)
        return is_set if condition.op == "is_set" else not_(is_set)
    if kind == AttributeKind.number:
        stored: ColumnElement[Any] = _json_number(condition.key, dialect)
        target: object = float(condition.value or 0)
    elif kind == AttributeKind.text:
        stored = func.lower(text_value)
        target = str(condition.value).lower()
    else:  # dates (ISO text sorts as dates do) and list options compare as stored
        stored = text_value
        target = str(condition.value)
    return _compare(stored, condition.op, target)


def _compare(stored: ColumnElement[Any], op: str, target: object) -> ColumnElement[bool]:
    comparisons: dict[str, Callable[[], ColumnElement[bool]]] = {
        "contains": lambda: stored.contains(str(target), autoescape=True),
        "gt": lambda: stored > target,
        "lt": lambda: stored < target,
        "not_equals": lambda: or_(stored.is_(None), stored != target),
        "equals": lambda: stored == target,
    }
    return comparisons[op]()


def _json_number(key: str, dialect: str) -> ColumnElement[float]:
    element = Contact.attributes[key]
    if dialect == "postgresql":
        # CASE guarantees the cast only runs on JSON numbers (AND does not short-circuit).
        return case((func.jsonb_typeof(element) == "number", element.as_float()), else_=None)
    return case(
        (
            func.json_type(Contact.attributes, f"$.{key}").in_(["integer", "real"]),
            element.as_float(),
        ),
        else_=None,
    )
