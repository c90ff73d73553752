"""Introspection tests.

Real servers: PostgreSQL and MariaDB on 127.0.0.1 (a scratch database per module, dropped
afterwards) and SQLite files in tmp_path. MongoDB (mongomock), Elasticsearch (a loopback HTTP
server) and Oracle (a connection whose cursor answers the catalog queries) run against clearly
labelled FAKES from fakes.py, or, when MONGO_URL / ELASTICSEARCH_URL / ORACLE_DSN are set,
against real servers (integration tests).
"""

import os
import secrets
import sqlite3
from dataclasses import replace

import oracledb
import psycopg
import pymysql
import pytest
from oracledb import errors as oracle_errors
from psycopg import sql as pgsql

from sources.connectors import ConnectionSpec, ConnectorError, NetworkPolicy, get_connector
from sources.connectors.metadata import (
    DATA_TYPES,
    ColumnMeta,
    ScanRules,
    TableMeta,
    normalize_type,
    sample_text,
)
from sources.connectors.mongodb import MongoDBConnector, infer_fields
from sources.connectors.mysql import MySQLConnector
from sources.connectors.oracle import native_type
from sources.connectors.postgresql import PostgreSQLConnector
from sources.connectors.sqlite import SQLiteConnector

from .fakes import FakeElasticsearch, FakeMongoClient, FakeOracleConnection
from .test_connectors import needs_mariadb, needs_postgres, spec_from_url

SUFFIX = secrets.token_hex(3)
PG_DATABASE = f"steward_introspect_{SUFFIX}"
MY_PREFIX = f"steward_introspect_{SUFFIX}"
NO_ACCESS_ROLE = f"steward_noaccess_{SUFFIX}"


def C(name, position, data_type, native, **fields):
    return ColumnMeta(name, position, data_type, native, **fields)


@pytest.fixture
def policy(tmp_path):
    return NetworkPolicy(allow=("127.0.0.1",), sqlite_dir=str(tmp_path), connect_timeout=5)


@pytest.fixture
def statements(monkeypatch):
    """Every statement the SQL connectors send, counted at the driver connection's cursor."""
    seen = []
    for cls in (PostgreSQLConnector, MySQLConnector, SQLiteConnector):
        original = cls.open

        def open_counted(self, target, stack, _original=original):
            return CountingConnection(_original(self, target, stack), seen)

        monkeypatch.setattr(cls, "open", open_counted)
    return seen


class CountingConnection:
    """Wraps a DB-API connection; its cursors record each statement with its parameters."""

    def __init__(self, connection, seen):
        self._connection = connection
        self._seen = seen

    def cursor(self, *args, **kwargs):
        return CountingCursor(self._connection.cursor(*args, **kwargs), self._seen)

    def __getattr__(self, name):
        return getattr(self._connection, name)


class CountingCursor:
    def __init__(self, cursor, seen):
        self._cursor = cursor
        self._seen = seen

    def execute(self, query, params=None, *args, **kwargs):
        self._seen.append((str(query), params))
        if params is None:
            return self._cursor.execute(query, *args, **kwargs)
        return self._cursor.execute(query, params, *args, **kwargs)

    def __iter__(self):
        return iter(self._cursor)

    def __getattr__(self, name):
        return getattr(self._cursor, name)


def by_name(tables):
    return {table.qualified_name: table for table in tables}


def without_size(table):
    return replace(table, size_bytes=None)


def check_progress(calls, total):
    assert calls[0][:2] == (0, total)
    assert calls[-1][:2] == (total, total)
    done = [call[0] for call in calls]
    assert done == sorted(done)
    assert all(isinstance(call[2], str) and call[2] for call in calls)


# --- metadata: rules, type normalisation, sample text ---------------------------------------


def test_scan_rules_match_case_insensitively_on_table_or_schema_dot_table():
    rules = ScanRules(
        include_schemas=("Sales*", "hr"),
        exclude_schemas=("sales_archive",),
        include_tables=("customers", "hr.*", "*_2024"),
        exclude_tables=("HR.secret*",),
    )
    assert rules.schema_allowed("sales") and rules.schema_allowed("SALES_eu")
    assert not rules.schema_allowed("Sales_Archive") and not rules.schema_allowed("ops")
    assert rules.table_allowed("sales", "Customers")
    assert rules.table_allowed("hr", "people") and not rules.table_allowed("sales", "people")
    assert rules.table_allowed("ops", "orders_2024")
    assert not rules.table_allowed("hr", "secret_salaries")
    assert ScanRules().table_allowed("any", "thing") and ScanRules().schema_allowed("x")
    assert not ScanRules(include_views=False).allows("s", "v", "materialized_view")
    assert ScanRules(include_schemas=("nothing",)).allows("", "index", "index")


@pytest.mark.parametrize(
    ("family", "native", "expected"),
    [
        ("postgresql", "character varying(255)", "string"),
        ("postgresql", "character(2)", "string"),
        ("postgresql", "text", "text"),
        ("postgresql", "integer", "integer"),
        ("postgresql", "bigint", "integer"),
        ("postgresql", "numeric(10,2)", "decimal"),
        ("postgresql", "double precision", "float"),
        ("postgresql", "boolean", "boolean"),
        ("postgresql", "date", "date"),
        ("postgresql", "timestamp(3) with time zone", "timestamp"),
        ("postgresql", "time without time zone", "time"),
        ("postgresql", "interval", "interval"),
        ("postgresql", "bytea", "binary"),
        ("postgresql", "jsonb", "json"),
        ("postgresql", "uuid", "uuid"),
        ("postgresql", "text[]", "array"),
        ("postgresql", "public.geometry(Point,4326)", "geometry"),
        ("postgresql", "bit(1)", "boolean"),
        ("postgresql", "bit varying(8)", "binary"),
        ("postgresql", "tsvector", "other"),
        ("mysql", "int(11)", "integer"),
        ("mysql", "int(10) unsigned", "integer"),
        ("mysql", "tinyint(1)", "boolean"),
        ("mysql", "tinyint(4)", "integer"),
        ("mysql", "varchar(255)", "string"),
        ("mysql", "longtext", "text"),
        ("mysql", "decimal(10,2)", "decimal"),
        ("mysql", "datetime(6)", "timestamp"),
        ("mysql", "enum('a','b')", "string"),
        ("mysql", "year(4)", "integer"),
        ("mysql", "mediumblob", "binary"),
        ("oracle", "NUMBER(10,2)", "decimal"),
        ("oracle", "NUMBER(10)", "integer"),
        ("oracle", "NUMBER(*,0)", "integer"),
        ("oracle", "NUMBER", "decimal"),
        ("oracle", "VARCHAR2(100)", "string"),
        ("oracle", "DATE", "timestamp"),
        ("oracle", "TIMESTAMP(6) WITH LOCAL TIME ZONE", "timestamp"),
        ("oracle", "INTERVAL DAY(2) TO SECOND(6)", "interval"),
        ("oracle", "CLOB", "text"),
        ("oracle", "LONG", "text"),
        ("oracle", "RAW(16)", "binary"),
        ("oracle", "BINARY_DOUBLE", "float"),
        ("oracle", "SDO_GEOMETRY", "geometry"),
        ("sqlite", "VARCHAR(255)", "string"),
        ("sqlite", "INTEGER", "integer"),
        ("sqlite", "UNSIGNED BIG INT", "integer"),
        ("sqlite", "NVARCHAR(100)", "string"),
        ("sqlite", "CHARACTER VARYING", "string"),
        ("sqlite", "STRING_ISH CLOB", "text"),
        ("sqlite", "DATETIME", "timestamp"),
        ("sqlite", "FLOATING POINT", "integer"),
        ("sqlite", "REALLY BIG", "float"),
        ("sqlite", "", "other"),
        ("sqlite", "WHATEVER", "decimal"),
        ("mongodb", "string", "string"),
        ("mongodb", "long", "integer"),
        ("mongodb", "date", "timestamp"),
        ("mongodb", "objectId", "other"),
        ("mongodb", "binData", "binary"),
        ("elasticsearch", "keyword", "string"),
        ("elasticsearch", "text", "text"),
        ("elasticsearch", "date", "timestamp"),
        ("elasticsearch", "nested", "array"),
        ("elasticsearch", "object", "object"),
        ("elasticsearch", "scaled_float", "float"),
        ("elasticsearch", "geo_point", "geometry"),
        ("elasticsearch", "integer_range", "other"),
    ],
)
def test_normalize_type(family, native, expected):
    assert normalize_type(family, native) == expected
    assert expected in DATA_TYPES


