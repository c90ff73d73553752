"""A token dies with the credential or role it was issued under: a password change by any
path, deactivation, losing superuser status, a role (group) or a user permission. Other
saves of the user leave it alone."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from rest_framework.test import APIClient

from governance.models import AccessLogEntry
from governance.testing import PASSWORD, make_user

NEW_PASSWORD = "an entirely new pass phrase 42"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def alice(db):
    return make_user("alice", roles=["Steward"], staff=True)


def issue(username="alice"):
    response = APIClient().post("/api/v1/auth/token/", {"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.content
    return response.json()["token"]


def works(key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    status = client.get("/api/v1/jobs/").status_code
    assert status in (200, 401)
    return status == 200


def test_a_password_reset_in_the_admin_revokes_tokens_and_sessions(alice, client):
    key = issue()
    other_session = APIClient()
    other_session.force_login(alice)  # a browser elsewhere
    assert other_session.get("/admin/").status_code == 200
    client.force_login(make_user("root", superuser=True))
    response = client.post(
        f"/admin/auth/user/{alice.pk}/password/",
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )
    assert response.status_code == 302, response.content[:2000]
    assert not works(key)
    assert other_session.get("/admin/").status_code == 302  # sent to the login page
    revoked = AccessLogEntry.objects.get(action="token_revoked")
    assert revoked.detail["owner"] == "alice" and revoked.detail["reason"] == "password changed"
    assert revoked.user_name == "root"


def test_changing_ones_own_password_revokes_ones_tokens(alice, client):
    key = issue()
    client.force_login(alice)
    response = client.post(
        "/admin/password_change/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302, response.content[:2000]
    assert not works(key)
    assert client.get("/admin/").status_code == 200  # this session goes on


def test_set_password_and_save_anywhere_revokes_tokens(alice):
    key, bobs = issue(), issue_for_bob()
    user = get_user_model().objects.get(pk=alice.pk)
    user.set_password(NEW_PASSWORD)
    user.save()
    assert not works(key)
    assert works(bobs)  # nobody else's


def issue_for_bob():
    make_user("bob")
    return issue("bob")


def test_changepassword_command_revokes_tokens(alice, monkeypatch):
    key = issue()
    monkeypatch.setattr("getpass.getpass", lambda prompt="": NEW_PASSWORD)
    call_command("changepassword", "alice")
    assert not works(key)


def test_deactivation_and_losing_superuser_status_revoke_tokens(alice):
    key = issue()
    alice.is_active = False
    alice.save()
    assert not works(key)
    root = make_user("root", superuser=True)
    key = issue("root")
    root.is_superuser = False
    root.save(update_fields=["is_superuser"])
    assert not works(key)


def test_other_changes_to_the_user_keep_tokens(alice, client):
    key = issue()
    alice.email = "alice@example.org"
    alice.save()
    alice.groups.add(Group.objects.get(name="Viewer"))
    client.login(username="alice", password=PASSWORD)  # writes last_login
    assert works(key)
    assert not AccessLogEntry.objects.filter(action="token_revoked").exists()


@pytest.mark.parametrize(
    "lose",
    [
        lambda user, role: user.groups.remove(role),
        lambda user, role: role.user_set.remove(user),
        lambda user, role: user.groups.clear(),
        lambda user, role: role.user_set.clear(),
        lambda user, role: user.groups.set([]),
        lambda user, role: role.delete(),
    ],
    ids=["remove", "reverse-remove", "clear", "reverse-clear", "set", "delete-group"],
)
def test_losing_a_role_revokes_tokens(alice, lose):
    key = issue()
    lose(alice, Group.objects.get(name="Steward"))
    assert not works(key)


def test_losing_a_user_permission_revokes_tokens(alice):
    permission = Permission.objects.get(content_type__app_label="auth", codename="view_user")
    alice.user_permissions.add(permission)
    key = issue()
    alice.user_permissions.remove(permission)
    assert not works(key)
    key = issue()
    permission.user_set.clear()  # no one holds it any more; alice had already lost it
    assert works(key)


def test_the_admin_form_that_drops_a_role_revokes_tokens(alice, client):
    key = issue()
    client.force_login(make_user("root", superuser=True))
    data = {
        "username": "alice",
        "is_active": "on",
        "is_staff": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "groups": [],
    }
    assert client.post(f"/admin/auth/user/{alice.pk}/change/", data).status_code == 302
    assert not works(key)
