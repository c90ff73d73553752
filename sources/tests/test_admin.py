"""The admin goes through the same object permissions as the API, and keeps secrets
write-only."""

import html
import json
import re

import pytest
from django import forms
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.test import Client

from governance.models import AccessLogEntry, ChangeLogEntry, JobRun
from governance.services import grant
from governance.testing import make_user
from sources.models import ConnectionTest, DataSource

PASSWORD = "stored-pw-31337"
API_KEY = "es-key-5150"
CHANGELIST = "/admin/sources/datasource/"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Users are made per test; PBKDF2 hashing would dominate the run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def change_url(source):
    return f"{CHANGELIST}{source.pk}/change/"


def pg_source(name, **extra):
    values = {
        "kind": "postgresql",
        "host": "127.0.0.1",
        "port": 5432,
        "database": "postgres",
        "username": "postgres",
        "password": PASSWORD,
    }
    values.update(extra)
    return DataSource.objects.create(name=name, **values)


def login(user):
    client = Client()
    client.force_login(user)
    return client


def messages_of(response):
    return [str(message) for message in response.context["messages"]]


@pytest.fixture
def a(db):
    return pg_source("alpha-orders")


@pytest.fixture
def b(db):
    return pg_source("bravo-payroll")


@pytest.fixture
def steward(a):
    user = make_user("sam", roles=["Steward"], staff=True)
    grant(a, user, "steward")
    return user


@pytest.fixture
def viewer(a):
    user = make_user("vera", roles=["Viewer"], staff=True)
    grant(a, user, "viewer")
    return user


def form_data(client, source, **changes):
    """The change form as the page renders it (so as the browser would post it), changed."""
    form = client.get(change_url(source)).context["adminform"].form
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
    data.update(changes)
    return data


def test_changelist_shows_the_granted_source_only(steward, a, b):
    response = login(steward).get(CHANGELIST)
    assert response.status_code == 200
    assert [s.name for s in response.context["cl"].result_list] == ["alpha-orders"]
    assert "bravo-payroll" not in response.content.decode()


def test_change_page_opens_for_a_and_redirects_to_the_index_for_b(steward, a, b):
    client = login(steward)
    assert client.get(change_url(a)).status_code == 200
    followed = client.get(change_url(b), follow=True)
    assert followed.redirect_chain == [("/admin/", 302)]
    assert messages_of(followed) == [
        f"data source with ID “{b.pk}” doesn’t exist. Perhaps it was deleted?"
    ]
    assert "bravo-payroll" not in followed.content.decode()


def test_history_of_a_hidden_source_redirects_like_its_change_page(steward, b):
    response = login(steward).get(f"{CHANGELIST}{b.pk}/history/")
    assert (response.status_code, response["Location"]) == (302, "/admin/")


def test_staff_user_without_grants_gets_no_source_model_and_403s(a, b):
    client = login(make_user("nobody", staff=True))
    index = client.get("/admin/")
    models = {m["object_name"] for app in index.context["app_list"] for m in app["models"]}
    assert "DataSource" not in models
    assert "ConnectionTest" in models  # the log's module shows, with no rows (below)
    assert client.get(CHANGELIST).status_code == 403
    assert client.get(change_url(a)).status_code == 403
    tests = client.get("/admin/sources/connectiontest/")
    assert tests.status_code == 200
    assert list(tests.context["cl"].result_list) == []


def test_change_page_never_carries_the_password_and_masks_secret_options(steward, a):
    es = DataSource.objects.create(
        name="search",
        kind="elasticsearch",
        host="127.0.0.1",
        secret_options={"api_key": API_KEY},
        options={"connect_timeout": 3},
    )
    grant(es, steward, "steward")
    client = login(steward)
    page = client.get(change_url(a)).content.decode()
    assert PASSWORD not in page
    password_input = re.search(r'<input type="password" name="new_password"[^>]*>', page).group(0)
    assert "value=" not in password_input
    page = client.get(change_url(es)).content.decode()
    assert API_KEY not in page
    options = re.search(r'<textarea name="options_json"[^>]*>(.*?)</textarea>', page, re.S)
    assert json.loads(html.unescape(options.group(1))) == {
        "connect_timeout": 3,
        "api_key": "******",
    }


def test_read_only_change_page_never_carries_the_password(viewer, a):
    response = login(viewer).get(change_url(a))
    assert response.status_code == 200
    assert not response.context["has_change_permission"]
    assert PASSWORD not in response.content.decode()


def test_saving_with_an_empty_password_keeps_the_stored_one(steward, a):
    client = login(steward)
    response = client.post(change_url(a), form_data(client, a, description="edited"))
    assert response.status_code == 302, response.context["errors"] if response.context else ""
    a.refresh_from_db()
    assert (a.description, a.password) == ("edited", PASSWORD)


def test_a_new_password_replaces_and_clear_removes_the_stored_one(steward, a):
    client = login(steward)
    assert (
        client.post(change_url(a), form_data(client, a, new_password="next-pw")).status_code == 302
    )
    a.refresh_from_db()
    assert a.password == "next-pw"
    assert client.post(change_url(a), form_data(client, a, clear_password="on")).status_code == 302
    a.refresh_from_db()
    assert a.password == ""