def test_sample_text_is_short_text():
    assert sample_text("x" * 500) == "x" * 200
    assert sample_text(b"\x00\xff" * 300) == "00ff" * 50
    assert sample_text({"a": [1, "é"]}) == '{"a": [1, "é"]}'
    assert sample_text(3.5) == "3.5"


# --- PostgreSQL (real server) ---------------------------------------------------------------

PG_SCHEMA = """
CREATE SCHEMA shop;
CREATE SCHEMA scratch;
CREATE SCHEMA many;
CREATE TABLE shop.customers (
  id serial PRIMARY KEY,
  email varchar(255) NOT NULL,
  name text,
  legacy integer,
  created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE shop.customers DROP COLUMN legacy;
ALTER TABLE shop.customers ADD COLUMN vip boolean DEFAULT false;
COMMENT ON TABLE shop.customers IS 'People who buy things';
COMMENT ON COLUMN shop.customers.email IS 'Login and contact address';
CREATE TABLE shop.orders (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  customer_id integer NOT NULL REFERENCES shop.customers (id),
  total numeric(10,2) NOT NULL DEFAULT 0,
  placed_on date,
  tags text[],
  meta jsonb
);
CREATE TABLE shop.order_lines (
  order_id bigint REFERENCES shop.orders (id),
  line_no smallint,
  sku char(8),
  qty integer,
  PRIMARY KEY (order_id, line_no)
);
CREATE TABLE shop.shipments (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  order_id bigint,
  line_no smallint,
  FOREIGN KEY (order_id, line_no) REFERENCES shop.order_lines (order_id, line_no)
);
CREATE TABLE shop.empty_audit (at timestamp, what text);
CREATE TABLE shop.events (id integer, at date) PARTITION BY RANGE (at);
CREATE TABLE shop.events_2024 PARTITION OF shop.events
  FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE shop."Odd ""Name"" x" ("select" text, "Mixed Case" integer);
CREATE VIEW shop.big_spenders AS
  SELECT c.id, c.email, sum(o.total) AS spent
  FROM shop.customers c JOIN shop.orders o ON o.customer_id = c.id GROUP BY c.id, c.email;
COMMENT ON VIEW shop.big_spenders IS 'Customers by money spent';
CREATE MATERIALIZED VIEW shop.daily_totals AS
  SELECT placed_on, sum(total) AS total FROM shop.orders GROUP BY placed_on;
CREATE TABLE scratch.tmp (x integer);
INSERT INTO shop.customers (email, name) VALUES
  ('ada@example.com', 'Ada'), ('bob@example.com', NULL), ('eve@example.com', repeat('N', 500));
INSERT INTO shop.orders (customer_id, total, placed_on) VALUES (1, 10.50, '2024-05-01'),
  (1, 4.50, '2024-05-02'), (3, 99.00, '2024-05-02');
INSERT INTO shop.events VALUES (1, '2024-03-01'), (2, '2024-04-01');
INSERT INTO shop."Odd ""Name"" x" VALUES ('drop table', 1);
REFRESH MATERIALIZED VIEW shop.daily_totals;
"""


@pytest.fixture(scope="module")
def pg_database():
    admin = psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True)
    name = pgsql.Identifier(PG_DATABASE)
    admin.execute(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
    admin.execute(pgsql.SQL("DROP ROLE IF EXISTS {}").format(pgsql.Identifier(NO_ACCESS_ROLE)))
    admin.execute(pgsql.SQL("CREATE DATABASE {}").format(name))
    admin.execute(pgsql.SQL("CREATE ROLE {} LOGIN").format(pgsql.Identifier(NO_ACCESS_ROLE)))
    with psycopg.connect(host="127.0.0.1", user="postgres", dbname=PG_DATABASE) as conn:
        conn.execute(PG_SCHEMA)
        many = "".join(
            f"CREATE TABLE many.t{i:02d} (id integer PRIMARY KEY, "
            + (f"parent_id integer REFERENCES many.t{i - 1:02d} (id), " if i else "")
            + f"note text); COMMENT ON TABLE many.t{i:02d} IS 'table {i}';"
            for i in range(50)
        )
        conn.execute(many)
        conn.commit()
    with psycopg.connect(
        host="127.0.0.1", user="postgres", dbname=PG_DATABASE, autocommit=True
    ) as conn:
        conn.execute("ANALYZE")
    yield PG_DATABASE
    admin.execute(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
    admin.execute(pgsql.SQL("DROP ROLE IF EXISTS {}").format(pgsql.Identifier(NO_ACCESS_ROLE)))
    admin.close()


def pg(policy, username="postgres"):
    spec = ConnectionSpec(
        kind="postgresql", host="127.0.0.1", database=PG_DATABASE, username=username
    )
    return get_connector(spec, policy)


PG_SHOP = ScanRules(include_schemas=("shop",))


@needs_postgres
def test_postgresql_tables_columns_keys_and_comments(pg_database, policy):
    calls = []
    tables = by_name(pg(policy).introspect(PG_SHOP, lambda *call: calls.append(call)))
    assert sorted(tables) == [
        'shop.Odd "Name" x',
        "shop.big_spenders",
        "shop.customers",
        "shop.daily_totals",
        "shop.empty_audit",
        "shop.events",
        "shop.events_2024",
        "shop.order_lines",
        "shop.orders",
        "shop.shipments",
    ]
    check_progress(calls, 10)
    assert all(t.size_bytes > 0 for t in tables.values() if t.kind != "view")
    assert without_size(tables["shop.customers"]) == TableMeta(
        schema="shop",
        name="customers",
        kind="table",
        comment="People who buy things",
        row_count=3,
        columns=[
            C(
                "id", 1, "integer", "integer", nullable=False, is_primary_key=True,
                default="nextval('shop.customers_id_seq'::regclass)",
            ),
            C(
                "email", 2, "string", "character varying(255)", nullable=False,
                comment="Login and contact address",
            ),
            C("name", 3, "text", "text"),
            C("created_at", 4, "timestamp", "timestamp with time zone", nullable=False,
              default="now()"),
            C("vip", 5, "boolean", "boolean", default="false"),
        ],
    )  # fmt: skip
    assert tables["shop.orders"].columns == [
        C("id", 1, "integer", "bigint", nullable=False, is_primary_key=True,
          default="GENERATED ALWAYS AS IDENTITY"),
        C("customer_id", 2, "integer", "integer", nullable=False,
          foreign_key="shop.customers.id"),
        C("total", 3, "decimal", "numeric(10,2)", nullable=False, default="0"),
        C("placed_on", 4, "date", "date"),
        C("tags", 5, "array", "text[]"),
        C("meta", 6, "json", "jsonb"),
    ]  # fmt: skip
    assert tables["shop.order_lines"].columns == [
        C("order_id", 1, "integer", "bigint", nullable=False, is_primary_key=True,
          foreign_key="shop.orders.id"),
        C("line_no", 2, "integer", "smallint", nullable=False, is_primary_key=True),
        C("sku", 3, "string", "character(8)"),
        C("qty", 4, "integer", "integer"),
    ]  # fmt: skip
    assert tables["shop.shipments"].columns == [
        C("id", 1, "uuid", "uuid", nullable=False, is_primary_key=True,
          default="gen_random_uuid()"),
        C("order_id", 2, "integer", "bigint", foreign_key="shop.order_lines.order_id"),
        C("line_no", 3, "integer", "smallint", foreign_key="shop.order_lines.line_no"),
    ]  # fmt: skip


@needs_postgres
def test_postgresql_views_partitions_and_empty_tables(pg_database, policy):
    tables = by_name(pg(policy).introspect(PG_SHOP))
    view = tables["shop.big_spenders"]
    assert (view.kind, view.comment, view.row_count, view.size_bytes) == (
        "view",
        "Customers by money spent",
        None,
        None,
    )
    assert view.view_definition.startswith("SELECT c.id,")
    assert "JOIN shop.orders o ON ((o.customer_id = c.id))" in view.view_definition
    assert not view.view_definition.endswith(";")
    assert [(c.name, c.data_type) for c in view.columns] == [
        ("id", "integer"),
        ("email", "string"),
        ("spent", "decimal"),
    ]
    matview = tables["shop.daily_totals"]
    assert matview.kind == "materialized_view"
    assert matview.row_count == 2
    assert "sum(orders.total) AS total" in matview.view_definition
    assert "GROUP BY orders.placed_on" in matview.view_definition
    assert tables["shop.events"].properties == {"partitioned": True}
    assert tables["shop.events"].row_count == 2
    assert tables["shop.events_2024"].properties == {"partition_of": "shop.events"}
    assert without_size(tables["shop.empty_audit"]) == TableMeta(
        "shop",
        "empty_audit",
        "table",
        row_count=0,
        columns=[
            C("at", 1, "timestamp", "timestamp without time zone"),
            C("what", 2, "text", "text"),
        ],
    )


@needs_postgres
@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        (ScanRules(include_schemas=("SCR*",)), {"scratch.tmp"}),
        (
            ScanRules(exclude_schemas=("shop", "many")),
            {"scratch.tmp"},
        ),
        (
            ScanRules(include_tables=("shop.order*", "tmp")),
            {"shop.orders", "shop.order_lines", "scratch.tmp"},
        ),
        (
            ScanRules(include_schemas=("shop",), exclude_tables=("*s", "odd*", "*_2024")),
            {"shop.empty_audit"},
        ),
        (
            ScanRules(include_schemas=("shop",), include_views=False, include_tables=("[bd]*",)),
            set(),
        ),
    ],
)
def test_postgresql_rules_choose_before_details_are_read(
    pg_database, policy, statements, rules, expected
):
    tables = pg(policy).introspect(rules)
    assert {t.qualified_name for t in tables} == expected
    details = [params["oids"] for _, params in statements if isinstance(params, dict)]
    assert len(details) == (3 if expected else 0)
    with psycopg.connect(host="127.0.0.1", user="postgres", dbname=PG_DATABASE) as conn:
        for oids in details:
            named = conn.execute(
                "SELECT relnamespace::regnamespace || '.' || relname FROM pg_class"
                " WHERE oid = ANY(%s)",
                [oids],
            )
            assert {name for (name,) in named} == expected


