"""Admin forms generated from each channel adapter's pydantic `Config`."""

from __future__ import annotations

import inspect
import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import AnyUrl, BaseModel
from pydantic.fields import FieldInfo

from rapport.channels.base import Channel


@dataclass(frozen=True)
class FieldSpec:
    name: str
    label: str
    kind: str  # text, password, url, number, checkbox, textarea
    required: bool
    help: str
    value: Any
    stored: bool  # a secret that already has a value (left blank keeps it)


def _kind(annotation: Any, secret: bool) -> str:
    if secret:
        return "password"
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    base = args[0] if isinstance(annotation, types.UnionType) and args else annotation
    if base is bool:
        return "checkbox"
    if base is int:
        return "number"
    if isinstance(base, type) and issubclass(base, AnyUrl):
        return "url"
    if typing.get_origin(base) is list or base is dict:
        return "textarea"
    return "text"


def _label(name: str, info: FieldInfo) -> str:
    return info.title or name.replace("_", " ").capitalize()


def _own_fields_first(config: type[BaseModel]) -> list[tuple[str, FieldInfo]]:
    """A channel's own fields (its account ids) before those shared with a base config."""
    own = list(inspect.get_annotations(config))
    rank = {name: index for index, name in enumerate(own)}
    return sorted(config.model_fields.items(), key=lambda item: rank.get(item[0], len(own)))


def config_fields(adapter: Channel[Any], current: dict[str, Any] | None) -> list[FieldSpec]:
    current = current or {}
    specs = []
    for name, info in _own_fields_first(adapter.Config):
        secret = name in adapter.secret_fields
        value = current.get(name, info.default if not info.is_required() else "")
        if value is None:
            value = ""
        if isinstance(value, list):
            value = "\n".join(str(v) for v in value)
        specs.append(
            FieldSpec(
                name=name,
                label=_label(name, info),
                kind=_kind(info.annotation, secret),
                required=info.is_required(),
                help=info.description or "",
                value="" if secret else value,
                stored=secret and bool(current.get(name)),
            )
        )
    return specs


def config_from_form(
    adapter: Channel[Any], form: dict[str, str], current: dict[str, Any] | None
) -> dict[str, Any]:
    """Raw form values for the adapter's Config; blank secrets keep their stored value."""
    current = current or {}
    data: dict[str, Any] = {}
    for spec in config_fields(adapter, current):
        raw = form.get(f"config.{spec.name}", "")
        if spec.kind == "checkbox":
            data[spec.name] = raw in ("on", "true", "1")
        elif spec.kind == "password" and not raw and current.get(spec.name):
            data[spec.name] = current[spec.name]
        elif spec.kind == "textarea":
            data[spec.name] = [line.strip() for line in raw.splitlines() if line.strip()]
        elif raw != "" or spec.required:
            data[spec.name] = raw
    return data
