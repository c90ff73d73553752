"""API tokens: stored as digests, shown once, named, listed and revoked by their owner,
expiring, with a last-used time that costs no write on most requests."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient, APIRequestFactory

from governance.api.authentication import TokenAuthentication
from governance.models import AccessLogEntry, ApiToken
from governance.testing import PASSWORD, make_user


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def alice(db):
    return make_user("alice")


def sign_in(username="alice", password=PASSWORD, **extra):
    response = APIClient().post(
        "/api/v1/auth/token/", {"username": username, "password": password, **extra}
    )
    assert response.status_code == 200, response.content
    return response.json()


def client_with(key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_keys_are_stored_as_digests_and_never_shown_again(alice):
    answer = sign_in(name="laptop")
    key = answer["token"]
    assert len(key) >= 40 and key.startswith(answer["prefix"])
    assert answer["name"] == "laptop"
    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)  # every table of the database
    assert key not in dump.getvalue()
    listed = client_with(key).get("/api/v1/auth/tokens/")
    assert listed.status_code == 200
    assert key not in listed.content.decode()
    [item] = listed.json()["results"]
    assert item["prefix"] == answer["prefix"] and item["name"] == "laptop"
    assert set(item) == {"id", "name", "prefix", "user", "created_at", "expires_at", "last_used_at"}


def test_both_header_styles_and_unknown_keys(alice):
    key = sign_in()["token"]
    for header in (f"Token {key}", f"Bearer {key}"):
        assert APIClient().get("/api/v1/jobs/", HTTP_AUTHORIZATION=header).status_code == 200
    for header in ("Bearer nope", f"Token {key}x", f"Token {key} extra", "Bearer"):
        response = APIClient().get("/api/v1/jobs/", HTTP_AUTHORIZATION=header)
        assert response.status_code == 401, header


def test_tokens_expire_after_the_configured_days(alice, settings):
    settings.API_TOKEN_EXPIRY_DAYS = 7
    key = sign_in()["token"]
    token = ApiToken.objects.get(user=alice)
    assert abs(token.expires_at - (timezone.now() + timedelta(days=7))) < timedelta(minutes=1)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client_with(key).get("/api/v1/jobs/")
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_an_inactive_users_token_is_refused(alice):
    key = sign_in()["token"]
    type(alice).objects.filter(pk=alice.pk).update(is_active=False)  # no signal: the lookup
    assert client_with(key).get("/api/v1/jobs/").status_code == 401


def authenticate(key):
    request = APIRequestFactory().get("/api/v1/jobs/", HTTP_AUTHORIZATION=f"Bearer {key}")
    with CaptureQueriesContext(connection) as queries:
        user, token = TokenAuthentication().authenticate(request)
    return user, token, [q["sql"] for q in queries.captured_queries]


def test_authentication_is_one_query_and_last_used_is_written_rarely(alice):
    key = sign_in()["token"]
    user, token, queries = authenticate(key)
    assert user == alice
    assert len(queries) == 2 and queries[1].startswith("UPDATE")  # first use is recorded
    first_use = ApiToken.objects.get(pk=token.pk).last_used_at
    assert first_use is not None
    _, _, queries = authenticate(key)
    assert len(queries) == 1 and queries[0].startswith("SELECT")  # no write within the interval
    earlier = timezone.now() - timedelta(minutes=10)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=earlier)
    _, _, queries = authenticate(key)
    assert len(queries) == 2
    assert ApiToken.objects.get(pk=token.pk).last_used_at > earlier


def test_a_user_creates_lists_and_revokes_their_own_tokens(alice):
    bob = make_user("bob")
    login_key = sign_in()["token"]
    bobs = ApiToken.objects.get(pk=sign_in("bob")["id"])
    client = client_with(login_key)
    created = client.post("/api/v1/auth/tokens/", {"name": "ci pipeline"})
    assert created.status_code == 201, created.content
    ci = created.json()
    assert ci["name"] == "ci pipeline" and ci["token"].startswith(ci["prefix"])
    listed = client.get("/api/v1/auth/tokens/").json()["results"]
    assert {item["name"] for item in listed} == {"api", "ci pipeline"}
    assert all("token" not in item and "digest" not in item for item in listed)
    # Another user's token answers exactly like a missing one, and stays.
    hidden = client.delete(f"/api/v1/auth/tokens/{bobs.pk}/")
    missing = client.delete("/api/v1/auth/tokens/999999/")
    assert (hidden.status_code, hidden.json()) == (missing.status_code, missing.json())
    assert hidden.status_code == 404 and ApiToken.objects.filter(pk=bobs.pk).exists()
    assert client.delete(f"/api/v1/auth/tokens/{ci['id']}/").status_code == 204
    assert client_with(ci["token"]).get("/api/v1/jobs/").status_code == 401
    assert client.get("/api/v1/jobs/").status_code == 200  # the other token lives on
    revoked = AccessLogEntry.objects.get(action="token_revoked")
    assert revoked.detail["token"] == ci["prefix"] and revoked.detail["owner"] == "alice"
    assert bob.api_tokens.count() == 1


def test_token_names_are_checked_and_anonymous_gets_nothing(alice):
    client = client_with(sign_in()["token"])
    response = client.post("/api/v1/auth/tokens/", {"name": "x" * 101})
    assert response.status_code == 400 and "name" in response.json()
    assert APIClient().get("/api/v1/auth/tokens/").status_code == 401
    assert APIClient().post("/api/v1/auth/tokens/", {"name": "a"}).status_code == 401


def test_the_admin_token_list_shows_prefixes_never_keys(alice, client):
    root = make_user("root", superuser=True)
    ada = make_user("ada", roles=["Admin"], staff=True)
    keys = {name: sign_in(name)["token"] for name in ("alice", "root", "ada")}
    url = "/admin/governance/apitoken/"
    client.force_login(root)
    page = client.get(url).content.decode()
    assert all(key[:12] in page and key not in page for key in keys.values())
    detail = client.get(f"{url}{ApiToken.objects.get(user=alice).pk}/change/").content.decode()
    assert keys["alice"] not in detail and ApiToken.objects.get(user=alice).digest not in detail
    # An Admin-role member who is not a superuser does not see a superuser's tokens.
    client.force_login(ada)
    page = client.get(url).content.decode()
    assert keys["alice"][:12] in page and keys["root"][:12] not in page
    roots = ApiToken.objects.get(user=root)
    client.post(url, {"action": "delete_selected", "_selected_action": [roots.pk], "post": "yes"})
    assert ApiToken.objects.filter(pk=roots.pk).exists()
    # The revoke action ends a token at once.
    alices = ApiToken.objects.get(user=alice)
    response = client.post(
        url, {"action": "delete_selected", "_selected_action": [alices.pk], "post": "yes"}
    )
    assert response.status_code == 302
    assert client_with(keys["alice"]).get("/api/v1/jobs/").status_code == 401
    assert AccessLogEntry.objects.filter(action="token_revoked", user=ada).count() == 1


def test_plaintext_tokens_of_a_deployed_database_move_into_digests(transactional_db):
    """An older deployment kept rest_framework.authtoken's table with keys in clear: the
    migration moves each key in as a digest (the client keeps working) and drops the table."""
    import importlib

    from django.apps import apps

    migration = importlib.import_module("governance.migrations.0005_move_legacy_api_tokens")
    user = make_user("legacy")
    legacy_key = "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, "
            "created timestamp with time zone NOT NULL, user_id integer NOT NULL UNIQUE)"
        )
        cursor.execute(
            "INSERT INTO authtoken_token (key, created, user_id) VALUES (%s, %s, %s)",
            [legacy_key, timezone.now(), user.pk],
        )
    with connection.schema_editor() as editor:
        migration.move_legacy_tokens(apps, editor)
    assert "authtoken_token" not in connection.introspection.table_names()
    token = ApiToken.objects.get(user=user)
    assert token.name == "migrated" and token.prefix == legacy_key[:12]
    assert legacy_key not in token.digest
    assert client_with(legacy_key).get("/api/v1/jobs/").status_code == 200
    with connection.schema_editor() as editor:  # nothing to move: nothing happens
        migration.move_legacy_tokens(apps, editor)
    assert ApiToken.objects.count() == 1