@needs_postgres
def test_postgresql_query_count_does_not_grow_with_tables(pg_database, policy, statements):
    five = pg(policy).introspect(ScanRules(include_schemas=("many",), include_tables=("t0[0-4]",)))
    five_statements = len(statements)
    statements.clear()
    fifty = pg(policy).introspect(ScanRules(include_schemas=("many",)))
    assert (len(five), len(fifty)) == (5, 50)
    assert len(statements) == five_statements == 4
    assert fifty[49].comment == "table 49"
    assert fifty[49].column("parent_id").foreign_key == "many.t48.id"
    statements.clear()
    everything = pg(policy).introspect()
    assert len(everything) == 61
    assert len(statements) == 4


@needs_postgres
def test_postgresql_agrees_with_sqlalchemy_inspector(pg_database, policy):
    from sqlalchemy import inspect

    connector = pg(policy)
    ours = by_name(connector.introspect(ScanRules(include_schemas=("shop",), include_views=False)))
    with connector.connect() as conn:
        engine = connector.engine(conn)
        with engine.connect() as sa_conn:
            assert sa_conn.connection.driver_connection is conn
        inspector = inspect(engine)
        columns = inspector.get_multi_columns(schema="shop")
        keys = inspector.get_multi_pk_constraint(schema="shop")
        foreign = inspector.get_multi_foreign_keys(schema="shop")
        comments = inspector.get_multi_table_comment(schema="shop")
    for (schema, name), reflected in columns.items():
        table = ours[f"{schema}.{name}"]
        assert [(c["name"], c["nullable"]) for c in reflected] == [
            (c.name, c.nullable) for c in table.columns
        ]
        assert keys[(schema, name)]["constrained_columns"] == [
            c.name for c in table.columns if c.is_primary_key
        ]
        referenced = {
            column: f"{fk['referred_schema']}.{fk['referred_table']}.{target}"
            for fk in foreign[(schema, name)]
            for column, target in zip(
                fk["constrained_columns"], fk["referred_columns"], strict=True
            )
        }
        assert referenced == {c.name: c.foreign_key for c in table.columns if c.foreign_key}
        assert (comments[(schema, name)]["text"] or "") == table.comment


@needs_postgres
def test_postgresql_introspect_table_and_missing(pg_database, policy, statements):
    connector = pg(policy)
    one = connector.introspect_table("shop", "orders")
    assert without_size(one) == without_size(by_name(connector.introspect(PG_SHOP))["shop.orders"])
    assert connector.introspect_table("shop", 'Odd "Name" x').columns[0].name == "select"
    for schema, name in (("shop", "nope"), ("nope", "orders"), ("pg_catalog", "pg_class")):
        with pytest.raises(ConnectorError) as caught:
            connector.introspect_table(schema, name)
        assert caught.value.kind == "not_found"
        assert caught.value.message == f"table '{schema}.{name}' does not exist in postgresql"


@needs_postgres
def test_postgresql_sample_values(pg_database, policy, statements):
    connector = pg(policy)
    customers = connector.introspect_table("shop", "customers")
    statements.clear()
    values = connector.sample_values(customers, ["email", "name", "not_a_column"], 2)
    assert values == {"email": ["ada@example.com", "bob@example.com"], "name": ["Ada"]}
    sampled = [sql for sql, _ in statements if "FROM" in sql]
    assert sampled == ['SELECT "email", "name" FROM "shop"."customers" LIMIT 2']
    values = connector.sample_values(customers, ["name", "created_at"], 10)
    assert values["name"] == ["Ada", "N" * 200]
    assert len(values["created_at"]) == 3 and all(isinstance(v, str) for v in values["created_at"])
    odd = connector.introspect_table("shop", 'Odd "Name" x')
    assert connector.sample_values(odd, ["select", "Mixed Case"], 5) == {
        "select": ["drop table"],
        "Mixed Case": ["1"],
    }
    assert connector.sample_values(odd, ["select"], 0) == {"select": []}


@needs_postgres
def test_postgresql_permission_denied_is_auth(pg_database, policy):
    connector = pg(policy, username=NO_ACCESS_ROLE)
    customers = connector.introspect_table("shop", "customers")
    with pytest.raises(ConnectorError) as caught:
        connector.sample_values(customers, ["email"], 3)
    assert caught.value.kind == "auth"
    assert caught.value.message == "permission denied for schema shop"


# --- MariaDB (real server) ------------------------------------------------------------------

