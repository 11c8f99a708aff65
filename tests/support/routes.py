"""Every route of the app, for tests that must cover routes added later automatically."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

PARAM = re.compile(r"{(\w+)(?::\w+)?}")


@dataclass(frozen=True)
class RouteInfo:
    path: str
    methods: tuple[str, ...]
    websocket: bool

    @property
    def params(self) -> list[str]:
        return PARAM.findall(self.path)

    def url(self, values: dict[str, Any]) -> str:
        return PARAM.sub(lambda m: str(values[m.group(1)]), self.path)


def _walk(routes: list[Any], prefix: str = "") -> Iterator[RouteInfo]:
    for route in routes:
        if hasattr(route, "original_router"):
            yield from _walk(route.original_router.routes, prefix + route.include_context.prefix)
            continue
        path = getattr(route, "path", None)
        if path is None or not hasattr(route, "endpoint"):
            continue
        methods = tuple(sorted(getattr(route, "methods", None) or ()))
        yield RouteInfo(prefix + path, methods, websocket=not methods)


def all_routes(app: FastAPI) -> list[RouteInfo]:
    return list(_walk(app.router.routes))
