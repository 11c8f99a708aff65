"""Operations endpoints."""

from rapport.db.migrate import downgrade


async def test_healthz(client):
    response = await client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_readyz_reports_the_database_and_its_migrations(client, db_url):
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    await downgrade(db_url, "base")
    pending = await client.get("/readyz")
    assert pending.status_code == 503 and pending.json()["status"] == "migrations pending"


async def test_metrics_are_prometheus_text(client):
    await client.get("/healthz")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert "rapport_http_requests_total" in response.text
    assert "rapport_websockets_connected" in response.text


async def test_pages_carry_security_headers(client):
    response = await client.get("/login")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in response.headers["content-security-policy"]
