"""GET /healthz against the real servers, including a Redis outage."""

import pytest

pytestmark = pytest.mark.django_db


def test_healthz_reports_ok_without_login(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "redis": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_healthz_is_503_while_redis_is_down_and_200_when_back(client, redis_server):
    redis_server.stop()
    try:
        response = client.get("/healthz")
        assert response.status_code == 503
        body = response.json()
        assert body["database"] == "ok"
        assert body["redis"].startswith("error: ")
    finally:
        redis_server.start()

    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "redis": "ok"}


def test_healthz_refuses_post(client):
    assert client.post("/healthz").status_code == 405


def test_healthz_is_not_redirected_to_https(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz").status_code == 200
    assert client.get("/accounts/login/").status_code == 301
