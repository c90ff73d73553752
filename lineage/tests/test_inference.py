"""SQL lineage against the catalog: the API, permissions, stored edges, and view definitions
read by real scans of PostgreSQL, SQLite and MariaDB."""

import sqlite3
import uuid

import psycopg
import pymysql
import pytest
from django.core.management import call_command

from catalog.models import Field, Table
from catalog.services import source_scan
from governance.services import grant
from governance.testing import client_for, make_user
from lineage import inference, services
from lineage.models import FieldLineageEdge, LineageEdge, LineageEvidence, Origin, Status
from sources.models import DataSource

URL = "/api/v1/lineage/sql"
ETL = (
    "INSERT INTO report (id, amount) "
    "SELECT o.id, o.amount + c.amount FROM orders o JOIN customers c ON c.id = o.id"
)


def make_table(source, name, columns=("id", "amount"), schema="main", **extra):
    table = Table.objects.create(source=source, schema=schema, name=name, **extra)
    for position, column in enumerate(columns, 1):
        Field.objects.create(table=table, name=column, position=position)
    return table


@pytest.fixture
def world(db):
    shop = DataSource.objects.create(name="shop", kind="sqlite", database="shop.db")
    hr = DataSource.objects.create(name="hr", kind="sqlite", database="hr.db")
    tables = {n: make_table(shop, n) for n in ("orders", "customers", "report")}
    tables["salaries"] = make_table(hr, "salaries")
    return {"shop": shop, "hr": hr, **tables}


@pytest.fixture
def api(db):
    """The endpoint, mounted at /api/v1/lineage/sql by lineage.api.urls."""


def post(user, **body):
    return client_for(user).post(URL, body, format="json")


def pairs():
    return {
        (e.upstream.name, e.downstream.name, e.origin, e.status) for e in LineageEdge.objects.all()
    }


def field_pairs():
    return {
        (
            f"{f.upstream.table.name}.{f.upstream.name}",
            f"{f.downstream.table.name}.{f.downstream.name}",
        )
        for f in FieldLineageEdge.objects.select_related("upstream__table", "downstream__table")
    }


def test_infer_resolves_names_to_catalog_ids(world):
    answer = inference.infer(ETL, "sqlite", source=world["shop"])
    assert answer["sources"] == ["main.customers", "main.orders"]
    assert answer["targets"] == ["main.report"]
    assert answer["tables"] == [
        {"name": "main.customers", "table_id": world["customers"].pk},
        {"name": "main.orders", "table_id": world["orders"].pk},
        {"name": "main.report", "table_id": world["report"].pk},
    ]
    assert answer["columns"][0] == {
        "target": "main.report.amount",
        "sources": ["main.customers.amount", "main.orders.amount"],
        "transformation": "o.amount + c.amount",
    }
    assert answer["unresolved"] == [] and not LineageEdge.objects.exists()


def test_names_the_user_may_not_see_do_not_resolve(world):
    viewer = make_user("vic")
    grant(world["shop"], viewer, "viewer")
    answer = inference.infer("INSERT INTO report SELECT * FROM salaries", "sqlite", user=viewer)
    assert {t["name"]: t["table_id"] for t in answer["tables"]} == {
        "salaries": None,
        "report": world["report"].pk,
    }
    assert "salaries" in answer["unresolved"]


def test_apply_stores_pending_inferred_edges_once(world):
    steward = make_user("stella")
    grant(world["shop"], steward, "steward")
    answer = inference.infer(ETL, "sqlite", source=world["shop"], apply=True, user=steward)
    assert answer["edges"]["edges_created"] == 2
    assert answer["edges"]["field_edges_created"] == 3
    assert pairs() == {
        ("orders", "report", Origin.INFERRED, Status.PENDING),
        ("customers", "report", Origin.INFERRED, Status.PENDING),
    }
    # `c.id = o.id` is a join condition, not where report.id comes from.
    assert field_pairs() == {
        ("orders.id", "report.id"),
        ("orders.amount", "report.amount"),
        ("customers.amount", "report.amount"),
    }
    evidence = LineageEvidence.objects.filter(kind="sql")
    assert evidence.count() == 2 and len(evidence[0].sql_hash) == 64
    assert "INSERT INTO report" in evidence[0].snippet
    amount = FieldLineageEdge.objects.get(upstream__table=world["orders"], upstream__name="amount")
    assert amount.transformation == "o.amount + c.amount"
    # The same statement in another layout is the same evidence: nothing new.
    again = inference.infer(
        ETL.lower().replace(" ", "\n  "), "sqlite", source=world["shop"], apply=True, user=steward
    )
    assert again["edges"]["edges_created"] == 0 and again["edges"]["evidence"] == 0


