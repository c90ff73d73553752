"""A user's roles and groups, shared between requests through the cache, and forgotten
on every change to roles, groups or memberships."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.cache import cache

from governance import permissions
from governance.permissions import PRINCIPAL_KEY, VERSION_KEY, Principal, principal
from governance.services import grant, grant_creator_many
from governance.testing import client_for, make_user
from sources.models import DataSource

pytestmark = pytest.mark.django_db


@pytest.fixture
def cached(settings):
    settings.PERMISSION_CACHE_SECONDS = 300


def fresh(user):
    """The user as the next request loads it."""
    return type(user).objects.get(pk=user.pk)


def perm(codename):
    return Permission.objects.get(codename=codename)


@pytest.fixture
def member():
    """A user in a team that may view every source, who may also change them on their own."""
    team = Group.objects.create(name="team")
    team.permissions.add(perm("view_datasource"))
    user = make_user("sam", perms=["sources.change_datasource"])
    user.groups.add(team)
    return user, team


def test_a_new_request_reads_roles_and_groups_from_the_cache(
    cached, member, django_assert_num_queries
):
    user, team = member
    first = principal(fresh(user))
    assert first.perms == {"sources.view_datasource", "sources.change_datasource"}
    assert first.group_ids == (team.pk,)
    again = fresh(user)
    with django_assert_num_queries(0):
        assert principal(again) == first
        assert again.has_perm("sources.view_datasource")


def test_without_the_setting_each_request_loads_them_in_one_query(
    settings, member, django_assert_num_queries
):
    settings.PERMISSION_CACHE_SECONDS = 0
    cache.clear()
    user, team = member
    principal(fresh(user))
    again = fresh(user)
    with django_assert_num_queries(1):
        assert principal(again).group_ids == (team.pk,)
    assert cache.get(VERSION_KEY) is None
    assert cache.get(PRINCIPAL_KEY.format(pk=user.pk, superuser=False)) is None


CHANGES = {
    "leave the group": lambda user, team: user.groups.remove(team),
    "leave every group": lambda user, team: user.groups.clear(),
    "removed from the group's side": lambda user, team: team.user_set.remove(user),
    "join a role": lambda user, team: user.groups.add(Group.objects.get(name="Steward")),
    "group loses a permission": lambda user, team: team.permissions.remove(perm("view_datasource")),
    "group loses every permission": lambda user, team: team.permissions.clear(),
    "group deleted": lambda user, team: team.delete(),
    "own permission removed": lambda user, team: user.user_permissions.remove(
        perm("change_datasource")
    ),
    "own permission added": lambda user, team: user.user_permissions.add(perm("delete_datasource")),
    "permission deleted": lambda user, team: perm("view_datasource").delete(),
    "made superuser": lambda user, team: (
        type(user).objects.filter(pk=user.pk).update(is_superuser=True)
    ),
}


@pytest.mark.parametrize("change", CHANGES)
def test_every_change_to_roles_or_groups_counts_from_the_next_request(cached, member, change):
    user, team = member
    before = principal(fresh(user))
    CHANGES[change](user, team)
    after = principal(fresh(user))
    assert after != before
    assert after == permissions._load_principal(fresh(user))


def test_roles_read_before_a_commit_are_not_kept_after_it(
    cached, monkeypatch, django_capture_on_commit_callbacks
):
    user = make_user("sam")
    team = Group.objects.create(name="team")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        user.groups.add(team)
        # Another request, whose transaction does not see the new membership yet, loads
        # the old rows and caches them under the version the change has just set.
        monkeypatch.setattr(permissions, "_load_principal", lambda u: Principal(frozenset(), ()))
        assert principal(fresh(user)).group_ids == ()
        monkeypatch.undo()
    assert callbacks
    assert principal(fresh(user)).group_ids == (team.pk,)


def test_a_revoked_role_stops_the_next_api_request(cached):
    source = DataSource.objects.create(name="crm", kind="sqlite", database="crm.db")
    user = make_user("sam", roles=["Viewer"])
    team = Group.objects.create(name="readers")
    team.permissions.add(perm("view_datasource"))
    user.groups.add(team)
    client = client_for(user)
    assert client.get(f"/api/v1/sources/{source.pk}/").status_code == 200
    assert client.get(f"/api/v1/sources/{source.pk}/").status_code == 200  # from the cache
    team.permissions.remove(perm("view_datasource"))
    assert client.get(f"/api/v1/sources/{source.pk}/").status_code == 404
    assert client.get("/api/v1/sources/").json()["count"] == 0


def test_a_first_object_grant_counts_from_the_next_request_and_in_this_one(cached):
    """The Principal lists the permissions a user holds on some object: without one, a
    manual table's own grants are not looked up. A new grant, to the user or to a group
    of theirs, must end the cached copy; and the user object that received it in this
    request must not keep the old one."""
    from catalog.models import Table

    manual = Table.objects.create(schema="app", name="notes")
    user = make_user("vic")
    team = Group.objects.create(name="readers")
    user.groups.add(team)
    assert not Table.objects.restrict(fresh(user), "view").exists()
    assert not Table.objects.restrict(user, "view").exists()  # this object loaded it
    grant(manual, user, "viewer")
    assert list(Table.objects.restrict(user, "view")) == [manual]
    assert list(Table.objects.restrict(fresh(user), "view")) == [manual]
    other = Table.objects.create(schema="app", name="minutes")
    grant(other, team, "viewer")
    assert set(Table.objects.restrict(fresh(user), "view")) == {manual, other}
    # Creator grants come in bulk, without post_save signals.
    creator = make_user("cat")
    assert not Table.objects.restrict(creator, "view").exists()
    drafted = Table.objects.create(schema="app", name="drafts")
    grant_creator_many(creator, [drafted])
    assert list(Table.objects.restrict(creator, "view")) == [drafted]
    assert list(Table.objects.restrict(fresh(creator), "view")) == [drafted]
