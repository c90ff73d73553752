"""Headers every response carries: the Content-Security-Policy, and no-store on API data."""

import re

import pytest

from governance.testing import client_for, make_user

STRICT = {
    "default-src": "'self'",
    "img-src": "'self' data:",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


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