def test_apply_needs_change_on_every_target(world):
    viewer = make_user("vic")
    grant(world["shop"], viewer, "viewer")
    with pytest.raises(inference.ApplyDenied) as denied:
        inference.infer(ETL, "sqlite", source=world["shop"], apply=True, user=viewer)
    assert denied.value.tables == ["shop.main.report"]
    assert not LineageEdge.objects.exists()


def test_api(world, api):
    steward, viewer, stranger = make_user("stella"), make_user("vic"), make_user("nobody")
    grant(world["shop"], steward, "steward")
    grant(world["shop"], viewer, "viewer")
    body = {"sql": ETL, "dialect": "sqlite", "source_id": world["shop"].pk}

    assert client_for(None).post(URL, body, format="json").status_code == 401
    response = post(viewer, **body)
    assert response.status_code == 200, response.content
    assert {t["table_id"] for t in response.json()["tables"]} == {
        world[n].pk for n in ("orders", "customers", "report")
    }

    response = post(viewer, **{**body, "dialect": "cobol"})
    assert response.status_code == 400
    assert (
        "allowed:" in response.json()["dialect"][0] and "postgres" in response.json()["dialect"][0]
    )

    response = post(viewer, **{**body, "sql": "SELECT a FROM (\n"})
    assert response.status_code == 400
    assert response.json()["line"] == 1 and response.json()["col"] == 15
    assert "Expected table name" in response.json()["sql"][0]

    # Without a dialect, the source's own; without either, a 400 naming the field.
    response = post(viewer, sql=ETL, source_id=world["shop"].pk)
    assert response.status_code == 200 and response.json()["targets"] == ["main.report"]
    response = post(viewer, sql=ETL)
    assert response.status_code == 400 and "dialect" in response.json()

    assert post(stranger, **body).status_code == 404  # a source they may not see
    assert post(viewer, **{**body, "source_id": world["hr"].pk}).status_code == 404
    assert post(viewer, **{**body, "source_id": 999999}).status_code == 404

    response = post(viewer, **body, apply=True)
    assert response.status_code == 403 and "shop.main.report" in response.json()["detail"]
    assert not LineageEdge.objects.exists()

    response = post(steward, **body, apply=True)
    assert response.status_code == 200, response.content
    assert response.json()["edges"]["edges_created"] == 2
    assert LineageEdge.objects.filter(status=Status.PENDING, origin=Origin.INFERRED).count() == 2

    # Without a source, names resolve across what the user may see.
    response = post(stranger, sql=ETL, dialect="ansi")
    assert response.status_code == 200
    assert all(t["table_id"] is None for t in response.json()["tables"])
    assert post(stranger, sql=ETL, dialect="ansi", apply=True).json()["edges"]["edges_created"] == 0


def test_an_unreadable_view_is_counted_not_raised(world, caplog):
    good = make_table(
        world["shop"], "big", kind="view", view_definition="SELECT id, amount FROM orders"
    )
    bad = make_table(world["shop"], "broken", kind="view", view_definition="SELECT FROM (")
    counts = inference.infer_views(world["shop"], [good, bad])
    assert counts == {
        "lineage_edges": 1,
        "lineage_field_edges": 2,
        "lineage_errors": 1,
        "lineage_edges_retired": 0,
        "lineage_edges_reopened": 0,
        "lineage_field_edges_retired": 0,
    }
    assert "shop.main.broken" in caplog.text
    edge = LineageEdge.objects.get()
    assert (edge.upstream, edge.downstream) == (world["orders"], good)
    assert edge.evidence.get().kind == "view" and edge.evidence.get().view == good


