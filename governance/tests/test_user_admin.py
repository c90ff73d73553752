"""Who may make whom powerful in the admin: only superusers grant superuser or staff status
or touch a superuser, and nobody hands out groups or permissions beyond their own. Each
case is a forged POST, as a browser that ignores the form's read-only fields would send."""

import pytest
from django.contrib.auth.models import Group, Permission

from governance.testing import PASSWORD, make_user


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def root(db):
    return make_user("root", superuser=True)


@pytest.fixture
def ada(db):
    """An Admin-role member who is staff but not a superuser."""
    return make_user("ada", roles=["Admin"], staff=True)


@pytest.fixture
def helen(db):
    """A help-desk user who may edit users and groups, and hold nothing else."""
    desk = Group.objects.create(name="Help desk")
    desk.permissions.set(
        Permission.objects.filter(
            content_type__app_label="auth",
            codename__in=["view_user", "change_user", "view_group", "change_group"],
        )
    )
    user = make_user("helen", staff=True)
    user.groups.add(desk)
    return user


def change_url(user):
    return f"/admin/auth/user/{user.pk}/change/"


def form_data(user, **changes):
    """What the user change form posts for `user` as it stands, with `changes`."""
    user.refresh_from_db()
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "groups": [g.pk for g in user.groups.all()],
        "user_permissions": [p.pk for p in user.user_permissions.all()],
    }
    for flag in ("is_active", "is_staff", "is_superuser"):
        if getattr(user, flag):
            data[flag] = "on"
    for key, value in changes.items():
        if value is False:
            data.pop(key, None)
        else:
            data[key] = "on" if value is True else value
    return data


def test_an_admin_role_member_cannot_make_themselves_superuser(client, ada):
    client.force_login(ada)
    response = client.post(change_url(ada), form_data(ada, is_superuser=True, email="a@x.org"))
    assert response.status_code == 302, response.content[:2000]
    ada.refresh_from_db()
    assert ada.email == "a@x.org"  # the rest of the form was saved
    assert not ada.is_superuser


def test_only_a_superuser_grants_staff_status(client, ada, root):
    bob = make_user("bob")
    client.force_login(ada)
    assert client.post(change_url(bob), form_data(bob, is_staff=True)).status_code == 302
    bob.refresh_from_db()
    assert not bob.is_staff
    client.force_login(root)
    assert client.post(change_url(bob), form_data(bob, is_staff=True)).status_code == 302
    bob.refresh_from_db()
    assert bob.is_staff


def test_only_a_superuser_removes_staff_status(client, ada):
    sam = make_user("sam", roles=["Steward"], staff=True)
    client.force_login(ada)
    assert client.post(change_url(sam), form_data(sam, is_staff=False)).status_code == 302
    sam.refresh_from_db()
    assert sam.is_staff


def test_an_admin_role_member_cannot_touch_a_superuser(client, ada, root):
    client.force_login(ada)
    # Reading is fine; changing, resetting the password and deleting are not.
    assert client.get(change_url(root)).status_code == 200
    response = client.post(change_url(root), form_data(root, is_active=False, email="x@x.org"))
    assert response.status_code == 403
    password = client.post(
        f"/admin/auth/user/{root.pk}/password/",
        {"password1": "a new pass phrase 77", "password2": "a new pass phrase 77"},
    )
    assert password.status_code == 403
    delete = client.post(f"/admin/auth/user/{root.pk}/delete/", {"post": "yes"})
    assert delete.status_code == 403
    bulk = client.post(
        "/admin/auth/user/",
        {"action": "delete_selected", "_selected_action": [root.pk], "post": "yes"},
    )
    assert bulk.status_code == 403
    root.refresh_from_db()
    assert root.is_active and root.email == "" and root.check_password(PASSWORD)


def test_a_superuser_may_promote_and_change_superusers(client, ada, root):
    other = make_user("other-root", superuser=True)
    client.force_login(root)
    assert client.post(change_url(ada), form_data(ada, is_superuser=True)).status_code == 302
    assert client.post(change_url(other), form_data(other, email="o@x.org")).status_code == 302
    ada.refresh_from_db()
    other.refresh_from_db()
    assert ada.is_superuser and other.email == "o@x.org"


def test_nobody_hands_out_a_group_holding_more_than_they_do(client, helen):
    client.force_login(helen)
    admin_role = Group.objects.get(name="Admin")
    viewer_role = Group.objects.get(name="Viewer")
    desk = Group.objects.get(name="Help desk")
    page = client.get(change_url(helen)).content.decode()
    assert f'value="{viewer_role.pk}"' in page and f'value="{admin_role.pk}"' not in page
    response = client.post(change_url(helen), form_data(helen, groups=[desk.pk, admin_role.pk]))
    assert response.status_code == 200  # the form comes back with the error
    assert set(helen.groups.all()) == {desk}
    # A group within what she holds is fine.
    response = client.post(change_url(helen), form_data(helen, groups=[desk.pk, viewer_role.pk]))
    assert response.status_code == 302
    assert set(helen.groups.all()) == {desk, viewer_role}


def test_nobody_hands_out_a_permission_they_do_not_hold(client, helen):
    client.force_login(helen)
    add_user = Permission.objects.get(content_type__app_label="auth", codename="add_user")
    response = client.post(change_url(helen), form_data(helen, user_permissions=[add_user.pk]))
    assert response.status_code == 200
    assert not helen.user_permissions.exists()
    helen = type(helen).objects.get(pk=helen.pk)
    assert not helen.has_perm("auth.add_user")


def test_nobody_edits_a_user_who_holds_more_than_they_do(client, helen, ada):
    client.force_login(helen)
    response = client.post(change_url(ada), form_data(ada, email="x@x.org"))
    assert response.status_code == 403
    ada.refresh_from_db()
    assert ada.email == ""


def test_nobody_widens_a_group_beyond_what_they_hold(client, helen):
    client.force_login(helen)
    desk = Group.objects.get(name="Help desk")
    delete_user = Permission.objects.get(content_type__app_label="auth", codename="delete_user")
    held = list(desk.permissions.values_list("pk", flat=True))
    response = client.post(
        f"/admin/auth/group/{desk.pk}/change/",
        {"name": desk.name, "permissions": [*held, delete_user.pk]},
    )
    assert response.status_code == 200
    assert not desk.permissions.filter(pk=delete_user.pk).exists()
    # The Admin role holds more than she does: she may not edit it at all.
    admin_role = Group.objects.get(name="Admin")
    response = client.post(
        f"/admin/auth/group/{admin_role.pk}/change/", {"name": "Admin", "permissions": held}
    )
    assert response.status_code == 403
    assert admin_role.permissions.count() == Permission.objects.count()