MY_SHOP, MY_SCRATCH = f"{MY_PREFIX}_shop", f"{MY_PREFIX}_scratch"
MY_FIVE, MY_FIFTY = f"{MY_PREFIX}_five", f"{MY_PREFIX}_fifty"
MY_SCHEMA = """
CREATE TABLE customers (
  id int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  email varchar(255) NOT NULL COMMENT 'Login and contact address',
  name text,
  vip tinyint(1) DEFAULT 0,
  created_at datetime NOT NULL DEFAULT current_timestamp()
) ENGINE=InnoDB COMMENT='People who buy things';
CREATE TABLE orders (
  id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
  customer_id int(11) NOT NULL,
  total decimal(10,2) NOT NULL DEFAULT 0.00,
  status enum('new','paid') DEFAULT 'new',
  placed_on date,
  FOREIGN KEY (customer_id) REFERENCES customers (id)
) ENGINE=InnoDB;
CREATE TABLE order_lines (
  order_id bigint NOT NULL,
  line_no smallint NOT NULL,
  sku char(8),
  qty int unsigned,
  PRIMARY KEY (order_id, line_no),
  FOREIGN KEY (order_id) REFERENCES orders (id)
) ENGINE=InnoDB;
CREATE TABLE empty_audit (at timestamp NULL, what varchar(20)) ENGINE=InnoDB;
CREATE VIEW big_spenders AS
  SELECT c.id, c.email, SUM(o.total) AS spent
  FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.id, c.email;
INSERT INTO customers (email, name) VALUES
  ('ada@example.com', 'Ada'), ('bob@example.com', NULL), ('eve@example.com', REPEAT('N', 500));
INSERT INTO orders (customer_id, total, placed_on) VALUES (1, 10.50, '2024-05-01'),
  (3, 99.00, '2024-05-02');
ANALYZE TABLE customers, orders, order_lines, empty_audit;
"""


@pytest.fixture(scope="module")
def mariadb_databases():
    conn = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    names = (MY_SHOP, MY_SCRATCH, MY_FIVE, MY_FIFTY)
    with conn.cursor() as cursor:
        for name in names:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cursor.execute(f"CREATE DATABASE `{name}`")
        cursor.execute(f"USE `{MY_SHOP}`")
        for statement in MY_SCHEMA.split(";"):
            if statement.strip():
                cursor.execute(statement)
                cursor.fetchall()
        cursor.execute(
            f"CREATE TABLE `{MY_SCRATCH}`.notes (customer_id int, body text, "
            f"FOREIGN KEY (customer_id) REFERENCES `{MY_SHOP}`.customers (id))"
        )
        for database, count in ((MY_FIVE, 5), (MY_FIFTY, 50)):
            for i in range(count):
                parent = f", parent_id int REFERENCES t{i - 1:02d} (id)" if i else ""
                cursor.execute(
                    f"CREATE TABLE `{database}`.t{i:02d} (id int PRIMARY KEY{parent}) "
                    f"COMMENT 'table {i}'"
                )
    yield names
    with conn.cursor() as cursor:
        for name in reversed(names):
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
    conn.close()


def mariadb(policy, database=""):
    spec = ConnectionSpec(kind="mysql", host="127.0.0.1", username="root", database=database)
    return get_connector(spec, policy)


@needs_mariadb
def test_mariadb_tables_columns_keys_and_comments(mariadb_databases, policy):
    calls = []
    rules = ScanRules(include_schemas=(MY_SHOP, MY_SCRATCH))
    tables = by_name(mariadb(policy).introspect(rules, lambda *call: calls.append(call)))
    assert sorted(tables) == [
        f"{MY_SCRATCH}.notes",
        f"{MY_SHOP}.big_spenders",
        f"{MY_SHOP}.customers",
        f"{MY_SHOP}.empty_audit",
        f"{MY_SHOP}.order_lines",
        f"{MY_SHOP}.orders",
    ]
    check_progress(calls, 6)
    customers = tables[f"{MY_SHOP}.customers"]
    assert customers.size_bytes > 0
    assert without_size(customers) == TableMeta(
        schema=MY_SHOP,
        name="customers",
        kind="table",
        comment="People who buy things",
        row_count=3,
        properties={"engine": "InnoDB"},
        columns=[
            C("id", 1, "integer", "int(11)", nullable=False, is_primary_key=True,
              default="auto_increment"),
            C("email", 2, "string", "varchar(255)", nullable=False,
              comment="Login and contact address"),
            C("name", 3, "text", "text"),
            C("vip", 4, "boolean", "tinyint(1)", default="0"),
            C("created_at", 5, "timestamp", "datetime", nullable=False,
              default="current_timestamp()"),
        ],
    )  # fmt: skip
    assert tables[f"{MY_SHOP}.orders"].columns == [
        C("id", 1, "integer", "bigint(20)", nullable=False, is_primary_key=True,
          default="auto_increment"),
        C("customer_id", 2, "integer", "int(11)", nullable=False,
          foreign_key=f"{MY_SHOP}.customers.id"),
        C("total", 3, "decimal", "decimal(10,2)", nullable=False, default="0.00"),
        C("status", 4, "string", "enum('new','paid')", default="'new'"),
        C("placed_on", 5, "date", "date"),
    ]  # fmt: skip
    assert tables[f"{MY_SHOP}.order_lines"].columns == [
        C("order_id", 1, "integer", "bigint(20)", nullable=False, is_primary_key=True,
          foreign_key=f"{MY_SHOP}.orders.id"),
        C("line_no", 2, "integer", "smallint(6)", nullable=False, is_primary_key=True),
        C("sku", 3, "string", "char(8)"),
        C("qty", 4, "integer", "int(10) unsigned"),
    ]  # fmt: skip
    assert tables[f"{MY_SCRATCH}.notes"].columns[0].foreign_key == f"{MY_SHOP}.customers.id"
    assert without_size(tables[f"{MY_SHOP}.empty_audit"]) == TableMeta(
        MY_SHOP,
        "empty_audit",
        "table",
        row_count=0,
        properties={"engine": "InnoDB"},
        columns=[C("at", 1, "timestamp", "timestamp"), C("what", 2, "string", "varchar(20)")],
    )
    view = tables[f"{MY_SHOP}.big_spenders"]
    assert (view.kind, view.comment, view.row_count, view.size_bytes) == ("view", "", None, None)
    assert view.view_definition.startswith("select `c`.`id` AS `id`,`c`.`email` AS `email`")
    assert f"join `{MY_SHOP}`.`orders` `o`" in view.view_definition
    assert [c.name for c in view.columns] == ["id", "email", "spent"]


@needs_mariadb
def test_mariadb_rules_and_views(mariadb_databases, policy, statements):
    connector = mariadb(policy)
    no_views = connector.introspect(ScanRules(include_schemas=(MY_SHOP,), include_views=False))
    assert {t.kind for t in no_views} == {"table"} and len(no_views) == 4
    statements.clear()
    some = connector.introspect(
        ScanRules(include_schemas=(f"{MY_PREFIX}_*",), exclude_schemas=(f"{MY_PREFIX}_f*",),
                  exclude_tables=("*.order*", "notes"))
    )  # fmt: skip
    assert {t.name for t in some} == {"customers", "empty_audit", "big_spenders"}
    details = [params for sql, params in statements if "TABLE_NAME IN" in sql]
    assert details and all(params[-3:] == ["big_spenders", "customers", "empty_audit"]
                           for params in details)  # fmt: skip


@needs_mariadb
def test_mariadb_query_count_does_not_grow_with_tables(mariadb_databases, policy, statements):
    five = mariadb(policy).introspect(ScanRules(include_schemas=(MY_FIVE,)))
    five_statements = len(statements)
    statements.clear()
    fifty = mariadb(policy).introspect(ScanRules(include_schemas=(MY_FIFTY,)))
    assert (len(five), len(fifty)) == (5, 50)
    assert len(statements) == five_statements == 4
    statements.clear()
    part = mariadb(policy).introspect(
        ScanRules(include_schemas=(MY_FIFTY,), include_tables=("t1*",))
    )
    assert len(part) == 10 and len(statements) == 4
    assert part[-1].column("parent_id").foreign_key == f"{MY_FIFTY}.t18.id"
    assert part[-1].comment == "table 19"


