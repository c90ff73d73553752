import io
import json
import logging
import subprocess
import sys
from unittest import mock

import pytest
from django.db import OperationalError
from django.test import override_settings
from rest_framework.response import Response

from governance.models import AccessLogEntry
from governance.testing import client_for, make_user


@pytest.fixture
def user(db):
    return make_user("alice")


def test_token_login_and_both_header_styles(user, client):
    response = client.post(
        "/api/v1/auth/token/", {"username": "alice", "password": "correct horse battery staple"}
    )
    assert response.status_code == 200
    token = response.json()["token"]
    for header in (f"Token {token}", f"Bearer {token}"):
        assert client.get("/api/v1/jobs/", HTTP_AUTHORIZATION=header).status_code == 200
    assert client.get("/api/v1/jobs/", HTTP_AUTHORIZATION="Bearer nope").status_code == 401
    assert AccessLogEntry.objects.filter(action="login", user=user).exists() is False


def test_failed_logins_are_logged_and_then_refused(user, client, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for expected in (400, 400, 429):
        response = client.post("/api/v1/auth/token/", {"username": "alice", "password": "wrong"})
        assert response.status_code == expected
    assert AccessLogEntry.objects.filter(action="login_failed", user_name="alice").count() == 3
    # Locked: even the right password is refused until the window passes, on every path.
    response = client.post(
        "/api/v1/auth/token/", {"username": "alice", "password": "correct horse battery staple"}
    )
    assert response.status_code == 429
    assert not client.post(
        "/api-auth/login/", {"username": "alice", "password": "correct horse battery staple"}
    ).wsgi_request.user.is_authenticated


def test_admin_login_is_logged(user, client):
    user.is_staff = True
    user.save()
    response = client.post(
        "/admin/login/", {"username": "alice", "password": "correct horse battery staple"}
    )
    assert response.status_code == 302
    assert AccessLogEntry.objects.filter(action="login", user=user).exists()
    client.post("/admin/logout/")
    assert AccessLogEntry.objects.filter(action="logout", user=user).exists()


def test_request_id_is_echoed_or_made(user):
    client = client_for(user)
    assert client.get("/api/v1/jobs/", HTTP_X_REQUEST_ID="abc-123")["X-Request-ID"] == "abc-123"
    made = client.get("/api/v1/jobs/", HTTP_X_REQUEST_ID="bad id\n")["X-Request-ID"]
    assert len(made) == 32


def test_logs_are_json_with_the_request_id(user):
    def list_and_log(*args, **kwargs):
        logging.getLogger("steward.test").warning("inside")
        return Response([])

    console = logging.getLogger().handlers[0]  # the configured JSON handler
    stream = io.StringIO()
    previous = console.setStream(stream)
    try:
        with mock.patch("governance.api.views.JobRunViewSet.list", list_and_log):
            client_for(user).get("/api/v1/jobs/", HTTP_X_REQUEST_ID="req-42")
    finally:
        console.setStream(previous)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    inside = next(line for line in lines if line["message"] == "inside")
    assert inside["request_id"] == "req-42" and inside["level"] == "WARNING"


def test_database_outage_is_a_503_with_retry_after(user):
    client = client_for(user)
    with mock.patch(
        "governance.api.views.JobRunViewSet.list",
        side_effect=OperationalError("could not connect to server"),
    ):
        response = client.get("/api/v1/jobs/")
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert response.json()["component"] == "database"


def test_cache_outage_is_a_503_naming_the_cache(user):
    down = {
        "default": {
            "BACKEND": "governance.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.5},
        }
    }
    client = client_for(user)
    with override_settings(CACHES=down):
        response = client.get("/api/v1/jobs/")
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert response.json() == {
        "detail": "The cache (Redis) is unavailable; try again shortly.",
        "component": "cache",
    }


def test_health_reports_each_part(db, client):
    response = client.get("/health/")
    assert response.status_code == 200, response.content
    assert response.json()["checks"] == {"database": "ok", "cache": "ok", "broker": "ok"}
    with override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0"):
        response = client.get("/health/")
    assert response.status_code == 503
    assert response.json()["failing"] == ["broker"]
    assert response["Retry-After"] == "30"


def test_metrics_and_api_docs_are_served(db, client):
    assert b"django_http_requests" in client.get("/metrics").content
    schema = client.get("/api/schema/")
    assert schema.status_code == 200 and b"/api/v1/sources/" in schema.content
    docs = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in docs and "cdn" not in docs.lower()


def test_unknown_user_gets_401_not_403(db, client):
    response = client.get("/api/v1/sources/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_check_deploy_with_production_settings_is_clean(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "STEWARD_ENV": "production",
        "SECRET_KEY": "x7#Qv9!pL2@mZ4$wR8^tY6&uI1*oP3(aS5)dF0-gH7_jK9+lZ2=xC4",
        "ENCRYPTION_KEYS": "yd6hM0c_bFxq4XK6b6Q3Wlz3m8p8wI9bqR9dYpQmZ3Q=",
        "ALLOWED_HOSTS": "steward.example.com",
        "STEWARD_VAR_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNINGS" not in result.stderr and "no issues" in result.stdout


def test_production_refuses_to_start_without_keys(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "STEWARD_ENV": "production", "STEWARD_VAR_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_only_the_admin_role_manages_object_grants(db, client):
    from governance.services import grant
    from sources.models import DataSource

    source = DataSource.objects.create(name="s", kind="postgresql", host="h")
    steward = make_user("sam", roles=["Steward"], staff=True)
    grant(source, steward, "steward")
    client.force_login(steward)
    url = f"/admin/sources/datasource/{source.pk}/permissions/"
    assert client.get(url).status_code == 403
    assert client.get(f"{url}user-manage/{steward.pk}/").status_code == 403
    client.force_login(make_user("ada", roles=["Admin"], staff=True))
    assert client.get(url).status_code == 200