def test_a_redefined_view_retires_what_it_no_longer_reads(world):
    steward = make_user("stella")
    make_table(world["shop"], "staff")
    view = make_table(
        world["shop"],
        "summary",
        kind="view",
        view_definition="SELECT o.id, c.amount, s.id AS staff FROM orders o "
        "JOIN customers c ON c.id = o.id JOIN staff s ON s.id = o.id",
    )
    inference.infer_views(world["shop"], [view])
    edges = {e.upstream.name: e for e in LineageEdge.objects.filter(downstream=view)}
    assert set(edges) == {"orders", "customers", "staff"}
    services.decide([edges["customers"]], status=Status.APPROVED, user=steward)
    services.decide([edges["staff"]], status=Status.REJECTED, user=steward)
    # orders -> summary is also asserted by a steward: it keeps that evidence.
    services.record_edges(
        [
            services.EdgeSpec(
                world["orders"],
                view,
                services.Evidence(kind=LineageEvidence.Kind.MANUAL, key=str(steward.pk)),
            )
        ],
        origin=Origin.MANUAL,
        user=steward,
    )

    view.view_definition = "SELECT r.id, r.amount FROM report r"
    view.save()
    counts = inference.infer_views(world["shop"], [view])

    assert (counts["lineage_edges_retired"], counts["lineage_edges_reopened"]) == (0, 1)
    assert {(up, st) for up, _, _, st in pairs()} == {
        ("orders", "approved"),  # the steward's own assertion stands
        ("customers", "pending"),  # approved from a definition that no longer reads it
        ("staff", "rejected"),  # stays rejected: inference never reopens it
        ("report", "pending"),  # what the view reads now
    }
    orders = LineageEdge.objects.get(upstream=world["orders"], downstream=view)
    assert list(orders.evidence.values_list("kind", flat=True)) == ["manual"]
    customers = LineageEdge.objects.get(upstream=world["customers"], downstream=view)
    assert (customers.decided_by, customers.evidence.count()) == (None, 0)
    report = LineageEdge.objects.get(upstream=world["report"], downstream=view)
    assert report.evidence.get().snippet.startswith("SELECT r.id")

    # Read again with a new definition that still reads report: the edge stays, its
    # evidence shows the definition as it is now, and a pending edge it drops is deleted.
    def report_fields():
        return {
            (f.upstream.name, f.downstream.name)
            for f in FieldLineageEdge.objects.filter(edge__upstream=world["report"])
        }

    assert report_fields() == {("id", "id"), ("amount", "amount")}
    view.view_definition = "SELECT o.id, r.amount FROM report r JOIN orders o ON o.id = r.id"
    view.save()
    counts = inference.infer_views(world["shop"], [view])
    report.refresh_from_db()
    assert report.evidence.get().snippet.startswith("SELECT o.id, r.amount")
    # Its id now comes from orders: report's field edge to it goes, amount's stays.
    assert counts["lineage_field_edges_retired"] == 1
    assert report_fields() == {("amount", "amount")}
    view.view_definition = "SELECT o.id, o.amount FROM orders o"
    view.save()
    counts = inference.infer_views(world["shop"], [view])
    assert counts["lineage_edges_retired"] == 1
    assert not LineageEdge.objects.filter(upstream=world["report"], downstream=view).exists()


def test_a_rescan_after_a_view_changes_retires_its_old_lineage(db, tmp_path):
    path = tmp_path / "sources" / "shop.sqlite3"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE orders (id integer PRIMARY KEY, total real);
        CREATE TABLE refunds (id integer PRIMARY KEY, total real);
        CREATE VIEW money AS SELECT id, total FROM orders;
    """)
    db.commit()
    source = DataSource.objects.create(name="file", kind="sqlite", database="shop.sqlite3")
    source_scan(source=source)
    assert {(up, down) for up, down, _, _ in pairs()} == {("orders", "money")}
    db.executescript("DROP VIEW money; CREATE VIEW money AS SELECT id, total FROM refunds;")
    db.commit()
    db.close()
    counts = source_scan(source=source)
    assert counts["lineage_edges_retired"] == 1
    assert {(up, down) for up, down, _, _ in pairs()} == {("refunds", "money")}
    assert field_pairs() == {("refunds.id", "money.id"), ("refunds.total", "money.total")}


# --- real scans ---------------------------------------------------------------------------

PG_SCHEMA = """
CREATE TABLE customers (id integer PRIMARY KEY, email text, name text);
CREATE TABLE suppliers (id integer PRIMARY KEY, email text);
CREATE TABLE orders (id integer PRIMARY KEY, customer_id integer REFERENCES customers(id),
                     total numeric(10,2), created timestamp);
CREATE SCHEMA reporting;
CREATE VIEW big_orders AS SELECT o.id, c.email FROM orders o JOIN customers c
    ON c.id = o.customer_id WHERE o.total > 100;
CREATE VIEW reporting.customer_totals AS
    WITH t AS (SELECT customer_id, sum(total) AS spent FROM orders GROUP BY customer_id)
    SELECT c.id, c.email, t.spent FROM customers c JOIN t ON t.customer_id = c.id;