@needs_mariadb
def test_mariadb_introspect_table_sample_values_and_missing(mariadb_databases, policy, statements):
    connector = mariadb(policy)
    customers = connector.introspect_table(MY_SHOP, "customers")
    assert customers.comment == "People who buy things" and len(customers.columns) == 5
    listing, *details = statements
    assert listing[1] == (MY_SHOP, "customers")
    assert all("TABLE_NAME IN (%s)" in sql and params[-1] == "customers" for sql, params in details)
    values = connector.sample_values(customers, ["email", "name"], 2)
    assert values == {"email": ["ada@example.com", "bob@example.com"], "name": ["Ada"]}
    assert connector.sample_values(customers, ["name"], 5) == {"name": ["Ada", "N" * 200]}
    with pytest.raises(ConnectorError) as caught:
        connector.introspect_table(MY_SHOP, "nope")
    assert caught.value.kind == "not_found"
    assert caught.value.message == f"table '{MY_SHOP}.nope' does not exist in mysql"
    gone = TableMeta(MY_SHOP, "gone", "table", columns=[C("x", 1, "integer", "int")])
    with pytest.raises(ConnectorError) as caught:
        connector.sample_values(gone, ["x"], 1)
    assert caught.value.kind == "not_found"
    assert "doesn't exist" in caught.value.message


# --- SQLite (real files) --------------------------------------------------------------------

SQLITE_SCHEMA = """
CREATE TABLE customers (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  email VARCHAR(255) NOT NULL,
  name TEXT,
  vip BOOLEAN DEFAULT 0,
  created_at DATETIME DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE orders (
  id INTEGER PRIMARY KEY,
  customer_id INTEGER NOT NULL REFERENCES customers (id),
  total DECIMAL(10,2) DEFAULT 0,
  placed_on DATE
);
CREATE TABLE order_lines (
  order_id INTEGER REFERENCES orders,
  line_no INTEGER,
  sku CHAR(8),
  qty,
  PRIMARY KEY (order_id, line_no)
);
CREATE TABLE shipments (
  id BLOB PRIMARY KEY,
  order_id INT,
  line_no INT,
  FOREIGN KEY (order_id, line_no) REFERENCES order_lines (order_id, line_no)
) WITHOUT ROWID;
CREATE TABLE empty_audit (at TIMESTAMP, what TEXT);
CREATE VIEW big_spenders AS
  SELECT c.id, c.email, SUM(o.total) AS spent
  FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.id;
CREATE VIEW IF NOT EXISTS "odd ""view"" v" (a, b) AS SELECT 1, 'two';
INSERT INTO customers (email, name) VALUES ('ada@example.com', 'Ada'), ('bob@example.com', NULL),
  ('eve@example.com', replace(hex(zeroblob(250)), '0', 'N'));
"""


@pytest.fixture
def shop_db(tmp_path):
    with sqlite3.connect(tmp_path / "shop.db") as conn:
        conn.executescript(SQLITE_SCHEMA)
    conn.close()
    return "shop.db"


def sqlite(policy, database):
    return get_connector(ConnectionSpec(kind="sqlite", database=database), policy)


def test_sqlite_tables_columns_keys_and_views(shop_db, policy, statements):
    calls = []
    tables = by_name(sqlite(policy, shop_db).introspect(progress=lambda *c: calls.append(c)))
    assert len(statements) == 2
    check_progress(calls, 7)
    assert sorted(tables) == [
        "main.big_spenders",
        "main.customers",
        "main.empty_audit",
        'main.odd "view" v',
        "main.order_lines",
        "main.orders",
        "main.shipments",
    ]
    assert tables["main.customers"] == TableMeta(
        "main",
        "customers",
        "table",
        columns=[
            C("id", 1, "integer", "INTEGER", nullable=False, is_primary_key=True),
            C("email", 2, "string", "VARCHAR(255)", nullable=False),
            C("name", 3, "text", "TEXT"),
            C("vip", 4, "boolean", "BOOLEAN", default="0"),
            C("created_at", 5, "timestamp", "DATETIME", default="CURRENT_TIMESTAMP"),
        ],
    )
    assert tables["main.orders"].columns[1] == C(
        "customer_id", 2, "integer", "INTEGER", nullable=False, foreign_key="main.customers.id"
    )
    assert tables["main.order_lines"].columns == [
        C("order_id", 1, "integer", "INTEGER", nullable=False, is_primary_key=True,
          foreign_key="main.orders.id"),
        C("line_no", 2, "integer", "INTEGER", nullable=False, is_primary_key=True),
        C("sku", 3, "string", "CHAR(8)"),
        C("qty", 4, "other", ""),
    ]  # fmt: skip
    assert [c.foreign_key for c in tables["main.shipments"].columns] == [
        None,
        "main.order_lines.order_id",
        "main.order_lines.line_no",
    ]
    assert tables["main.empty_audit"].row_count is None
    view = tables["main.big_spenders"]
    assert view.kind == "view"
    assert view.view_definition == (
        "SELECT c.id, c.email, SUM(o.total) AS spent\n"
        "  FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.id"
    )
    assert [c.name for c in view.columns] == ["id", "email", "spent"]
    odd = tables['main.odd "view" v']
    assert odd.view_definition == "SELECT 1, 'two'"
    assert [c.name for c in odd.columns] == ["a", "b"]


def test_sqlite_query_count_is_constant_and_rules_apply(tmp_path, policy, statements):
    for count in (5, 50):
        with sqlite3.connect(tmp_path / f"t{count}.db") as conn:
            for i in range(count):
                parent = f", parent_id INTEGER REFERENCES t{i - 1:02d} (id)" if i else ""
                conn.execute(f"CREATE TABLE t{i:02d} (id INTEGER PRIMARY KEY{parent})")
        conn.close()
    counts = []
    for count in (5, 50):
        statements.clear()
        assert len(sqlite(policy, f"t{count}.db").introspect()) == count
        counts.append(len(statements))
    assert counts == [2, 2]
    statements.clear()
    chosen = sqlite(policy, "t50.db").introspect(
        ScanRules(include_tables=("t1*",), exclude_tables=("main.t19",))
    )
    assert [t.name for t in chosen] == [f"t1{i}" for i in range(9)]
    assert chosen[-1].column("parent_id").foreign_key == "main.t17.id"
    assert statements[-1][1] == ('["t10", "t11", "t12", "t13", "t14", "t15", "t16", "t17", "t18"]',)


def test_sqlite_include_views_false_and_schema_rules(shop_db, policy):
    tables = sqlite(policy, shop_db).introspect(ScanRules(include_views=False))
    assert {t.kind for t in tables} == {"table"} and len(tables) == 5
    assert sqlite(policy, shop_db).introspect(ScanRules(exclude_schemas=("MAIN",))) == []


def test_sqlite_introspect_table_and_sample_values(shop_db, policy, statements):
    connector = sqlite(policy, shop_db)
    customers = connector.introspect_table("main", "customers")
    assert [c.name for c in customers.columns] == ["id", "email", "name", "vip", "created_at"]
    for schema, name in (("main", "nope"), ("other", "customers"), ("main", "sqlite_sequence")):
        with pytest.raises(ConnectorError) as caught:
            connector.introspect_table(schema, name)
        assert caught.value.kind == "not_found"
        assert caught.value.message == f"table '{schema}.{name}' does not exist in sqlite"
    statements.clear()
    values = connector.sample_values(customers, ["name", "email"], 2)
    assert values == {"name": ["Ada"], "email": ["ada@example.com", "bob@example.com"]}
    assert statements == [('SELECT "name", "email" FROM "main"."customers" LIMIT 2', None)]
    assert connector.sample_values(customers, ["name"], 10) == {"name": ["Ada", "N" * 200]}
    odd = connector.introspect_table("main", 'odd "view" v')
    assert connector.sample_values(odd, ["b"], 3) == {"b": ["two"]}


# --- Oracle (FAKE connection answering the catalog queries) ---------------------------------


def oracle_error(message, code):
    error = oracle_errors._Error(message, code=code)
    return error.exc_type(error)


