"""Segments: saved contact filters, listed with their counts and their contacts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from rapport.domain import events
from rapport.domain.contacts.models import IdentityKind
from rapport.domain.contacts.queries import attribute_definitions, labels_of_account
from rapport.domain.errors import Conflict, InvalidInput
from rapport.domain.segments import actions
from rapport.domain.segments.filters import (
    OPS_BY_KIND,
    ActivityCondition,
    AttributeCondition,
    IdentityCondition,
    LabelCondition,
    SegmentFilter,
    parse_filter,
)
from rapport.domain.segments.models import Segment
from rapport.domain.segments.queries import (
    filter_contacts,
    filter_count,
    get_segment,
    segments_of,
)
from rapport.web.deps import Agent, CurrentAgent, DbSession
from rapport.web.templating import gettext_for, render

router = APIRouter(prefix="/segments", include_in_schema=False)

PAGE = 50
BLANK_ROWS = 3
OPS = (
    "equals",
    "not_equals",
    "contains",
    "gt",
    "lt",
    "is_set",
    "is_not_set",
    "has",
    "has_not",
    "within",
    "not_within",
)


def _redirect(path: str) -> Response:
    return RedirectResponse(path, status_code=303)


# --- the condition rows of the form <-> the filter JSON -------------------------------------------


def _row_to_condition(field: str, op: str, value: str) -> dict[str, Any]:
    """One form row ('attribute:plan', 'equals', 'pro') as a condition for the filter schema."""
    kind, _, ref = field.partition(":")
    if kind == "attribute":
        return {"type": "attribute", "key": ref, "op": op, "value": value}
    if kind == "label":
        return {"type": "label", "label_id": int(ref) if ref.isdigit() else 0, "op": op}
    if kind == "identity":
        return {"type": "identity", "kind": ref, "op": op}
    if kind == "last_active":
        days = int(value) if value.strip().isdigit() else 0
        return {"type": "last_active", "op": op, "days": days}
    return {"type": kind, "op": op}


def _filter_from_form(form: FormData) -> dict[str, Any]:
    fields, ops, values = (form.getlist(n) for n in ("cond_field", "cond_op", "cond_value"))
    conditions = [
        _row_to_condition(str(field), str(op), str(value))
        for field, op, value in zip(fields, ops, values, strict=False)
        if str(field)
    ]
    return {"match": str(form.get("match") or "all"), "conditions": conditions}


def _rows(flt: SegmentFilter | None) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for c in flt.conditions if flt else []:
        if isinstance(c, AttributeCondition):
            value = "" if c.value is None else str(c.value)
            rows.append({"field": f"attribute:{c.key}", "op": c.op, "value": value})
        elif isinstance(c, LabelCondition):
            rows.append({"field": f"label:{c.label_id}", "op": c.op, "value": ""})
        elif isinstance(c, IdentityCondition):
            rows.append({"field": f"identity:{c.kind}", "op": c.op, "value": ""})
        elif isinstance(c, ActivityCondition):
            rows.append({"field": "last_active", "op": c.op, "value": str(c.days)})
        else:
            rows.append({"field": "open_conversation", "op": c.op, "value": ""})
    return rows + [{"field": "", "op": "", "value": ""}] * BLANK_ROWS


async def _form_page(
    request: Request,
    session: AsyncSession,
    agent: Agent,
    *,
    segment: Segment | None,
    values: dict[str, Any],
    rows: Sequence[dict[str, str]],
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "segments/form.html",
        {
            "segment": segment,
            "values": values,
            "rows": rows,
            "definitions": await attribute_definitions(session, account_id=agent.account.id),
            "labels": await labels_of_account(session, account_id=agent.account.id),
            "identity_kinds": list(IdentityKind),
            "ops": OPS,
            "ops_by_kind": {kind.value: ops for kind, ops in OPS_BY_KIND.items()},
            "error": str(gettext_for(request)(error)) if error else None,
        },
        status_code=status_code,
    )


# --- pages --------------------------------------------------------------------------------------


@router.get("")
async def segment_list(request: Request, agent: CurrentAgent, session: DbSession) -> Response:
    segments = await segments_of(session, account_id=agent.account.id)
    definitions = await attribute_definitions(session, account_id=agent.account.id)
    counts = {
        s.id: await filter_count(
            session,
            account_id=agent.account.id,
            flt=parse_filter(s.filters),
            definitions=definitions,
        )
        for s in segments
    }
    return render(request, "segments/index.html", {"segments": segments, "counts": counts})


@router.get("/new")
async def new_segment(request: Request, agent: CurrentAgent, session: DbSession) -> Response:
    values = {"name": "", "description": "", "match": "all"}
    return await _form_page(request, session, agent, segment=None, values=values, rows=_rows(None))


async def _save(
    request: Request, session: AsyncSession, agent: Agent, segment: Segment | None
) -> Response:
    form = await request.form()
    raw = _filter_from_form(form)
    name, description = str(form.get("name") or ""), str(form.get("description") or "")
    try:
        if segment is None:
            segment = await actions.create_segment(
                session,
                account_id=agent.account.id,
                name=name,
                description=description,
                filters=raw,
                created_by_id=agent.user.id,
            )
        else:
            await actions.update_segment(
                session,
                segment=segment,
                name=name,
                description=description,
                filters=raw,
                actor_user_id=agent.user.id,
            )
    except (InvalidInput, Conflict) as exc:
        rows = [
            {"field": str(f), "op": str(o), "value": str(v)}
            for f, o, v in zip(
                form.getlist("cond_field"),
                form.getlist("cond_op"),
                form.getlist("cond_value"),
                strict=False,
            )
        ]
        values = {"name": name, "description": description, "match": raw["match"]}
        return await _form_page(
            request,
            session,
            agent,
            segment=segment if segment is not None and segment.id else None,
            values=values,
            rows=rows,
            error=str(exc),
            status_code=422,
        )
    await events.commit(session)
    return _redirect(f"/segments/{segment.id}")


@router.post("")
async def create_segment(request: Request, agent: CurrentAgent, session: DbSession) -> Response:
    return await _save(request, session, agent, None)


@router.get("/{segment_id}")
async def segment_page(
    request: Request,
    segment_id: int,
    agent: CurrentAgent,
    session: DbSession,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    account_id = agent.account.id
    segment = await get_segment(session, account_id=account_id, segment_id=segment_id)
    flt = parse_filter(segment.filters)
    definitions = await attribute_definitions(session, account_id=account_id)
    contacts = await filter_contacts(
        session,
        account_id=account_id,
        flt=flt,
        limit=PAGE + 1,
        offset=(page - 1) * PAGE,
        definitions=definitions,
    )
    return render(
        request,
        "segments/show.html",
        {
            "segment": segment,
            "count": await filter_count(
                session, account_id=account_id, flt=flt, definitions=definitions
            ),
            "contacts": contacts[:PAGE],
            "page": page,
            "has_more": len(contacts) > PAGE,
            "rows": _rows(flt)[:-BLANK_ROWS],
            "match": flt.match,
            "definitions": {d.key: d for d in definitions},
            "labels": {
                str(label.id): label
                for label in await labels_of_account(session, account_id=agent.account.id)
            },
        },
    )


@router.get("/{segment_id}/edit")
async def edit_segment(
    request: Request, segment_id: int, agent: CurrentAgent, session: DbSession
) -> Response:
    segment = await get_segment(session, account_id=agent.account.id, segment_id=segment_id)
    flt = parse_filter(segment.filters)
    values = {"name": segment.name, "description": segment.description, "match": flt.match}
    return await _form_page(
        request, session, agent, segment=segment, values=values, rows=_rows(flt)
    )


@router.post("/{segment_id}")
async def update_segment(
    request: Request, segment_id: int, agent: CurrentAgent, session: DbSession
) -> Response:
    segment = await get_segment(session, account_id=agent.account.id, segment_id=segment_id)
    return await _save(request, session, agent, segment)


@router.post("/{segment_id}/delete")
async def delete_segment(segment_id: int, agent: CurrentAgent, session: DbSession) -> Response:
    segment = await get_segment(session, account_id=agent.account.id, segment_id=segment_id)
    await actions.delete_segment(session, segment=segment, actor_user_id=agent.user.id)
    await events.commit(session)
    return _redirect("/segments")
