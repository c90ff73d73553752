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


def test_a_field_that_comes_back_is_unremoved_and_counted_as_changed(source):
    catalog_apply(source, shop())
    phone = Field.objects.get(table__name="customers", name="phone")
    without_phone = shop()
    without_phone[0].columns = without_phone[0].columns[:2]
    assert catalog_apply(source, without_phone)["fields_removed"] == 1
    phone.refresh_from_db()
    assert phone.removed
    counts = catalog_apply(source, shop())
    assert (counts["fields_added"], counts["fields_changed"], counts["versions"]) == (0, 1, 1)
    phone.refresh_from_db()
    assert not phone.removed
    assert Field.objects.filter(table__name="customers", name="phone").count() == 1
    customers = Table.objects.get(name="customers")
    assert customers.versions.get(version=3).diff["added"] == ["phone"]


def test_changed_field_attributes_are_written_and_others_left_alone(source):
    catalog_apply(source, shop())
    email = Field.objects.get(table__name="customers", name="email")
    email.description = "Curated"
    email.save()
    changed = shop()
    changed[0].columns[1].comment = "Login and receipts"  # not structural: no version
    counts = catalog_apply(source, changed)
    assert (counts["fields_changed"], counts["versions"]) == (1, 0)
    email.refresh_from_db()
    assert (email.comment, email.description) == ("Login and receipts", "Curated")
    assert Field.objects.get(table__name="customers", name="phone").comment == ""


def test_tables_are_applied_in_chunks_with_the_same_result(source, monkeypatch):
    from catalog import services

    monkeypatch.setattr(services, "CHUNK_TABLES", 1)
    counts = catalog_apply(source, shop())
    assert (counts["tables_added"], counts["fields_added"], counts["versions"]) == (3, 6, 3)
    assert Field.objects.filter(table__name="customers").count() == 3
    before = written_rows()
    assert not any(catalog_apply(source, shop()).values())
    assert written_rows() == before


def test_table_change_log_entries_hold_json_safe_snapshots(source):
    catalog_apply(source, shop())
    customers = Table.objects.get(name="customers")
    from governance.changelog import history

    created = history(customers).get(action="create")
    assert created.after["row_count"] == 10 and created.after["properties"] == {}
    assert isinstance(created.after["first_seen"], str)
    changed = shop()
    changed[0].row_count = 12
    changed[0].properties = {"engine": "heap"}
    assert catalog_apply(source, changed)["tables_changed"] == 1
    update = history(customers).get(action="update")
    assert sorted(update.changed) == ["properties", "row_count"]
    assert (update.before["row_count"], update.after["row_count"]) == (10, 12)
    assert update.after["properties"] == {"engine": "heap"} and update.version == 2


