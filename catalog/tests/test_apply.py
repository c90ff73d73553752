"""Applying connector metadata to the catalog: what is written, and that nothing is written
when nothing changed. The metadata objects are the plain input a connector returns."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import Field, SchemaVersion, Table, Tag, TagCategory
from catalog.services import catalog_apply
from governance.models import ChangeLogEntry, Event
from sources.connectors.metadata import ColumnMeta, TableMeta
from sources.models import DataSource


def col(name, position, data_type="integer", native="integer", **extra):
    return ColumnMeta(
        name=name, position=position, data_type=data_type, native_type=native, **extra
    )


def shop():
    return [
        TableMeta(
            schema="public",
            name="customers",
            kind="table",
            row_count=10,
            columns=[
                col("id", 1, nullable=False, is_primary_key=True),
                col("email", 2, "string", "character varying(200)"),
                col("phone", 3, "string", "text"),
            ],
        ),
        TableMeta(
            schema="public",
            name="orders",
            kind="table",
            columns=[
                col("id", 1, nullable=False, is_primary_key=True),
                col("customer_id", 2, foreign_key="public.customers.id"),
            ],
        ),
        TableMeta(
            schema="public",
            name="big_customers",
            kind="view",
            view_definition="SELECT id FROM customers",
            columns=[col("id", 1)],
        ),
    ]


@pytest.fixture
def source(db):
    return DataSource.objects.create(name="shop", kind="postgresql", host="db.example.com")


def written_rows():
    return (
        Table.objects.count(),
        Field.objects.count(),
        SchemaVersion.objects.count(),
        ChangeLogEntry.objects.count(),
        Event.objects.count(),
    )


def test_first_scan_creates_tables_fields_and_first_versions(source):
    counts = catalog_apply(source, shop())
    assert counts["tables_added"] == 3 and counts["fields_added"] == 6
    assert counts["versions"] == 3
    customers = Table.objects.get(fqn="shop.public.customers")
    assert [f.name for f in customers.fields.all()] == ["id", "email", "phone"]
    assert customers.versions.get().diff["added"] == ["email", "id", "phone"]
    assert Field.objects.get(table__name="orders", name="customer_id").foreign_key == (
        "public.customers.id"
    )
    assert Table.objects.get(name="big_customers").view_definition == "SELECT id FROM customers"
    assert ChangeLogEntry.objects.filter(action="create", object_id=customers.pk).exists()
    assert not Event.objects.exists()


def test_a_rescan_without_changes_writes_nothing(source):
    catalog_apply(source, shop())
    before = written_rows()
    with CaptureQueriesContext(connection) as queries:
        counts = catalog_apply(source, shop())
    assert written_rows() == before
    writes = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
    ]
    assert writes == []
    assert not any(counts.values())


def test_changes_make_exactly_the_expected_versions_and_removed_flags(source):
    catalog_apply(source, shop())
    customers = Table.objects.get(name="customers")
    customers.description = "People who bought something"
    customers.save()
    changed = shop()
    changed[0].columns = [
        col("id", 1, "integer", "bigint", nullable=False, is_primary_key=True),  # type changed
        col("email", 2, "string", "character varying(200)"),
        col("loyalty_tier", 3, "string", "text"),  # phone dropped, loyalty_tier added
    ]
    del changed[1]  # orders dropped
    counts = catalog_apply(source, changed)
    assert (counts["tables_removed"], counts["fields_added"], counts["fields_removed"]) == (1, 1, 1)
    assert counts["versions"] == 1
    version = customers.versions.get(version=2)
    assert version.diff["added"] == ["loyalty_tier"] and version.diff["removed"] == ["phone"]
    assert version.diff["changed"] == [
        {
            "field": "id",
            "before": {
                "data_type": "integer",
                "native_type": "integer",
                "nullable": False,
                "is_primary_key": True,
            },
            "after": {
                "data_type": "integer",
                "native_type": "bigint",
                "nullable": False,
                "is_primary_key": True,
            },
        }
    ]
    orders = Table.objects.get(name="orders")
    assert orders.removed and orders.removed_at is not None
    assert not orders.versions.filter(version=2).exists()
    assert Field.objects.get(table=customers, name="phone").removed
    customers.refresh_from_db()
    assert customers.description == "People who bought something"
    event = Event.objects.get(kind="schema.changed")
    assert event.object_id == customers.pk and event.payload["added"] == ["loyalty_tier"]


def test_a_table_that_comes_back_keeps_its_curated_metadata(source):
    catalog_apply(source, shop())
    orders = Table.objects.get(name="orders")
    pii = TagCategory.objects.create(name="Domain")
    tag = Tag.objects.create(category=pii, name="Sales")
    orders.description = "Every order"
    orders.save()
    orders.tags.add(tag)
    catalog_apply(source, [t for t in shop() if t.name != "orders"])
    catalog_apply(source, shop())
    orders.refresh_from_db()
    assert not orders.removed
    assert orders.description == "Every order" and list(orders.tags.all()) == [tag]
    assert orders.versions.count() == 1  # same structure as before it went away
