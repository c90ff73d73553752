"""Headers every response carries (the Content-Security-Policy; no-store on API data), and who
may read the pages about the console: /metrics, the API schema and the API docs."""

import re
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.conf import settings

from governance.testing import client_for, make_user

STRICT = {
    "default-src": "'self'",
    "img-src": "'self' data:",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
INTERNAL = ["/metrics", "/api/schema/", "/api/docs/", "/api/docs/?script=", "/api/redoc/"]


def policy(response):
    header = response["Content-Security-Policy"]
    return dict(item.strip().split(" ", 1) for item in header.split(";"))


@pytest.fixture
def sam(db):
    return make_user("sam", staff=True)


def test_every_kind_of_response_carries_the_policy(sam, client):
    api = client_for(sam)
    responses = {
        "admin login": client.get("/admin/login/"),
        "api list": api.get("/api/v1/jobs/"),
        "api 401": client.get("/api/v1/jobs/"),
        "api 404": api.get("/api/v1/jobs/999999/"),
        "browsable api": api.get("/api/v1/jobs/", HTTP_ACCEPT="text/html"),
        "health": client.get("/health/"),
        "missing page": client.get("/no-such-page/"),
        "schema": client.get("/api/schema/"),
        "swagger ui": client.get("/api/docs/"),
        "swagger ui script": client.get("/api/docs/?script="),
        "metrics": client.get("/metrics"),
    }
    for name, response in responses.items():
        assert policy(response) == STRICT, name
    # Redoc writes <style> elements and makes its search worker from a blob: URL as it runs;
    # only that page allows them, and its scripts still come from this site alone.
    assert policy(client.get("/api/redoc/")) == STRICT | {
        "style-src": "'self' 'unsafe-inline'",
        "worker-src": "'self' blob:",
    }


def test_the_docs_and_the_browsable_api_have_no_inline_script_or_style(sam, client):
    inline_script = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>")
    pages = {
        "swagger ui": client.get("/api/docs/").content.decode(),
        "redoc": client.get("/api/redoc/").content.decode(),
        "browsable api": client_for(sam)
        .get("/api/v1/jobs/", HTTP_ACCEPT="text/html")
        .content.decode(),
    }
    for name, html in pages.items():
        assert not inline_script.search(html), name
        assert " onclick=" not in html and "fonts.googleapis.com" not in html, name
    assert "<style" not in pages["swagger ui"] and "<style" not in pages["redoc"]
    assert 'src="/api/docs/?script="' in pages["swagger ui"]
    script = client.get("/api/docs/?script=")
    assert script["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle" in script.content


def test_the_browsable_api_logs_out_with_a_form(sam, client):
    client.force_login(sam)
    html = client.get("/api/v1/jobs/", HTTP_ACCEPT="text/html").content.decode()
    assert '<form method="post" action="/api-auth/logout/?next=/api/v1/jobs/">' in html
    client.post("/api-auth/logout/?next=/api/v1/jobs/")
    assert client.get("/api/v1/jobs/").status_code == 401


def test_api_data_is_never_stored_by_caches(sam, client):
    api = client_for(sam)
    for response in (
        api.get("/api/v1/jobs/"),
        api.get("/api/v1/jobs/999999/"),
        client.get("/api/v1/jobs/"),
        api.get("/api/v1/jobs/", HTTP_ACCEPT="text/html"),
        client.get("/api/schema/"),
    ):
        assert "no-store" in response["Cache-Control"], response.wsgi_request.path
    assert "no-store" not in client.get("/api/docs/?script=").get("Cache-Control", "")


def test_internal_pages_are_open_to_everyone_locally(db, client):
    assert settings.METRICS_ALLOW == ["0.0.0.0/0", "::/0"]  # the local default
    for url in INTERNAL:
        assert client.get(url, REMOTE_ADDR="203.0.113.9").status_code == 200, url


def test_in_production_internal_pages_need_a_sign_in_or_an_allowed_address(db, client, settings):
    settings.METRICS_ALLOW = ["10.0.0.0/8", "2001:db8::/32"]
    viewer = make_user("vic")
    gone = make_user("gus")
    gone_client = client_for(gone)
    gone.is_active = False
    gone.save()
    session = type(client)()
    session.force_login(viewer)
    for url in INTERNAL:
        for refused in (
            client.get(url),
            client.get(url, REMOTE_ADDR="192.168.1.20"),
            client.get(url, HTTP_AUTHORIZATION="Token not-a-token"),
            gone_client.get(url),
        ):
            assert refused.status_code == 401, url
            assert refused["WWW-Authenticate"] == "Token"
            assert refused.json() == {
                "detail": "Sign in (an admin session or an API token) to read this, "
                "or call from an address in METRICS_ALLOW."
            }
        for allowed in (
            client_for(viewer).get(url),
            session.get(url),
            client.get(url, REMOTE_ADDR="10.1.2.3"),
            client.get(url, REMOTE_ADDR="::ffff:10.1.2.3"),
            client.get(url, REMOTE_ADDR="2001:db8::7"),
        ):
            assert allowed.status_code == 200, url
    bearer = client_for(viewer).get("/metrics")
    assert b"django_http_requests" in bearer.content


def manage(*args, **env):
    base = {
        "PATH": "/usr/bin:/bin",
        "STEWARD_VAR_DIR": env.pop("var_dir"),
        "SECRET_KEY": "x7#Qv9!pL2@mZ4$wR8^tY6&uI1*oP3(aS5)dF0-gH7_jK9+lZ2=xC4",
        "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        capture_output=True,
        text=True,
        env=base | env,
        timeout=120,
        cwd=settings.BASE_DIR,
    )


def test_production_lets_no_address_in_unless_listed_and_refuses_a_bad_entry(tmp_path):
    show = [
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings; print(settings.METRICS_ALLOW)",
    ]
    production = {"STEWARD_ENV": "production", "var_dir": str(tmp_path)}
    assert manage(*show, **production).stdout.strip() == "[]"
    listed = manage(*show, **production, METRICS_ALLOW="10.0.0.5, 10.1.0.0/16")
    assert listed.stdout.strip() == "['10.0.0.5', '10.1.0.0/16']"
    bad = manage(*show, **production, METRICS_ALLOW="prometheus.internal")
    assert bad.returncode != 0
    assert "METRICS_ALLOW: 'prometheus.internal' does not appear to be an IPv4 or IPv6" in (
        bad.stderr
    )
