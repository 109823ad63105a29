from fastapi.testclient import TestClient

from newsletter.web.app import create_app
from tests.helpers import add_active, ingest_sample


def test_preview_requires_the_admin_token(session, settings):
    ingest_sample(session)
    add_active(session, "ada@example.org", "diffusion models", "diffusion")
    client = TestClient(create_app())
    assert client.get("/preview/ada@example.org").status_code == 401
    assert client.get("/preview/ada@example.org", headers={"Authorization": "Bearer wrong"}).status_code == 401
    response = client.get("/preview/ada@example.org", headers={"Authorization": "Bearer test-admin-token"})
    assert response.status_code == 200 and "diffusion" in response.text.lower()
    assert response.headers["X-Frame-Options"] == "DENY"
    text = client.get("/preview/ada@example.org?text=1&token=test-admin-token")
    assert text.headers["content-type"].startswith("text/plain") and "Unsubscribe:" in text.text
    assert client.get("/preview/ghost@example.org?token=test-admin-token").status_code == 404


def test_admin_is_closed_when_no_token_is_configured(session, settings, monkeypatch):
    from newsletter.config import get_settings
    monkeypatch.setenv("NEWSLETTER_ADMIN_TOKEN", "")
    get_settings.cache_clear()
    add_active(session, "ada@example.org")
    client = TestClient(create_app())
    assert client.get("/preview/ada@example.org?token=").status_code == 401
