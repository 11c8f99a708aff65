"""The ASGI edge: app factory, pages, websocket, JSON API, provider webhooks."""
