"""Scans against real servers: SQLite files, the local PostgreSQL and MariaDB."""

import json
import sqlite3
import uuid

import psycopg
import pymysql
import pytest
from django_celery_beat.models import PeriodicTask

from catalog.models import Classification, Field, SchemaVersion, Table
from governance.models import Event, JobRun
from governance.services import grant
from governance.testing import client_for, make_user
from sources.demo import build_shop_database
from sources.models import DataSource

SCHEMA = """
CREATE TABLE customers (id integer PRIMARY KEY, email varchar(200) NOT NULL, phone text);
CREATE TABLE orders (id integer PRIMARY KEY, customer_id integer REFERENCES customers(id),
                     total numeric(10,2));
CREATE TABLE audit_trail (id integer PRIMARY KEY, note text);
CREATE VIEW big_orders AS SELECT o.id, c.email FROM orders o JOIN customers c
    ON c.id = o.customer_id WHERE o.total > 100;
"""
VIEW = """CREATE VIEW big_orders AS SELECT o.id, c.email FROM orders o JOIN customers c
    ON c.id = o.customer_id WHERE o.total > 100"""
ALTER = [
    "ALTER TABLE customers ADD COLUMN loyalty_tier varchar(20)",
    "ALTER TABLE customers DROP COLUMN phone",
    "DROP VIEW big_orders",  # PostgreSQL will not retype a column a view reads
    "ALTER TABLE orders ALTER COLUMN total TYPE numeric(12,2)",
    VIEW,
    "DROP TABLE audit_trail",
]


def scan(source, user=None):
    from catalog.services import scan_enqueue
    from governance import jobs  # noqa: F401

    job, _ = scan_enqueue(source=source, user=user)
    job.refresh_from_db()
    return job


