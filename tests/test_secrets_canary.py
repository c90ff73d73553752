"""The canary promise: a password or secret option set on a source appears nowhere it could
leak (API, admin, logs, change and access logs, job and test rows, the raw column)."""

import io
import json
import logging
import socket

import pytest
from django import forms
from django.core import serializers
from django.db import connection
from django.test import Client

from governance.models import AccessLogEntry, ChangeLogEntry, JobRun
from governance.testing import client_for, make_user
from sources.models import ConnectionTest, DataSource

CANARY_PASSWORD = "canary-7f3e-PASSWORD"
CANARY_API_KEY = "canary-apikey-91"
CANARIES = (CANARY_PASSWORD, CANARY_API_KEY)
MASK = "******"
URL = "/api/v1/sources/"


def listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


needs_mariadb = pytest.mark.skipif(not listening(3306), reason="no MariaDB on 127.0.0.1:3306")


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Users are made per test; PBKDF2 hashing would dominate the run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def canaries_in(text):
    lowered = text.lower()
    return [canary for canary in CANARIES if canary.lower() in lowered]


class Pages:
    """Every response seen, by label, so that one assertion can name all leaking pages."""

    def __init__(self):
        self.seen = []

    def __call__(self, label, response, status=200):
        body = response.content.decode(errors="replace")
        assert response.status_code == status, (label, response.status_code, body[:500])
        headers = "\n".join(f"{k}: {v}" for k, v in response.items())
        self.seen.append((label, f"{headers}\n{body}"))
        return response

    def leaks(self):
        return [(label, canaries_in(text)) for label, text in self.seen if canaries_in(text)]


@pytest.fixture
def console_log():
    """The configured JSON console handler, writing into a string for the test."""
    console = logging.getLogger().handlers[0]
    assert console.name == "console"
    stream = io.StringIO()
    previous = console.setStream(stream)
    yield stream
    console.setStream(previous)


@pytest.fixture
def root(db):
    return make_user("root", superuser=True)


@pytest.fixture
def api(root):
    return client_for(root)


@pytest.fixture
def web(root):
    client = Client()
    client.force_login(root)
    return client


def create_sources(api, pages):
    bodies = {
        "pg": {
            "name": "Canary PostgreSQL",
            "kind": "postgresql",
            "host": "127.0.0.1",
            "port": 5432,
            "database": "postgres",
            "username": "postgres",
            "password": CANARY_PASSWORD,
        },
        "es": {
            "name": "Canary Elasticsearch",
            "kind": "elasticsearch",
            "host": "127.0.0.1",
            "port": 9200,
            "options": {"api_key": CANARY_API_KEY, "connect_timeout": 2},
        },
        "my": {
            "name": "Canary MariaDB",
            "kind": "mysql",
            "host": "127.0.0.1",
            "port": 3306,
            "username": "root",
            "password": CANARY_PASSWORD,
        },
    }
    return {
        key: DataSource.objects.get(
            pk=pages(f"create {key}", api.post(URL, body, format="json"), 201).json()["id"]
        )
        for key, body in bodies.items()
    }


def exercise_api(api, pages, sources):
    pg, es, my = sources["pg"], sources["es"], sources["my"]
    for key, source in sources.items():
        pages(f"test stored {key}", api.post(f"{URL}{source.pk}/test"))
    pages(
        "test unsaved pg",
        api.post(f"{URL}{pg.pk}/test", {"password": MASK, "port": 5432}, format="json"),
    )
    pages("test unsaved my", api.post(f"{URL}{my.pk}/test", {"password": MASK}, format="json"))
    pages(
        "test unsaved es",
        api.post(f"{URL}{es.pk}/test", {"options": {"api_key": MASK}}, format="json"),
    )
    pages(
        "patch pg",
        api.patch(f"{URL}{pg.pk}/", {"password": MASK, "description": "patched"}, format="json"),
    )
    pages(
        "patch es",
        api.patch(
            f"{URL}{es.pk}/", {"options": {"api_key": MASK, "connect_timeout": 3}}, format="json"
        ),
    )
    pages("restore pg v1", api.post(f"{URL}{pg.pk}/version-history/1/restore"))


def run_admin_action(web, pages, sources, capture):
    with capture(execute=True) as callbacks:
        response = web.post(
            "/admin/sources/datasource/",
            {
                "action": "test_connection",
                "index": "0",
                "_selected_action": [str(s.pk) for s in sources.values()],
            },
        )
    pages("admin action", response, 302)
    assert len(callbacks) == 1
    pages("changelist after action", web.get(response["Location"]))
    job = JobRun.objects.get()
    assert (job.status, job.result["tested"]) == ("succeeded", 3), (job.status, job.error)
    return job


def save_admin_form(web, pages, source):
    """Post the change form back as the page renders it, with a new description and
    timeout: the password input is empty and the secret option stays masked."""
    url = f"/admin/sources/datasource/{source.pk}/change/"
    form = pages("admin change form", web.get(url)).context["adminform"].form
    data = {"_save": "Save"}
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(field.widget, forms.PasswordInput) and not field.widget.render_value:
            data[name] = ""
        elif isinstance(field, forms.BooleanField):
            if value:
                data[name] = "on"
        else:
            data[name] = "" if value is None else value
    assert json.loads(data["options_json"]) == {"api_key": MASK, "connect_timeout": 3}
    data["options_json"] = json.dumps({"api_key": MASK, "connect_timeout": 4})
    data["description"] = "edited in the admin"
    pages("admin save es", web.post(url, data), 302)