CREATE VIEW contacts AS SELECT email FROM customers UNION SELECT email FROM suppliers;
CREATE VIEW reporting.vip AS SELECT * FROM reporting.customer_totals WHERE spent > 1000;
CREATE MATERIALIZED VIEW daily AS
    SELECT date_trunc('day', created) AS day, count(*) AS n FROM orders GROUP BY 1;
"""


@pytest.fixture
def pg_database():
    name = f"steward_lineage_{uuid.uuid4().hex[:8]}"
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={name}", autocommit=True) as conn:
        conn.execute(PG_SCHEMA)
    yield name
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.django_db
def test_postgresql_scan_infers_view_lineage(pg_database):
    source = DataSource.objects.create(
        name="pg", kind="postgresql", host="127.0.0.1", database=pg_database, username="postgres"
    )
    counts = source_scan(source=source)
    assert counts["lineage_errors"] == 0
    assert pairs() == {
        (up, down, Origin.INFERRED, Status.PENDING)
        for up, down in [
            ("orders", "big_orders"),
            ("customers", "big_orders"),
            ("orders", "customer_totals"),
            ("customers", "customer_totals"),
            ("customers", "contacts"),
            ("suppliers", "contacts"),
            ("customer_totals", "vip"),
            ("orders", "daily"),
        ]
    }
    assert counts["lineage_edges"] == 8
    assert field_pairs() == {
        ("orders.id", "big_orders.id"),
        ("customers.email", "big_orders.email"),
        ("customers.id", "customer_totals.id"),
        ("customers.email", "customer_totals.email"),
        ("orders.total", "customer_totals.spent"),
        ("customers.email", "contacts.email"),
        ("suppliers.email", "contacts.email"),
        ("customer_totals.id", "vip.id"),
        ("customer_totals.email", "vip.email"),
        ("customer_totals.spent", "vip.spent"),
        ("orders.created", "daily.day"),
    }
    assert counts["lineage_field_edges"] == 11
    spent = FieldLineageEdge.objects.get(
        downstream__name="spent", downstream__table__name="customer_totals"
    )
    assert spent.transformation == "SUM(orders.total)"
    edge = LineageEdge.objects.get(downstream__name="big_orders", upstream__name="orders")
    evidence = edge.evidence.get()
    assert evidence.kind == "view" and evidence.key == str(edge.downstream_id)
    assert "customer_id" in evidence.snippet

    # A scan that finds nothing new infers nothing new.
    rows = (
        LineageEdge.objects.count(),
        FieldLineageEdge.objects.count(),
        LineageEvidence.objects.count(),
    )
    again = source_scan(source=source)
    assert not any(again.values()), again
    assert (
        LineageEdge.objects.count(),
        FieldLineageEdge.objects.count(),
        LineageEvidence.objects.count(),
    ) == rows

    # A steward's decision changes the status.
    steward = make_user("stella")
    services.decide([edge], status=Status.APPROVED, user=steward)
    edge.refresh_from_db()
    assert edge.status == Status.APPROVED and edge.decided_by == steward

    # Re-inferring existing views adds nothing and reopens nothing.
    call_command("infer_view_lineage", "pg", verbosity=0)
    assert LineageEdge.objects.count() == rows[0]
    edge.refresh_from_db()
    assert edge.status == Status.APPROVED


@pytest.mark.django_db
def test_sqlite_scan_infers_view_lineage_and_survives_a_bad_view(tmp_path, caplog):
    db = sqlite3.connect(tmp_path / "sources" / "shop.sqlite3")
    db.executescript("""
        CREATE TABLE Orders (id integer PRIMARY KEY, customer_id integer, Total real);
        CREATE TABLE customers (id integer PRIMARY KEY, email text);
        CREATE VIEW big_orders (order_id, contact) AS SELECT o.id, c.email FROM orders o
            JOIN customers c ON c.id = o.customer_id WHERE o.total > 100;
        CREATE VIEW every_order AS SELECT * FROM orders;
        CREATE VIEW totals AS SELECT TOTAL, Email FROM ORDERS JOIN Customers
            ON customers.id = orders.customer_id;
    """)
    db.commit()
    source = DataSource.objects.create(name="file", kind="sqlite", database="shop.sqlite3")
    counts = source_scan(source=source)
    assert counts["lineage_errors"] == 0 and counts["lineage_edges"] == 5
    # The view's own column names, by position; SQLite names match in any case.
    assert field_pairs() == {
        ("Orders.id", "big_orders.order_id"),
        ("customers.email", "big_orders.contact"),
        ("Orders.id", "every_order.id"),
        ("Orders.customer_id", "every_order.customer_id"),
        ("Orders.Total", "every_order.Total"),
        ("Orders.Total", "totals.Total"),
        ("customers.email", "totals.email"),
    }
    # The catalog now holds a definition sqlglot cannot read: the command counts it.
    Table.objects.filter(name="every_order").update(view_definition="SELECT * FROM (")
    call_command("infer_view_lineage", "--all", verbosity=0)
    assert "cannot read the definition" in caplog.text


@pytest.fixture
def maria_database():
    name = f"steward_lineage_{uuid.uuid4().hex[:8]}"
    conn = pymysql.connect(host="127.0.0.1", user="root", autocommit=True)
    with conn.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}`")
        cursor.execute(f"USE `{name}`")
        cursor.execute(
            "CREATE TABLE Orders (id int PRIMARY KEY, customer_id int, total decimal(10,2))"
        )
        cursor.execute("CREATE TABLE customers (id int PRIMARY KEY, Email varchar(200))")
        cursor.execute(
            "CREATE VIEW big_orders AS SELECT o.id, c.Email AS email FROM Orders o "
            "JOIN customers c ON c.id = o.customer_id WHERE o.total > 100"
        )
    yield name
    with conn.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
    conn.close()


@pytest.mark.django_db
def test_mariadb_scan_infers_view_lineage(maria_database):
    source = DataSource.objects.create(
        name="maria", kind="mysql", host="127.0.0.1", database=maria_database, username="root"
    )
    counts = source_scan(source=source)
    assert counts["lineage_edges"] == 2 and counts["lineage_errors"] == 0
    assert field_pairs() == {
        ("Orders.id", "big_orders.id"),
        ("customers.Email", "big_orders.email"),
    }


@pytest.fixture
def maria_reader(maria_database):
    """A scanning account that may only SELECT from the database, and a way to grant it more."""
    name, password = f"steward_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    conn = pymysql.connect(host="127.0.0.1", user="root", autocommit=True)

    def grant_(privileges):
        with conn.cursor() as cursor:
            cursor.execute(f"GRANT {privileges} ON `{maria_database}`.* TO %s@'%%'", [name])

    with conn.cursor() as cursor:
        cursor.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", [name, password])
    grant_("SELECT")
    yield name, password, grant_
    with conn.cursor() as cursor:
        cursor.execute("DROP USER IF EXISTS %s@'%%'", [name])
    conn.close()


@pytest.mark.django_db
def test_mariadb_view_lineage_with_a_least_privileged_account(maria_database, maria_reader, caplog):
    """MariaDB shows a view's definition only to accounts with SHOW VIEW: without it the view
    is counted as unreadable (not silently left without lineage); once granted, the next scan
    infers its edges."""
    name, password, grant_ = maria_reader
    source = DataSource.objects.create(
        name="maria",
        kind="mysql",
        host="127.0.0.1",
        database=maria_database,
        username=name,
        password=password,
    )
    counts = source_scan(source=source)
    assert (counts["lineage_edges"], counts["lineage_errors"]) == (0, 1)
    assert "big_orders: the source showed no definition" in caplog.text
    assert "SHOW VIEW privilege" in caplog.text

    grant_("SHOW VIEW")
    counts = source_scan(source=source)
    assert (counts["lineage_edges"], counts["lineage_errors"]) == (2, 0)
    assert pairs() == {
        ("Orders", "big_orders", Origin.INFERRED, Status.PENDING),
        ("customers", "big_orders", Origin.INFERRED, Status.PENDING),
    }
    assert field_pairs() == {
        ("Orders.id", "big_orders.id"),
        ("customers.Email", "big_orders.email"),
    }
    edge = LineageEdge.objects.get(upstream__name="customers")
    assert edge.evidence.get().kind == "view"


def test_the_command_needs_one_source_or_all(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="or --all"):
        call_command("infer_view_lineage", verbosity=0)
    with pytest.raises(CommandError, match="no source named 'nope'"):
        call_command("infer_view_lineage", "nope", verbosity=0)


def test_the_lineage_sql_endpoint_has_its_own_throttle_scope(world, api, monkeypatch):
    from governance.api.throttling import ScopedRateThrottle

    user = make_user("vic")
    body = {"sql": "SELECT 1", "dialect": "ansi"}
    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, "lineage-sql", "2/min")
    assert [post(user, **body).status_code for _ in range(3)] == [200, 200, 429]
