"""A stored secret goes only to the target it was stored for.

"******" (or leaving the password out) keeps the stored password and secret options only
while every field that decides where and how they are sent is unchanged: the API's update
and connection test, the admin form and restoring an old version all follow the rule. The
attacker's host is a FAKE PostgreSQL server on loopback (fakes.PasswordListener) that asks
for the password in clear text.
"""

import secrets

import pytest

from governance.changelog import history
from governance.services import grant
from governance.testing import client_for, make_user
from sources.connectors import KINDS
from sources.connectors.base import TIMEOUT_LIMITS
from sources.models import ConnectionTest, DataSource

from .fakes import PasswordListener

URL = "/api/v1/sources/"
CANARY = f"canary-{secrets.token_hex(6)}"
API_KEY = f"key-{secrets.token_hex(6)}"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.SOURCE_HOSTS_ALLOW = ["127.0.0.1", "127.0.0.2"]


@pytest.fixture
def steward(db):
    return make_user("sam", roles=["Steward"])


@pytest.fixture
def source(steward):
    """A source whose stored password belongs to the local PostgreSQL."""
    source = DataSource.objects.create(
        name="orders",
        kind="postgresql",
        host="127.0.0.1",
        port=5432,
        database="postgres",
        username="postgres",
        password=CANARY,
    )
    grant(source, steward, "steward")
    return source


@pytest.fixture
def listener():
    with PasswordListener("127.0.0.2") as server:
        yield server


def unchanged(source):
    stored = DataSource.objects.get(pk=source.pk)
    return (stored.host, stored.port, stored.password) == ("127.0.0.1", 5432, CANARY)


@pytest.mark.parametrize("action", ["test", "update"])
@pytest.mark.parametrize("password", [{"password": "******"}, {}])
@pytest.mark.parametrize(
    ("where", "moved"), [({"port": None}, "port"), ({"host": "127.0.0.2", "port": None}, "host")]
)
def test_the_stored_password_never_goes_to_another_host(
    steward, source, listener, action, password, where, moved
):
    client = client_for(steward)
    body = {**where, "port": listener.port, **password}
    if action == "test":
        response = client.post(f"{URL}{source.pk}/test", body, format="json")
    else:
        response = client.patch(f"{URL}{source.pk}/", body, format="json")
    assert response.status_code == 400, response.content
    message = response.json()["password"][0]
    assert message.startswith("the connection target changed (")
    assert moved in message and "send the password again" in message
    assert CANARY not in response.content.decode()
    # Nothing was saved or tried, and the stored settings still go where they went.
    assert unchanged(source) and not ConnectionTest.objects.exists()
    client.post(f"{URL}{source.pk}/test")
    assert (listener.connections, listener.passwords) == (0, [])


def test_a_password_typed_again_goes_to_the_new_host(steward, source, listener):
    """The listener hears what a driver sends: with the password typed again, that one."""
    body = {"host": "127.0.0.2", "port": listener.port, "password": "typed-again"}
    result = client_for(steward).post(f"{URL}{source.pk}/test", body, format="json").json()
    assert (result["ok"], result["error_kind"]) == (False, "auth")
    assert listener.passwords == ["typed-again"]
    assert unchanged(source)
    response = client_for(steward).patch(f"{URL}{source.pk}/", body, format="json")
    assert response.status_code == 200, response.content
    assert DataSource.objects.get(pk=source.pk).password == "typed-again"


def test_an_empty_password_may_go_anywhere(steward, source, listener):
    body = {"host": "127.0.0.2", "port": listener.port, "password": ""}
    response = client_for(steward).patch(f"{URL}{source.pk}/", body, format="json")
    assert response.status_code == 200, response.content
    client_for(steward).post(f"{URL}{source.pk}/test")
    assert listener.connections == 1 and listener.passwords == []


CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@pytest.mark.parametrize(
    ("kind", "change", "moved"),
    [
        ("postgresql", {"kind": "mysql"}, "kind, port"),  # the default port changes too
        ("postgresql", {"host": "db2.example.com"}, "host"),
        ("postgresql", {"port": 6543}, "port"),
        ("postgresql", {"database": "other"}, "database"),
        ("postgresql", {"username": "other"}, "username"),
        ("postgresql", {"options": {"tls": "disable"}}, "tls"),
        ("postgresql", {"options": {"tls": "verify-ca", "tls_ca": CA_PEM}}, "tls, tls_ca"),
        ("mongodb", {"options": {"auth_source": "other", "replica_set": "rs0"}}, "auth_source"),
        ("mongodb", {"options": {"replica_set": "rs1"}}, "replica_set"),
    ],
)
def test_every_target_field_needs_the_password_again(steward, kind, change, moved):
    source = DataSource.objects.create(
        name="s",
        kind=kind,
        host="db.example.com",
        database="app",
        username="app",
        password=CANARY,
        options={"tls": "require"} if kind == "postgresql" else {"replica_set": "rs0"},
    )
    grant(source, steward, "steward")
    response = client_for(steward).patch(f"{URL}{source.pk}/", change, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["password"] == [
        f"the connection target changed ({moved}): send the password again "
        "(an empty one removes it)"
    ]
    assert DataSource.objects.get(pk=source.pk).password == CANARY


@pytest.mark.parametrize(
    "change",
    [
        {"description": "orders"},
        {"name": "renamed"},
        {"port": 5432},  # the default port, written out
        {"options": {"connect_timeout": 3, "statement_timeout": 60}},
        {"scan_include_schemas": ["sales"], "password": "******"},
    ],
)
def test_other_changes_keep_the_stored_password(steward, change):
    source = DataSource.objects.create(
        name="s", kind="postgresql", host="db.example.com", password=CANARY
    )
    grant(source, steward, "steward")
    response = client_for(steward).patch(f"{URL}{source.pk}/", change, format="json")
    assert response.status_code == 200, response.content
    assert DataSource.objects.get(pk=source.pk).password == CANARY


def test_secret_options_are_kept_only_for_the_same_target(steward):
    source = DataSource.objects.create(
        name="search",
        kind="elasticsearch",
        host="es.example.com",
        secret_options={"api_key": API_KEY},
    )
    grant(source, steward, "steward")
    client = client_for(steward)
    for body in (
        {"host": "es2.example.com"},
        {"host": "es2.example.com", "options": {"api_key": "******"}},
    ):
        response = client.patch(f"{URL}{source.pk}/", body, format="json")
        assert response.status_code == 400, response.content
        assert response.json() == {
            "options": ["api_key: the connection target changed (host): send the value again"]
        }
    assert DataSource.objects.get(pk=source.pk).secret_options == {"api_key": API_KEY}
    body = {"host": "es2.example.com", "options": {"api_key": "new-key"}}
    assert client.patch(f"{URL}{source.pk}/", body, format="json").status_code == 200
    assert DataSource.objects.get(pk=source.pk).secret_options == {"api_key": "new-key"}


def test_a_hidden_source_answers_like_a_missing_one(db, source, listener):
    stranger = make_user("eve", roles=["Steward"])
    body = {"host": "127.0.0.2", "port": listener.port, "password": "******"}
    hidden = client_for(stranger).post(f"{URL}{source.pk}/test", body, format="json")
    missing = client_for(stranger).post(f"{URL}999999/test", body, format="json")
    assert (hidden.status_code, hidden.json()) == (missing.status_code, missing.json())
    assert hidden.status_code == 404
    assert listener.connections == 0


def test_restoring_a_version_that_points_elsewhere_drops_the_secrets(steward, listener):
    """Version 1 pointed at the listener without a password; version 2 moved the source to
    the real server and set the password. Restoring version 1 must not take it along."""
    source = DataSource.objects.create(
        name="orders", kind="postgresql", host="127.0.0.2", port=listener.port
    )
    grant(source, steward, "steward")
    client = client_for(steward)
    body = {"host": "127.0.0.1", "port": 5432, "password": CANARY, "description": "moved"}
    assert client.patch(f"{URL}{source.pk}/", body, format="json").status_code == 200
    assert client.patch(f"{URL}{source.pk}/", {"description": "v3"}, format="json").json()
    # Back to version 2: the same target, so the password stays.
    assert client.post(f"{URL}{source.pk}/version-history/2/restore").status_code == 200
    assert DataSource.objects.get(pk=source.pk).password == CANARY
    # Back to version 1: another host, so the password goes.
    response = client.post(f"{URL}{source.pk}/version-history/1/restore")
    assert response.status_code == 200, response.content
    assert response.json()["password"] == ""
    restored = DataSource.objects.get(pk=source.pk)
    assert (restored.host, restored.port, restored.password) == ("127.0.0.2", listener.port, "")
    assert history(restored).first().changed == ["description", "host", "password", "port"]
    client.post(f"{URL}{source.pk}/test")
    assert listener.connections == 1 and CANARY not in listener.passwords


def test_restoring_drops_secret_options_too(steward):
    source = DataSource.objects.create(name="search", kind="elasticsearch", host="es1.example.com")
    grant(source, steward, "steward")
    client = client_for(steward)
    body = {"host": "es2.example.com", "options": {"api_key": API_KEY}}
    assert client.patch(f"{URL}{source.pk}/", body, format="json").status_code == 200
    assert client.post(f"{URL}{source.pk}/version-history/1/restore").status_code == 200
    restored = DataSource.objects.get(pk=source.pk)
    assert (restored.host, restored.secret_options) == ("es1.example.com", {})


def test_each_kind_names_the_options_that_move_its_secrets():
    """A public option either changes where or how the secrets go, or tunes a timeout; a new
    option has to be put on one side."""
    for cls in KINDS.values():
        assert cls.public_options - cls.target_options <= set(TIMEOUT_LIMITS), cls.kind