def read_everything(api, web, pages, sources):
    pages("sources list", api.get(URL))
    for key, source in sources.items():
        pages(f"detail {key}", api.get(f"{URL}{source.pk}/"))
        pages(f"version-history {key}", api.get(f"{URL}{source.pk}/version-history"))
        pages(f"access-control {key}", api.get(f"{URL}{source.pk}/access-control"))
    pages("connection tests", api.get("/api/v1/audit/connection-tests/?page_size=1000"))
    for test in ConnectionTest.objects.all():
        pages(f"connection test {test.pk}", api.get(f"/api/v1/audit/connection-tests/{test.pk}/"))
    pages("jobs", api.get("/api/v1/jobs/"))
    for job in JobRun.objects.all():
        pages(f"job {job.pk}", api.get(f"/api/v1/jobs/{job.pk}/"))
    pages("schema", api.get("/api/schema/"))
    pages("api not found", api.get(f"{URL}999999/"), 404)

    pages("admin index", web.get("/admin/"))
    pages("admin sources", web.get("/admin/sources/datasource/"))
    for key, source in sources.items():
        pages(f"admin change {key}", web.get(f"/admin/sources/datasource/{source.pk}/change/"))
        history = web.get(f"/admin/sources/datasource/{source.pk}/history/", follow=True)
        assert history.redirect_chain, f"history of {key} did not redirect"
        assert "/admin/governance/changelogentry/" in history.redirect_chain[-1][0]
        pages(f"admin history {key}", history)
        pages(
            f"admin connection-test log {key}",
            web.get(f"/admin/sources/connectiontest/?source__id__exact={source.pk}"),
        )
    for model, rows in (
        ("sources/connectiontest", ConnectionTest.objects.all()),
        ("governance/jobrun", JobRun.objects.all()),
        ("governance/changelogentry", ChangeLogEntry.objects.all()),
        ("governance/accesslogentry", AccessLogEntry.objects.all()),
    ):
        pages(f"admin {model}", web.get(f"/admin/{model}/"))
        for row in rows:
            pages(f"admin {model} {row.pk}", web.get(f"/admin/{model}/{row.pk}/change/"))


def test_canary_secrets_appear_nowhere(
    api, web, caplog, capsys, console_log, django_capture_on_commit_callbacks
):
    caplog.set_level(logging.DEBUG)
    pages = Pages()
    sources = create_sources(api, pages)
    exercise_api(api, pages, sources)
    job = run_admin_action(web, pages, sources, django_capture_on_commit_callbacks)
    save_admin_form(web, pages, sources["es"])
    read_everything(api, web, pages, sources)

    # The secrets are really there, so their absence below means something.
    pg = DataSource.objects.get(pk=sources["pg"].pk)
    es = DataSource.objects.get(pk=sources["es"].pk)
    assert pg.password == CANARY_PASSWORD
    assert es.secret_options == {"api_key": CANARY_API_KEY}
    assert (es.description, es.options) == ("edited in the admin", {"connect_timeout": 4})
    assert pg.last_test_ok is True, pg.last_test_error
    assert job.result["results"]["Canary PostgreSQL"] == "ok"
    assert len(pages.seen) > 40

    assert pages.leaks() == []

    for model in (ChangeLogEntry, AccessLogEntry, JobRun, ConnectionTest):
        rows = serializers.serialize("json", model.objects.all())
        assert model.objects.exists(), model
        assert canaries_in(rows) == [], model.__name__

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM sources_datasource")
        raw = cursor.fetchall()
        columns = [column[0] for column in cursor.description]
    stored = {row["name"]: row for row in (dict(zip(columns, r, strict=True)) for r in raw)}
    assert len(stored) == 3
    for name, row in stored.items():
        assert canaries_in(repr(row)) == [], name
    assert stored["Canary PostgreSQL"]["password"].startswith("gAAAA")
    assert stored["Canary MariaDB"]["password"].startswith("gAAAA")
    assert stored["Canary Elasticsearch"]["secret_options"].startswith("gAAAA")

    logged = console_log.getvalue()
    assert "Not Found" in logged  # the capture works: the deliberate 404 was logged
    assert canaries_in(logged) == []
    assert caplog.records
    assert canaries_in(caplog.text) == []
    out, err = capsys.readouterr()
    assert canaries_in(out + err) == []


@needs_mariadb
def test_wrong_password_error_names_auth_without_the_password(api):
    source = DataSource.objects.create(
        name="MariaDB wrong password",
        kind="mysql",
        host="127.0.0.1",
        port=3306,
        username="root",
        password=CANARY_PASSWORD,
    )
    body = api.post(f"{URL}{source.pk}/test").json()
    assert (body["ok"], body["error_kind"]) == (False, "auth"), body
    assert body["error"] and canaries_in(body["error"]) == []
    source.refresh_from_db()
    assert source.password == CANARY_PASSWORD
    assert source.last_test_error_kind == "auth"
    assert canaries_in(source.last_test_error) == []
    assert canaries_in(ConnectionTest.objects.get(source=source).error) == []