@pytest.mark.parametrize(
    "change", [{"host": "127.0.0.2"}, {"port": "6543"}, {"username": "other"}, {"kind": "mysql"}]
)
def test_an_empty_password_is_not_kept_for_another_target(steward, a, change):
    client = login(steward)
    response = client.post(change_url(a), form_data(client, a, **change))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["new_password"]
    assert errors["new_password"][0].startswith("the connection target changed (")
    assert next(iter(change)) in errors["new_password"][0]
    a.refresh_from_db()
    assert (a.host, a.port, a.username, a.kind, a.password) == (
        "127.0.0.1",
        5432,
        "postgres",
        "postgresql",
        PASSWORD,
    )
    # Typed again, or removed, it may go there.
    assert client.post(change_url(a), form_data(client, a, new_password="pw-2", **change))
    a.refresh_from_db()
    assert a.password == "pw-2" and a.password != PASSWORD
    data = form_data(client, a, clear_password="on", host="127.0.0.3")
    assert client.post(change_url(a), data).status_code == 302
    a.refresh_from_db()
    assert (a.host, a.password) == ("127.0.0.3", "")


def test_masked_secret_options_are_not_kept_for_another_host(steward):
    es = DataSource.objects.create(
        name="search", kind="elasticsearch", host="127.0.0.1", secret_options={"api_key": API_KEY}
    )
    grant(es, steward, "steward")
    client = login(steward)
    response = client.post(change_url(es), form_data(client, es, host="127.0.0.2"))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["options_json"] == [
        "api_key: the connection target changed (host): send the value again"
    ]
    es.refresh_from_db()
    assert (es.host, es.secret_options) == ("127.0.0.1", {"api_key": API_KEY})


def test_saving_keeps_masked_secret_options(steward):
    es = DataSource.objects.create(
        name="search", kind="elasticsearch", host="127.0.0.1", secret_options={"api_key": API_KEY}
    )
    grant(es, steward, "steward")
    client = login(steward)
    data = form_data(client, es, options_json='{"api_key": "******", "connect_timeout": 4}')
    assert client.post(change_url(es), data).status_code == 302
    es.refresh_from_db()
    assert (es.options, es.secret_options) == ({"connect_timeout": 4}, {"api_key": API_KEY})


def test_test_connection_action_runs_a_job_and_skips_sources_not_changeable(
    steward, a, b, django_capture_on_commit_callbacks
):
    readable = pg_source("charlie-readable")
    grant(readable, steward, "viewer")
    client = login(steward)
    selected = [str(s.pk) for s in (a, b, readable)]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            CHANGELIST,
            {"action": "test_connection", "index": "0", "_selected_action": selected},
            follow=True,
        )
    assert response.status_code == 200
    job = JobRun.objects.get()
    assert (job.status, job.user, job.target_id, job.progress) == ("succeeded", steward, a.pk, 100)
    assert job.result == {"tested": 1, "failed": 0, "results": {"alpha-orders": "ok"}}
    assert job.arguments == {"source_ids": [a.pk]}
    assert list(ConnectionTest.objects.values_list("source__name", "ok")) == [
        ("alpha-orders", True)
    ]
    notes = messages_of(response)
    assert "Sources you may not change were skipped." in notes
    assert any(f"job #{job.pk}" in note for note in notes)


def test_job_run_admin_shows_a_progress_bar(steward, a):
    job = JobRun.objects.create(
        name="Test connections",
        task="sources.check_connections",
        user=steward,
        target=a,
        progress=40,
        progress_message="tested 2 of 5",
    )
    client = login(steward)
    bar = '<progress max="100" value="40" title="tested 2 of 5"></progress> 40% tested 2 of 5'
    assert bar in client.get("/admin/governance/jobrun/").content.decode()
    assert bar in client.get(f"/admin/governance/jobrun/{job.pk}/change/").content.decode()


def test_change_log_admin_lists_only_entries_about_visible_objects(steward, a, b):
    client = login(steward)
    sources = ContentType.objects.get_for_model(DataSource)
    response = client.get(f"/admin/governance/changelogentry/?content_type__id__exact={sources.pk}")
    assert [(e.object_id, e.action) for e in response.context["cl"].result_list] == [
        (a.pk, "create")
    ]
    assert "bravo-payroll" not in response.content.decode()
    hidden = ChangeLogEntry.objects.get(content_type=sources, object_id=b.pk)
    assert client.get(f"/admin/governance/changelogentry/{hidden.pk}/change/").status_code == 302


def test_connection_test_admin_lists_only_visible_sources(steward, a, b):
    for source in (a, b):
        ConnectionTest.objects.create(source=source, ok=True)
    response = login(steward).get("/admin/sources/connectiontest/")
    assert [t.source for t in response.context["cl"].result_list] == [a]
    assert "bravo-payroll" not in response.content.decode()


@pytest.fixture
def entry(db):
    return AccessLogEntry.objects.create(action="login", user_name="sam", detail={"n": 1})


def test_access_log_admin_cannot_change_or_delete(entry):
    client = login(make_user("root", superuser=True))
    url = f"/admin/governance/accesslogentry/{entry.pk}/"
    changelist = client.get("/admin/governance/accesslogentry/")
    assert changelist.status_code == 200
    assert "delete_selected" not in changelist.content.decode()
    assert client.get(f"{url}delete/").status_code == 403
    assert client.post(f"{url}delete/", {"post": "yes"}).status_code == 403
    assert client.post(f"{url}change/", {"action": "logout", "user_name": "x"}).status_code == 403
    assert AccessLogEntry.objects.filter(pk=entry.pk, action="login", user_name="sam").exists()


def test_access_log_rows_refuse_save_and_delete(entry):
    entry.user_name = "someone else"
    with pytest.raises(PermissionDenied):
        entry.save()
    with pytest.raises(PermissionDenied):
        entry.delete()
    stored = AccessLogEntry.objects.get(pk=entry.pk)
    assert stored.user_name == "sam"