@pytest.fixture
def pg_database():
    name = f"steward_scan_{uuid.uuid4().hex[:8]}"
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={name}", autocommit=True) as conn:
        conn.execute(SCHEMA)
        conn.execute("COMMENT ON TABLE customers IS 'People who bought something'")
        conn.execute("COMMENT ON COLUMN customers.email IS 'Login and receipts'")
    yield name
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def maria_database():
    name = f"steward_scan_{uuid.uuid4().hex[:8]}"
    conn = pymysql.connect(host="127.0.0.1", user="root", autocommit=True)
    with conn.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}`")
        cursor.execute(f"USE `{name}`")
        for statement in filter(str.strip, SCHEMA.split(";")):
            cursor.execute(statement)
        cursor.execute("ALTER TABLE customers COMMENT = 'People who bought something'")
    yield name
    with conn.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
    conn.close()


def run_on_pg(database, statements):
    with psycopg.connect(
        f"host=127.0.0.1 user=postgres dbname={database}", autocommit=True
    ) as conn:
        for statement in statements:
            conn.execute(statement)


def run_on_maria(database, statements):
    conn = pymysql.connect(host="127.0.0.1", user="root", database=database, autocommit=True)
    with conn.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement.replace("ALTER COLUMN total TYPE", "MODIFY total"))
    conn.close()


def assert_scan_history(source, schema, alter):
    job = scan(source)
    assert job.status == "succeeded", job.error
    assert job.result["tables_added"] == 4
    customers = Table.objects.get(source=source, schema=schema, name="customers")
    assert customers.comment == "People who bought something"
    email = customers.fields.get(name="email")
    assert (email.nullable, email.data_type) == (False, "string")
    orders_fk = Field.objects.get(table__source=source, table__name="orders", name="customer_id")
    assert orders_fk.foreign_key == f"{schema}.customers.id"
    view = Table.objects.get(source=source, name="big_orders")
    assert view.kind == "view" and "customer_id" in view.view_definition.lower()
    customers.description = "Curated description"
    customers.save()

    rows = (Table.objects.count(), Field.objects.count(), SchemaVersion.objects.count())
    job = scan(source)
    assert job.status == "succeeded" and not any(job.result.values()), job.result
    assert (Table.objects.count(), Field.objects.count(), SchemaVersion.objects.count()) == rows

    alter(ALTER)
    job = scan(source)
    assert job.status == "succeeded", job.error
    assert job.result["tables_removed"] == 1 and job.result["versions"] == 2
    diff = customers.versions.get(version=2).diff
    assert (diff["added"], diff["removed"], diff["changed"]) == (["loyalty_tier"], ["phone"], [])
    total = Table.objects.get(source=source, name="orders").versions.get(version=2).diff
    assert [c["field"] for c in total["changed"]] == ["total"]
    assert Table.objects.get(source=source, name="audit_trail").removed
    customers.refresh_from_db()
    assert customers.description == "Curated description"
    assert Event.objects.filter(kind="schema.changed").count() == 2


@pytest.mark.django_db(transaction=True)
def test_postgresql_scan_versions_and_drift(pg_database):
    source = DataSource.objects.create(
        name="pg", kind="postgresql", host="127.0.0.1", database=pg_database, username="postgres"
    )
    assert_scan_history(source, "public", lambda s: run_on_pg(pg_database, s))


@pytest.mark.django_db(transaction=True)
def test_mariadb_scan_versions_and_drift(maria_database):
    source = DataSource.objects.create(
        name="maria", kind="mysql", host="127.0.0.1", database=maria_database, username="root"
    )
    assert_scan_history(source, maria_database, lambda s: run_on_maria(maria_database, s))


@pytest.mark.django_db(transaction=True)
def test_sqlite_scan_versions_and_drift(settings, tmp_path):
    path = tmp_path / "sources" / "shop.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    db.commit()

    def alter(statements):
        rebuilt = sqlite3.connect(path)
        rebuilt.executescript("""
            ALTER TABLE customers ADD COLUMN loyalty_tier varchar(20);
            ALTER TABLE customers DROP COLUMN phone;
            DROP VIEW big_orders;
            CREATE TABLE orders_new (id integer PRIMARY KEY,
                customer_id integer REFERENCES customers(id), total numeric(12,2));
            DROP TABLE orders; ALTER TABLE orders_new RENAME TO orders;
            CREATE VIEW big_orders AS SELECT o.id, c.email FROM orders o JOIN customers c
                ON c.id = o.customer_id WHERE o.total > 100;
            DROP TABLE audit_trail;
        """)
        rebuilt.commit()

    source = DataSource.objects.create(name="file", kind="sqlite", database="shop.sqlite3")
    job = scan(source)
    assert job.status == "succeeded", job.error
    assert job.result["tables_added"] == 4
    rows = (Table.objects.count(), Field.objects.count(), SchemaVersion.objects.count())
    assert not any(scan(source).result.values())
    assert (Table.objects.count(), Field.objects.count(), SchemaVersion.objects.count()) == rows
    alter(None)
    job = scan(source)
    assert job.result["tables_removed"] == 1
    diff = Table.objects.get(source=source, name="customers").versions.get(version=2).diff
    assert (diff["added"], diff["removed"]) == (["loyalty_tier"], ["phone"])


@pytest.mark.django_db(transaction=True)
def test_demo_classification_finds_personal_data_and_nothing_in_products(settings, tmp_path):
    build_shop_database(tmp_path / "sources" / "demo.sqlite3")
    source = DataSource.objects.create(
        name="demo", kind="sqlite", database="demo.sqlite3", scan_sample_values=True
    )
    assert scan(source).status == "succeeded"
    found = {
        (c.field.table.name, c.field.name): str(c.tag)
        for c in Classification.objects.select_related("field__table", "tag__category")
    }
    assert found[("customers", "email")] == "PII.Email"
    assert found[("customers", "phone")] == "PII.Phone"
    assert found[("payments", "card_number")] == "PII.Financial.PaymentCard"
    assert found[("customers", "street_address")] == "PII.Address"
    assert not [key for key in found if key[0] == "products"]
    card = Classification.objects.get(field__name="card_number")
    assert card.method == "name+values" and card.hit_ratio == 1.0 and card.sample_size > 0

    # Decisions survive rescans; a rejected suggestion is not raised again.
    from catalog.services import classification_decide

    steward = make_user("sam")
    phone = Classification.objects.get(field__name="phone", field__table__name="customers")
    classification_decide([card], status="accepted", user=steward)
    classification_decide([phone], status="rejected", user=steward)
    Classification.objects.filter(pk=phone.pk).update(status="rejected")
    scan(source)
    assert Classification.objects.get(pk=phone.pk).status == "rejected"
    assert (
        Classification.objects.filter(field__name="phone", field__table__name="customers").count()
        == 1
    )
    assert [str(t) for t in card.field.tags.all()] == ["PII.Financial.PaymentCard"]


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_source_fails_cleanly_and_changes_nothing():
    source = DataSource.objects.create(
        name="gone", kind="postgresql", host="127.0.0.1", port=1, username="postgres"
    )
    job = scan(source)
    assert job.status == "failed"
    assert job.error.startswith("refused:")
    assert not Table.objects.exists()
    blocked = DataSource.objects.create(name="meta", kind="postgresql", host="169.254.169.254")
    job = scan(blocked)
    assert job.status == "failed" and job.error.startswith("blocked:")


def test_scan_api_needs_change_permission_and_lists_scans(db, tmp_path):
    build_shop_database(tmp_path / "sources" / "demo.sqlite3")
    source = DataSource.objects.create(name="demo", kind="sqlite", database="demo.sqlite3")
    viewer, steward = make_user("vic"), make_user("sam")
    grant(source, viewer, "viewer")
    grant(source, steward, "steward")
    assert client_for(viewer).post(f"/api/v1/sources/{source.pk}/scan").status_code == 403
    assert (
        client_for(make_user("nobody")).post(f"/api/v1/sources/{source.pk}/scan").status_code == 404
    )
    response = client_for(steward).post(f"/api/v1/sources/{source.pk}/scan")
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "pending" and body["progress"] == 0
    scans = client_for(viewer).get(f"/api/v1/sources/{source.pk}/scans").json()["results"]
    assert [s["id"] for s in scans] == [body["id"]]


def test_a_second_scan_request_returns_the_waiting_one(db, tmp_path):
    source = DataSource.objects.create(name="demo", kind="sqlite", database="demo.sqlite3")
    client = client_for(make_user("root", superuser=True))
    first = client.post(f"/api/v1/sources/{source.pk}/scan").json()
    second = client.post(f"/api/v1/sources/{source.pk}/scan").json()
    assert first["id"] == second["id"]
    assert JobRun.objects.count() == 1


def test_a_cron_schedule_creates_and_follows_a_beat_entry(db):
    source = DataSource.objects.create(
        name="nightly", kind="postgresql", host="h", scan_schedule="30 2 * * *"
    )
    task = PeriodicTask.objects.get(name=f"scan source #{source.pk}")
    assert task.task == "catalog.scheduled_scan"
    assert json.loads(task.kwargs) == {"source_id": source.pk}
    assert (task.crontab.minute, task.crontab.hour) == ("30", "2")
    source.scan_schedule = "0 */6 * * 1-5"
    source.save()
    task.refresh_from_db()
    assert (task.crontab.hour, task.crontab.day_of_week) == ("*/6", "1-5")
    source.scan_schedule = ""
    source.save()
    assert not PeriodicTask.objects.exists()


def test_a_bad_cron_expression_is_a_400_naming_the_field(db):
    client = client_for(make_user("root", superuser=True))
    response = client.post(
        "/api/v1/sources/",
        {"name": "x", "kind": "postgresql", "host": "h", "scan_schedule": "every night"},
        format="json",
    )
    assert response.status_code == 400 and "scan_schedule" in response.json()
    response = client.post(
        "/api/v1/sources/",
        {"name": "x", "kind": "postgresql", "host": "h", "scan_schedule": "61 * * * *"},
        format="json",
    )
    assert response.status_code == 400 and "scan_schedule" in response.json()


@pytest.mark.django_db(transaction=True)
def test_source_catalog_endpoints(tmp_path):
    build_shop_database(tmp_path / "sources" / "demo.sqlite3")
    source = DataSource.objects.create(
        name="demo",
        kind="sqlite",
        database="demo.sqlite3",
        scan_sample_values=True,
        scan_schedule="0 3 * * *",
    )
    steward, viewer = make_user("sam"), make_user("vic")
    grant(source, steward, "steward")
    grant(source, viewer, "viewer")
    client = client_for(steward)
    base = f"/api/v1/sources/{source.pk}"

    response = client.post(
        f"{base}/introspect/table",
        {"table_name": "customers", "schema_name": "main"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert [c["name"] for c in response.json()["columns"]][:3] == ["id", "first_name", "last_name"]
    assert not Table.objects.exists()  # nothing saved
    response = client.post(f"{base}/introspect/table", {"table_name": "nope"}, format="json")
    assert response.status_code == 404 and response.json()["error_kind"] == "not_found"
    assert client.post(f"{base}/introspect/table", {}, format="json").status_code == 400
    assert (
        client_for(viewer).post(f"{base}/introspect/table", {"table_name": "customers"}).status_code
        == 403
    )

    client.post(f"{base}/scan")
    schedules = client_for(viewer).get(f"{base}/scheduled-tasks").json()
    assert schedules[0]["cron"] == "0 3 * * *" and schedules[0]["last_status"] == "succeeded"
    assert schedules[0]["next_run_at"]

    tables = client_for(viewer).get(f"{base}/catalog").json()
    assert tables["count"] == 7
    customers = next(t for t in tables["results"] if t["name"] == "customers")
    assert customers["field_count"] == 12 and customers["last_seen"]

    suggestion = Classification.objects.get(field__table__name="customers", field__name="email")
    url = f"/api/v1/catalog/classifications/{suggestion.pk}/accept"
    assert client_for(viewer).post(url).status_code == 403
    response = client.post(url)
    assert response.status_code == 200 and response.json()["status"] == "accepted"
    summary = client_for(viewer).get(f"{base}/tags").json()
    assert {"tag": "PII.Email", "tables": 0, "fields": 1} in summary
    listed = client_for(viewer).get("/api/v1/catalog/classifications/?status=suggested").json()
    assert listed["count"] == Classification.objects.filter(status="suggested").count() > 0