ORACLE_LISTING = [
    ("APP", "CUSTOMERS", "table", 3),
    ("APP", "ORDERS", "table", 2),
    ("APP", "BIG_SPENDERS", "view", None),
    ("APP", "DAILY_TOTALS", "materialized_view", 2),
    ("HR", "PEOPLE", "table", None),
]
ORACLE_COLUMNS = {
    "APP": [
        ("APP", "CUSTOMERS", "ID", 1, "NUMBER", 22, 0, 10, 0, "N", None, None),
        ("APP", "CUSTOMERS", "EMAIL", 2, "VARCHAR2", 255, 255, None, None, "N", None,
         "Login and contact address"),
        ("APP", "CUSTOMERS", "JOINED", 3, "DATE", 7, 0, None, None, "Y", "SYSDATE\n", None),
        ("APP", "ORDERS", "ID", 1, "NUMBER", 22, 0, None, 0, "N", None, None),
        ("APP", "ORDERS", "CUSTOMER_ID", 2, "NUMBER", 22, 0, 10, 0, "N", None, None),
        ("APP", "ORDERS", "TOTAL", 3, "NUMBER", 22, 0, 10, 2, "Y", "0 ", None),
        ("APP", "ORDERS", "NOTE", 4, "CLOB", 4000, 0, None, None, "Y", None, None),
        ("APP", "ORDERS", "PLACED_AT", 5, "TIMESTAMP(6) WITH TIME ZONE", 13, 0, None, 6, "Y",
         None, None),
        ("APP", "BIG_SPENDERS", "ID", 1, "NUMBER", 22, 0, 10, 0, "N", None, None),
        ("APP", "BIG_SPENDERS", "SPENT", 2, "NUMBER", 22, 0, None, None, "Y", None, None),
        ("APP", "DAILY_TOTALS", "DAY", 1, "DATE", 7, 0, None, None, "Y", None, None),
    ],
    "HR": [("HR", "PEOPLE", "NAME", 1, "NVARCHAR2", 200, 100, None, None, "Y", None, None)],
}  # fmt: skip
ORACLE_KEYS = {
    "APP": [
        ("APP", "CUSTOMERS", "ID", "p", None, None, None),
        ("APP", "ORDERS", "ID", "p", None, None, None),
        ("APP", "ORDERS", "CUSTOMER_ID", "r", "APP", "CUSTOMERS", "ID"),
    ],
    "HR": [],
}


ORACLE_VIEW = (
    "SELECT c.id, SUM(o.total) spent FROM customers c JOIN orders o ON o.customer_id = c.id "
    "GROUP BY c.id"
)
ORACLE_MVIEW = "SELECT TRUNC(placed_at) day FROM orders GROUP BY TRUNC(placed_at)\n"


def by_owner(rows):
    return lambda sql, params: [row for row in rows if row[0] == params["owner"]]


def oracle_answers(listing=ORACLE_LISTING):
    def listed(sql, params):
        return [row for row in listing if not params or row[:2] == tuple(params.values())]

    return [
        ("UNION ALL", listed),
        ("FROM all_tab_comments", by_owner([
            ("APP", "CUSTOMERS", "People who buy things"),
            ("APP", "BIG_SPENDERS", "Customers by money spent"),
        ])),
        ("FROM all_views WHERE", by_owner([("APP", "BIG_SPENDERS", ORACLE_VIEW)])),
        ("FROM all_mviews WHERE", by_owner([("APP", "DAILY_TOTALS", ORACLE_MVIEW)])),
        ("FROM all_tab_columns", lambda sql, params: ORACLE_COLUMNS[params["owner"]]),
        ("FROM all_constraints", lambda sql, params: ORACLE_KEYS[params["owner"]]),
        ("FETCH FIRST", [("ada@example.com", None), ("bob@example.com", "B" * 300)]),
    ]  # fmt: skip


@pytest.fixture
def fake_oracle(monkeypatch):
    """FAKE: oracledb.connect returns a FakeOracleConnection with the given answers."""

    def install(answers):
        conn = FakeOracleConnection(answers=answers)
        monkeypatch.setattr(oracledb, "connect", lambda **kwargs: conn)
        return conn

    return install


def oracle(policy):
    spec = ConnectionSpec(
        kind="oracle", host="127.0.0.1", database="FREEPDB1", username="u", password="p"
    )
    return get_connector(spec, policy)


def test_oracle_native_type_from_all_tab_columns_parts():
    assert native_type("NUMBER", 22, 0, 10, 2) == "NUMBER(10,2)"
    assert native_type("NUMBER", 22, 0, 10, 0) == "NUMBER(10)"
    assert native_type("NUMBER", 22, 0, None, 0) == "NUMBER(*,0)"
    assert native_type("NUMBER", 22, 0, None, None) == "NUMBER"
    assert native_type("FLOAT", 22, 0, 126, None) == "FLOAT(126)"
    assert native_type("VARCHAR2", 400, 100, None, None) == "VARCHAR2(100)"
    assert native_type("RAW", 16, 0, None, None) == "RAW(16)"
    assert native_type("TIMESTAMP(6)", 11, 0, None, 6) == "TIMESTAMP(6)"


def test_oracle_bulk_queries_map_to_metadata_with_fake(fake_oracle, policy):
    conn = fake_oracle(oracle_answers())
    calls = []
    tables = by_name(oracle(policy).introspect(progress=lambda *call: calls.append(call)))
    check_progress(calls, 5)
    assert sorted(tables) == [
        "APP.BIG_SPENDERS",
        "APP.CUSTOMERS",
        "APP.DAILY_TOTALS",
        "APP.ORDERS",
        "HR.PEOPLE",
    ]
    assert tables["APP.CUSTOMERS"] == TableMeta(
        "APP",
        "CUSTOMERS",
        "table",
        comment="People who buy things",
        row_count=3,
        columns=[
            C("ID", 1, "integer", "NUMBER(10)", nullable=False, is_primary_key=True),
            C("EMAIL", 2, "string", "VARCHAR2(255)", nullable=False,
              comment="Login and contact address"),
            C("JOINED", 3, "timestamp", "DATE", default="SYSDATE"),
        ],
    )  # fmt: skip
    assert tables["APP.ORDERS"].columns == [
        C("ID", 1, "integer", "NUMBER(*,0)", nullable=False, is_primary_key=True),
        C("CUSTOMER_ID", 2, "integer", "NUMBER(10)", nullable=False,
          foreign_key="APP.CUSTOMERS.ID"),
        C("TOTAL", 3, "decimal", "NUMBER(10,2)", default="0"),
        C("NOTE", 4, "text", "CLOB"),
        C("PLACED_AT", 5, "timestamp", "TIMESTAMP(6) WITH TIME ZONE"),
    ]  # fmt: skip
    view = tables["APP.BIG_SPENDERS"]
    assert (view.kind, view.comment) == ("view", "Customers by money spent")
    assert view.view_definition.startswith("SELECT c.id, SUM(o.total) spent FROM customers c")
    assert view.columns[1] == C("SPENT", 2, "decimal", "NUMBER")
    matview = tables["APP.DAILY_TOTALS"]
    assert (matview.kind, matview.row_count) == ("materialized_view", 2)
    assert (
        matview.view_definition
        == "SELECT TRUNC(placed_at) day FROM orders GROUP BY TRUNC(placed_at)"
    )
    assert tables["HR.PEOPLE"].columns == [C("NAME", 1, "string", "NVARCHAR2(100)")]
    listing, *details = conn.executed
    assert "oracle_maintained = 'N'" in listing[0] and listing[1] is None
    assert [(sql.split("FROM ")[1].split()[0], params) for sql, params in details] == [
        ("all_tab_comments", {"owner": "APP"}),
        ("all_views", {"owner": "APP"}),
        ("all_mviews", {"owner": "APP"}),
        ("all_tab_columns", {"owner": "APP"}),
        ("all_constraints", {"owner": "APP"}),
        ("all_tab_comments", {"owner": "HR"}),
        ("all_tab_columns", {"owner": "HR"}),
        ("all_constraints", {"owner": "HR"}),
    ]
    assert all(" IN ((" not in sql for sql, _ in details)
    assert conn.closed


