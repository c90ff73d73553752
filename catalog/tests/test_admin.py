"""The catalog admin writes tables and fields only where the user may: a Steward granted on
source A cannot add a table or a field under source B, nor move a table there."""

import pytest
from django.test import Client

from catalog.models import Field, Table
from governance.models import ChangeLogEntry
from governance.services import grant
from governance.testing import make_user
from sources.models import DataSource

TABLES = "/admin/catalog/table/"
FIELDS = "/admin/catalog/field/"
NO_TABLES = {
    "fields-TOTAL_FORMS": "0",
    "fields-INITIAL_FORMS": "0",
    "fields-MIN_NUM_FORMS": "0",
    "fields-MAX_NUM_FORMS": "1000",
}
INVALID = ["Select a valid choice. That choice is not one of the available choices."]


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(db):
    a = DataSource.objects.create(name="alpha", kind="sqlite", database="a.db")
    b = DataSource.objects.create(name="bravo", kind="sqlite", database="b.db")
    steward = make_user("sam", roles=["Steward"], staff=True)
    grant(a, steward, "steward")
    client = Client()
    client.force_login(steward)
    return {"a": a, "b": b, "steward": steward, "client": client}


def table_data(source, name="orders", **extra):
    return {"source": source, "schema": "main", "name": name, "kind": "table", **NO_TABLES, **extra}


def test_a_table_is_added_under_a_granted_source_only(world):
    client, a, b = world["client"], world["a"], world["b"]
    offered = client.get(f"{TABLES}add/").context["adminform"].form.fields["source"]
    assert [s.name for s in offered.queryset] == ["alpha"]
    logs = ChangeLogEntry.objects.count()

    forged = client.post(f"{TABLES}add/", table_data(b.pk))
    missing = client.post(f"{TABLES}add/", table_data(999999))
    assert forged.status_code == missing.status_code == 200
    assert forged.context["adminform"].form.errors == missing.context["adminform"].form.errors
    assert forged.context["adminform"].form.errors["source"] == INVALID
    assert (Table.objects.count(), ChangeLogEntry.objects.count()) == (0, logs)

    assert client.post(f"{TABLES}add/", table_data(a.pk)).status_code == 302
    assert list(Table.objects.values_list("fqn", flat=True)) == ["alpha.main.orders"]


def test_a_table_does_not_move_to_another_source(world):
    client, a, b = world["client"], world["a"], world["b"]
    table = Table.objects.create(source=a, schema="main", name="orders")
    # Not even for a steward of both sources: the API refuses the move too.
    grant(b, world["steward"], "steward")
    page = client.get(f"{TABLES}{table.pk}/change/")
    assert "source" not in page.context["adminform"].form.fields
    data = table_data(b.pk, description="moved?")
    assert client.post(f"{TABLES}{table.pk}/change/", data).status_code == 302
    table.refresh_from_db()
    assert (table.source, table.fqn, table.description) == (a, "alpha.main.orders", "moved?")


def test_a_field_is_added_to_a_table_the_user_may_change(world):
    client = world["client"]
    mine = Table.objects.create(source=world["a"], schema="main", name="orders")
    hidden = Table.objects.create(source=world["b"], schema="main", name="payroll")
    data = {"name": "total", "position": "1", "nullable": "on"}
    forged = client.post(f"{FIELDS}add/", {**data, "table": hidden.pk})
    missing = client.post(f"{FIELDS}add/", {**data, "table": 999999})
    assert forged.status_code == missing.status_code == 200
    assert forged.context["adminform"].form.errors["table"] == INVALID
    assert forged.context["adminform"].form.errors == missing.context["adminform"].form.errors
    assert not Field.objects.exists()

    assert client.post(f"{FIELDS}add/", {**data, "table": mine.pk}).status_code == 302
    field = Field.objects.get()
    assert (field.table, field.name) == (mine, "total")
    page = client.get(f"{FIELDS}{field.pk}/change/")
    assert "table" not in page.context["adminform"].form.fields  # fixed once added
