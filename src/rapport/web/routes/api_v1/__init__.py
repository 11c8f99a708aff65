"""JSON API v1, authenticated by personal API tokens (Authorization: Bearer rpt_...).

One module per area; this package assembles them under /api/v1. Only these routes are in the
OpenAPI document at /api/openapi.json (every page and hook route is left out of it).
"""

from __future__ import annotations

from fastapi import APIRouter

from rapport.web.routes.api_v1 import contacts, conversations, merges, segments, webhooks

router = APIRouter(prefix="/api/v1")
router.include_router(conversations.router)
router.include_router(contacts.router)
router.include_router(merges.router)
router.include_router(segments.router)
router.include_router(webhooks.router)