def test_oracle_query_count_does_not_grow_with_tables_with_fake(fake_oracle, policy):
    counts = []
    for count in (5, 50):
        listing = [("APP", f"T{i:02d}", "table", 0) for i in range(count)]
        columns = [("APP", f"T{i:02d}", "ID", 1, "NUMBER", 22, 0, 9, 0, "N", None, None)
                   for i in range(count)]  # fmt: skip
        answers = oracle_answers(listing)
        answers[4] = ("FROM all_tab_columns", columns)
        conn = fake_oracle(answers)
        assert len(oracle(policy).introspect()) == count
        counts.append(len(conn.executed))
    assert counts == [4, 4]


def test_oracle_partial_schema_filters_names_in_sql_with_fake(fake_oracle, policy):
    conn = fake_oracle(oracle_answers())
    tables = oracle(policy).introspect(
        ScanRules(include_schemas=("app",), include_tables=("customers", "orders"))
    )
    assert [t.name for t in tables] == ["CUSTOMERS", "ORDERS"]
    for sql, params in conn.executed[1:]:
        assert params == {"owner": "APP", "n0": "CUSTOMERS", "n1": "ORDERS"}
        assert "table_name, 0) IN ((:n0, 0), (:n1, 0))" in sql
    assert len(conn.executed) == 4


def test_oracle_before_12c_excludes_system_owners_by_name_with_fake(fake_oracle, policy):
    invalid = oracle_error('ORA-00904: "ORACLE_MAINTAINED": invalid identifier', 904)
    conn = fake_oracle([("oracle_maintained", invalid), *oracle_answers()])
    assert len(oracle(policy).introspect(ScanRules(include_schemas=("HR",)))) == 1
    first, second = conn.executed[:2]
    assert "oracle_maintained" in first[0]
    assert "username NOT IN (" in second[0] and "'SYSTEM'" in second[0]


def test_oracle_introspect_table_sample_values_and_errors_with_fake(fake_oracle, policy):
    conn = fake_oracle(oracle_answers())
    connector = oracle(policy)
    customers = connector.introspect_table("APP", "CUSTOMERS")
    assert customers.comment == "People who buy things"
    assert conn.executed[0][1] == {"owner": "APP", "name": "CUSTOMERS"}
    assert [params for _, params in conn.executed[1:]] == [{"owner": "APP", "n0": "CUSTOMERS"}] * 3
    with pytest.raises(ConnectorError) as caught:
        connector.introspect_table("APP", "NOPE")
    assert caught.value.kind == "not_found"
    assert caught.value.message == "table 'APP.NOPE' does not exist in oracle"
    values = connector.sample_values(customers, ["EMAIL", "ID"], 2)
    assert values == {"EMAIL": ["ada@example.com", "bob@example.com"], "ID": ["B" * 200]}
    assert conn.executed[-1] == (
        'SELECT "EMAIL", "ID" FROM "APP"."CUSTOMERS" FETCH FIRST 2 ROWS ONLY',
        None,
    )
    for error, kind in (
        (oracle_error("ORA-00942: table or view does not exist", 942), "not_found"),
        (oracle_error("ORA-01031: insufficient privileges", 1031), "auth"),
    ):
        fake_oracle([("FETCH FIRST", error)])
        with pytest.raises(ConnectorError) as caught:
            connector.sample_values(customers, ["EMAIL"], 1)
        assert caught.value.kind == kind
        assert caught.value.message.startswith(str(error)[:9])


# --- MongoDB (FAKE client: mongomock) -------------------------------------------------------

MONGO_USERS = [
    {"_id": 1, "name": "Ada", "address": {"city": "London", "zip": "N1"}, "tags": ["a", "b"],
     "items": [{"sku": "X1", "qty": 2}], "age": 36},
    {"_id": 2, "name": "Bob", "address": {"city": "Paris"}, "tags": [],
     "items": [{"sku": "Y2", "qty": 1}, {"sku": "Z3"}], "age": "unknown"},
    {"_id": 3, "name": None, "age": 41, "score": 1.5},
    {"_id": 4, "name": "Eve", "age": 29},
]  # fmt: skip


@pytest.fixture
def mongo(monkeypatch, policy):
    """FAKE MongoDB server (mongomock, shared by every client) holding a small shop."""
    FakeMongoClient.reset()
    monkeypatch.setattr(MongoDBConnector, "client_class", FakeMongoClient)
    client = FakeMongoClient()
    client.shop.users.insert_many([dict(doc) for doc in MONGO_USERS])
    client.shop.create_collection("empty")
    client.shop.adults.insert_many([{"_id": 1, "name": "Ada"}])
    FakeMongoClient.views[("shop", "adults")] = {
        "viewOn": "users",
        "pipeline": [{"$match": {"age": {"$gte": 18}}}],
    }
    client.crm.leads.insert_one({"email": "lead@example.com"})

    def connector(database="shop"):
        spec = ConnectionSpec(kind="mongodb", host="127.0.0.1", database=database)
        return get_connector(spec, policy)

    return connector


def test_mongodb_infers_nested_fields_types_and_presence_with_fake(mongo):
    calls = []
    tables = by_name(mongo().introspect(progress=lambda *call: calls.append(call)))
    assert sorted(tables) == ["shop.adults", "shop.empty", "shop.users"]
    check_progress(calls, 3)
    assert tables["shop.users"] == TableMeta(
        "shop",
        "users",
        "collection",
        row_count=4,
        columns=[
            C("_id", 1, "integer", "int", nullable=False, is_primary_key=True, presence=1.0),
            C("address", 2, "object", "object", presence=0.5),
            C("address.city", 3, "string", "string", presence=0.5),
            C("address.zip", 4, "string", "string", presence=0.25),
            C("age", 5, "other", "int|string", nullable=False, presence=1.0),
            C("items", 6, "array", "array", presence=0.5),
            C("items.qty", 7, "integer", "int", presence=0.5),
            C("items.sku", 8, "string", "string", presence=0.5),
            C("name", 9, "string", "string", presence=1.0),
            C("score", 10, "float", "double", presence=0.25),
            C("tags", 11, "array", "array", presence=0.5),
        ],
    )
    assert tables["shop.empty"] == TableMeta("shop", "empty", "collection", row_count=0)
    view = tables["shop.adults"]
    assert (view.kind, view.row_count) == ("view", None)
    assert view.view_definition == (
        '{"viewOn": "users", "pipeline": [{"$match": {"age": {"$gte": 18}}}]}'
    )


def test_mongodb_rules_sample_size_and_max_fields_with_fake(mongo):
    connector = mongo(database="")
    tables = connector.introspect(ScanRules(include_views=False, exclude_tables=("empty",)))
    assert sorted(t.qualified_name for t in tables) == ["crm.leads", "shop.users"]
    assert [t.name for t in connector.introspect(ScanRules(exclude_schemas=("shop",)))] == ["leads"]
    one = mongo().introspect(ScanRules(include_tables=("users",), sample_size=1))[0]
    assert one.row_count == 4
    assert all(column.presence == 1.0 for column in one.columns)
    capped = mongo().introspect(ScanRules(include_tables=("users",), max_fields=2))[0]
    assert [c.name for c in capped.columns] == ["_id", "name"]
    assert capped.properties == {"fields_truncated": True}


def test_mongodb_mixed_types_that_normalise_alike_keep_their_type():
    columns, truncated = infer_fields([{"n": 1}, {"n": 2**40}, {"n": None}], 10)
    assert columns == [C("n", 1, "integer", "int|long", presence=1.0)]
    assert not truncated


