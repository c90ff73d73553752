"""Grants end with their object: guardian names objects by id only."""

import pytest
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from guardian.models import GroupObjectPermission, UserObjectPermission

from catalog.models import Table
from governance.models import AccessLogEntry
from governance.services import grant
from governance.testing import client_for, make_user
from sources.models import DataSource

pytestmark = pytest.mark.django_db


def grants_on(obj):
    content_type = ContentType.objects.get_for_model(type(obj))
    rows = []
    for model, holder in ((UserObjectPermission, "user"), (GroupObjectPermission, "group")):
        found = model.objects.filter(content_type=content_type, object_pk=str(obj.pk))
        rows += [(str(getattr(r, holder)), r.permission.codename) for r in found]
    return sorted(rows)


def test_deleting_a_source_revokes_its_grants_and_logs_each(db):
    source = DataSource.objects.create(name="crm", kind="sqlite", database="crm.db")
    table = Table.objects.create(source=source, schema="main", name="users")
    grant(source, make_user("vic"), "viewer")
    grant(source, Group.objects.create(name="team"), "steward")
    granted = grants_on(source)
    assert len(granted) >= 3
    pk = source.pk
    admin = make_user("root", superuser=True)
    assert client_for(admin).delete(f"/api/v1/sources/{pk}/").status_code == 204

    source.pk = pk  # the deleted object's id, to look for what is left of it
    assert grants_on(source) == []
    revoked = AccessLogEntry.objects.filter(action="revoke", object_id=pk)
    assert sorted((e.detail["holder"], e.detail["permission"]) for e in revoked) == granted
    assert {(e.object_repr, e.user_name) for e in revoked} == {("crm", "root")}
    # The scanned table went with its source; being covered by it, it had no grants of its own.
    assert not Table.objects.filter(pk=table.pk).exists()


def test_a_manual_table_deleted_takes_its_creators_grants(db):
    steward = make_user("stella", roles=["Steward"])
    client = client_for(steward)
    response = client.post("/api/v1/catalog/tables/", {"schema": "lake", "name": "events"})
    assert response.status_code == 201, response.content
    table = Table.objects.get(pk=response.json()["id"])
    assert grants_on(table)  # the creator owns it
    assert client.delete(f"/api/v1/catalog/tables/{table.pk}/").status_code == 204
    assert grants_on(table) == []  # table is still the Python object, with its id
    assert AccessLogEntry.objects.filter(action="revoke", object_id=table.pk).count() == 3
