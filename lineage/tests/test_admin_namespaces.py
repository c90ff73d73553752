"""LineageNamespace rows map an OpenLineage namespace to a source: the admin adds one only
for a source the user may change, and moves one only between two such sources."""

import pytest
from django.test import Client

from governance.models import ChangeLogEntry
from governance.services import grant
from governance.testing import make_user
from lineage.models import LineageNamespace
from sources.models import DataSource

NAMESPACES = "/admin/lineage/lineagenamespace/"
INVALID = ["Select a valid choice. That choice is not one of the available choices."]


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def sources(db):
    return {
        name: DataSource.objects.create(name=name, kind="sqlite", database=f"{name}.db")
        for name in ("alpha", "bravo", "charlie")
    }


def steward_of(sources, *changeable, viewable=()):
    name = "steward-of-" + "-".join(changeable)
    user = make_user(name, roles=["Steward"], staff=True)
    for name in changeable:
        grant(sources[name], user, "steward")
    for name in viewable:
        grant(sources[name], user, "viewer")
    client = Client()
    client.force_login(user)
    return client


def test_a_namespace_is_added_for_a_source_the_user_may_change_only(sources):
    client = steward_of(sources, "alpha", viewable=["charlie"])
    offered = client.get(f"{NAMESPACES}add/").context["adminform"].form.fields["source"]
    assert [s.name for s in offered.queryset] == ["alpha"]
    logs = ChangeLogEntry.objects.count()
    missing = client.post(f"{NAMESPACES}add/", {"namespace": "ns://x", "source": 999999})
    for name in ("bravo", "charlie"):  # hidden, and visible without change
        data = {"namespace": "ns://x", "source": sources[name].pk}
        forged = client.post(f"{NAMESPACES}add/", data)
        assert forged.status_code == 200
        assert forged.context["adminform"].form.errors["source"] == INVALID
        assert forged.context["adminform"].form.errors == missing.context["adminform"].form.errors
    assert (LineageNamespace.objects.count(), ChangeLogEntry.objects.count()) == (0, logs)

    data = {"namespace": "ns://x", "source": sources["alpha"].pk}
    assert client.post(f"{NAMESPACES}add/", data).status_code == 302
    assert LineageNamespace.objects.get().source == sources["alpha"]


def test_moving_a_namespace_needs_change_on_both_sources(sources):
    mapping = LineageNamespace.objects.create(namespace="ns://x", source=sources["alpha"])
    page = f"{NAMESPACES}{mapping.pk}/change/"

    # Change on alpha, view on charlie: charlie is not offered, and a forged id is refused.
    client = steward_of(sources, "alpha", viewable=["charlie"])
    response = client.post(page, {"namespace": "ns://x", "source": sources["charlie"].pk})
    assert response.context["adminform"].form.errors["source"] == INVALID
    mapping.refresh_from_db()
    assert mapping.source == sources["alpha"]

    # Change on charlie, view on alpha: the mapping under alpha cannot be changed at all.
    client = steward_of(sources, "charlie", viewable=["alpha"])
    response = client.post(page, {"namespace": "ns://x", "source": sources["charlie"].pk})
    assert response.status_code == 403
    mapping.refresh_from_db()
    assert mapping.source == sources["alpha"]


def test_a_steward_of_both_sources_moves_a_namespace(sources):
    mapping = LineageNamespace.objects.create(namespace="ns://x", source=sources["alpha"])
    client = steward_of(sources, "alpha", "charlie")
    data = {"namespace": "ns://x", "source": sources["charlie"].pk}
    assert client.post(f"{NAMESPACES}{mapping.pk}/change/", data).status_code == 302
    mapping.refresh_from_db()
    assert mapping.source == sources["charlie"]