def test_mongodb_introspect_table_and_sample_values_with_fake(mongo):
    connector = mongo()
    users = connector.introspect_table("shop", "users")
    assert len(users.columns) == 11
    for schema, name in (("shop", "nope"), ("crm", "leads")):
        with pytest.raises(ConnectorError) as caught:
            connector.introspect_table(schema, name)
        assert caught.value.kind == "not_found"
        assert caught.value.message == f"table '{schema}.{name}' does not exist in mongodb"
    values = connector.sample_values(users, ["address.city", "tags", "items.sku", "name"], 10)
    assert sorted(values["address.city"]) == ["London", "Paris"]
    assert sorted(values["tags"]) == ["a", "b"]
    assert sorted(values["items.sku"]) == ["X1", "Y2", "Z3"]
    assert sorted(values["name"]) == ["Ada", "Bob", "Eve"]
    few = connector.sample_values(users, ["items.sku", "_id"], 1)
    assert len(few["items.sku"]) <= 1 and len(few["_id"]) == 1


# --- Elasticsearch (FAKE server on loopback) ------------------------------------------------

ES_INDICES = {
    "customers": {
        "mappings": {
            "_meta": {"description": "People who buy things"},
            "properties": {
                "name": {"type": "text", "fields": {"keyword": {"type": "keyword"}}},
                "email": {"type": "keyword"},
                "address": {
                    "properties": {"city": {"type": "keyword"}, "geo": {"type": "geo_point"}}
                },
                "orders": {
                    "type": "nested",
                    "properties": {
                        "sku": {"type": "keyword"},
                        "total": {"type": "scaled_float", "scaling_factor": 100},
                    },
                },
                "signed_up": {"type": "date"},
                "vip": {"type": "boolean"},
                "visits": {"type": "long"},
            },
        },
        "aliases": ["people", "clients"],
        "size": 12345,
        "docs": [
            {
                "name": "Ada",
                "email": "ada@example.com",
                "address": {"city": "London"},
                "orders": [{"sku": "X1", "total": 10.5}, {"sku": "X2"}],
            },
            {"name": "Bob", "email": "bob@example.com", "orders": []},
        ],  # fmt: skip
    },
    "logs-2024": {"mappings": {"properties": {"message": {"type": "text"}}}, "docs": []},
    ".security": {"mappings": {"properties": {"secret": {"type": "keyword"}}}},
    "hidden-audit": {"mappings": {"properties": {"who": {"type": "keyword"}}}, "hidden": True},
}


@pytest.fixture
def es(policy):
    with FakeElasticsearch(username="elastic", password="pw", indices=ES_INDICES) as server:

        def connector(database=""):
            spec = ConnectionSpec(
                kind="elasticsearch",
                host="127.0.0.1",
                port=server.port,
                username="elastic",
                password="pw",
                database=database,
            )
            return get_connector(spec, policy)

        connector.server = server
        yield connector


def test_elasticsearch_flattens_mappings_with_fake_server(es):
    calls = []
    tables = by_name(es().introspect(progress=lambda *call: calls.append(call)))
    assert sorted(tables) == ["customers", "logs-2024"]
    check_progress(calls, 2)
    assert tables["customers"] == TableMeta(
        schema="",
        name="customers",
        kind="index",
        comment="People who buy things",
        row_count=2,
        size_bytes=12345,
        properties={"aliases": ["clients", "people"]},
        columns=[
            C("name", 1, "text", "text"),
            C("name.keyword", 2, "string", "keyword"),
            C("email", 3, "string", "keyword"),
            C("address", 4, "object", "object"),
            C("address.city", 5, "string", "keyword"),
            C("address.geo", 6, "geometry", "geo_point"),
            C("orders", 7, "array", "nested"),
            C("orders.sku", 8, "string", "keyword"),
            C("orders.total", 9, "float", "scaled_float"),
            C("signed_up", 10, "timestamp", "date"),
            C("vip", 11, "boolean", "boolean"),
            C("visits", 12, "integer", "long"),
        ],
    )
    assert es.server.paths() == ["/*/_mapping", "/*/_alias", "/_cat/indices/*"]


def test_elasticsearch_pattern_rules_and_max_fields_with_fake_server(es):
    assert [t.name for t in es("logs-*").introspect()] == ["logs-2024"]
    assert [t.name for t in es().introspect(ScanRules(exclude_tables=("logs-*",)))] == ["customers"]
    assert es().introspect(ScanRules(include_tables=("nothing*",))) == []
    capped = es().introspect(ScanRules(include_tables=("customers",), max_fields=4))[0]
    assert [c.name for c in capped.columns] == ["name", "name.keyword", "email", "address"]
    assert capped.properties["fields_truncated"] is True


def test_elasticsearch_introspect_table_and_sample_values_with_fake_server(es):
    connector = es()
    customers = connector.introspect_table("", "customers")
    assert len(customers.columns) == 12 and customers.properties["aliases"] == ["clients", "people"]
    for database, name in (("", "nope"), ("", "logs-*"), ("logs-*", "customers")):
        with pytest.raises(ConnectorError) as caught:
            es(database).introspect_table("", name)
        assert caught.value.kind == "not_found"
        assert caught.value.message == f"table '{name}' does not exist in elasticsearch"
    values = connector.sample_values(customers, ["name.keyword", "orders.sku", "address.city"], 5)
    assert values == {
        "name.keyword": ["Ada", "Bob"],
        "orders.sku": ["X1", "X2"],
        "address.city": ["London"],
    }
    search = es.server.requests[-1]
    assert search["path"].startswith("/customers/_search")
    assert search["body"]["size"] == 5
    assert connector.sample_values(customers, ["orders.sku"], 1) == {"orders.sku": ["X1"]}


def test_elasticsearch_auth_failure_with_fake_server(es, policy):
    spec = ConnectionSpec(
        kind="elasticsearch", host="127.0.0.1", port=es.server.port, username="elastic",
        password="wrong",
    )  # fmt: skip
    with pytest.raises(ConnectorError) as caught:
        get_connector(spec, policy).introspect()
    assert caught.value.kind == "auth"
    assert caught.value.message.startswith("HTTP 401")


# --- integration: real servers named by environment variables -----------------------------


def check_catalog(tables):
    for table in tables:
        assert table.name and table.kind in ("table", "view", "materialized_view", "collection",
                                             "index")  # fmt: skip
        assert [c.position for c in table.columns] == list(range(1, len(table.columns) + 1))
        assert all(c.data_type in DATA_TYPES for c in table.columns)


def run_integration(kind, variable):
    spec = spec_from_url(kind, os.environ[variable])
    connector = get_connector(spec, NetworkPolicy(allow=(spec.host,), connect_timeout=10))
    tables = connector.introspect(ScanRules(sample_size=100))
    check_catalog(tables)
    if tables:
        first = connector.introspect_table(tables[0].schema, tables[0].name)
        assert [c.name for c in first.columns] == [c.name for c in tables[0].columns]
        names = [c.name for c in first.columns[:3]]
        sample = connector.sample_values(first, names, 3)
        assert all(len(values) <= 3 for values in sample.values())
    with pytest.raises(ConnectorError) as caught:
        connector.introspect_table("steward_no_such_schema", "steward_no_such_table")
    assert caught.value.kind == "not_found"


@pytest.mark.integration
@pytest.mark.skipif(
    not os.environ.get("MONGO_URL"), reason="set MONGO_URL=mongodb://user:pass@host:27017/db"
)
def test_mongodb_introspection_integration():
    run_integration("mongodb", "MONGO_URL")


@pytest.mark.integration
@pytest.mark.skipif(
    not os.environ.get("ELASTICSEARCH_URL"),
    reason="set ELASTICSEARCH_URL=http(s)://user:pass@host:9200",
)
def test_elasticsearch_introspection_integration():
    run_integration("elasticsearch", "ELASTICSEARCH_URL")


@pytest.mark.integration
@pytest.mark.skipif(
    not os.environ.get("ORACLE_DSN"), reason="set ORACLE_DSN=oracle://user:pass@host:1521/service"
)
def test_oracle_introspection_integration():
    run_integration("oracle", "ORACLE_DSN")