@pytest.mark.parametrize("copy", [True, False], ids=["copy-where-available", "bulk-create"])
def test_insert_rows_and_objects_write_what_bulk_create_would(source, monkeypatch, copy):
    """COPY on PostgreSQL (psycopg 3); bulk_create on other databases or when COPY is off."""
    from django.utils import timezone

    from catalog import services
    from governance import changelog

    if not copy:
        monkeypatch.setattr(changelog, "can_copy", lambda model: False)
    copied = copy and connection.vendor == "postgresql"
    tables = [
        Table(source=source, schema="s", name=name, fqn=f"shop.s.{name}", properties=props)
        for name, props in (("t", {"engine": "heap", "n": [1, None]}), ("u", {}))
    ]
    with CaptureQueriesContext(connection) as queries:
        assert changelog.insert_objects(tables) == tables
    assert [t.pk for t in tables] == list(
        Table.objects.filter(schema="s").order_by("pk").values_list("pk", flat=True)
    )
    table = Table.objects.get(pk=tables[0].pk)
    assert (table.name, table.properties, table.removed) == (
        "t",
        {"engine": "heap", "n": [1, None]},
        False,
    )
    assert table.created_at is not None and not tables[0]._state.adding
    now = timezone.now()
    columns = (*services.FIELD_COLUMNS, *services.FIELD_ATTRS)
    rows = [
        (now, now, "", table.pk, "a", False, 1, "string", "text", True, None, False, "", "", None),
        (now, now, "", table.pk, "b\tc\n", False, 2, "json", "jsonb", False, "'{}'::jsonb", True,
         "public.x.id", "Ünïcode \\ comment", 0.5),
    ]  # fmt: skip
    with CaptureQueriesContext(connection) as more:
        ids = changelog.insert_rows(Field, columns, rows, returning_ids=True)
    inserts = [
        q
        for q in [*queries.captured_queries, *more.captured_queries]
        if "INSERT" in q["sql"].upper()
    ]
    assert bool(inserts) == (not copied)
    got = list(table.fields.order_by("position").values_list("id", *columns[3:]))
    assert got == [(pk, *row[3:]) for pk, row in zip(ids, rows, strict=True)]
    changelog.insert_rows(
        SchemaVersion,
        services.VERSION_COLUMNS,
        [(table.pk, 1, now, None, {"a": {"nullable": True}}, {"added": ["a"], "x": [1.5, None]})],
    )
    version = table.versions.get()
    assert version.fields == {"a": {"nullable": True}}
    assert version.diff == {"added": ["a"], "x": [1.5, None]}
    assert version.created_at >= now
    entries = changelog.record_many(
        Table, [(t, ChangeLogEntry.Action.CREATE, None) for t in tables]
    )
    assert [e.pk for e in entries] == list(
        ChangeLogEntry.objects.filter(
            content_type__model="table", object_id__in=[t.pk for t in tables]
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    assert entries[0].after["properties"] == {"engine": "heap", "n": [1, None]}


@pytest.fixture
def rules(db):
    from catalog.services import sync_builtin_rules

    sync_builtin_rules()


def test_every_column_with_a_known_name_gets_a_suggestion(source, rules):
    from catalog.models import Classification

    counts = catalog_apply(source, shop())
    found = sorted(Classification.objects.values_list("field__table__name", "field__name", "rule"))
    assert ("customers", "email", "email") in found and ("customers", "phone", "phone") in found
    assert counts["suggestions"] == len(found)
    other = [
        TableMeta(schema="crm", name="leads", kind="table", columns=[col("email", 1, "string")])
    ]
    counts = catalog_apply(source, shop() + other)
    assert counts["suggestions"] == 1  # the same name in another table; the rest are known
    assert Classification.objects.filter(field__table__name="leads", rule="email").exists()


def test_a_new_rule_applies_to_existing_fields_and_a_rejection_sticks(source, rules):
    from catalog.models import Classification, ClassifierRule

    catalog_apply(source, shop())
    Classification.objects.filter(field__name="email").update(status="rejected")
    ClassifierRule.objects.create(
        key="customer-ref",
        label="Customer reference",
        tag=Tag.objects.first(),
        name_pattern=r"customer_id",
        name_only=True,
    )
    counts = catalog_apply(source, shop())
    assert counts["suggestions"] == 1
    assert Classification.objects.get(rule="customer-ref").field.name == "customer_id"
    assert Classification.objects.get(field__name="email").status == "rejected"
    assert not catalog_apply(source, shop())["suggestions"]


def test_sampled_values_are_judged_per_column(source, rules):
    from catalog.models import Classification

    metas = [
        TableMeta(
            schema="public",
            name=name,
            kind="table",
            columns=[col("contact", 1, "string", "text")],
        )
        for name in ("a", "b")
    ]
    emails = [f"user{n}@example.com" for n in range(10)]
    samples = {("public", "a"): {"contact": emails}, ("public", "b"): {"contact": ["x"] * 10}}
    assert catalog_apply(source, metas, samples)["suggestions"] == 1
    assert Classification.objects.get().field.table.name == "a"


def test_a_table_or_column_reported_twice_is_one_row(source):
    again = shop()[0]
    again.columns.append(col("email", 9, "string", "text"))
    metas = [*shop(), again]  # the last report of a table counts, the first of a column
    counts = catalog_apply(source, metas)
    assert (counts["tables_added"], counts["fields_added"]) == (3, 6)
    assert not any(catalog_apply(source, metas).values())
