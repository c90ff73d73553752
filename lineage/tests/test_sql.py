"""lineage.sql: tables and columns read and written, per construct and per dialect."""

import pytest

from lineage.sql import DIALECTS, SqlError, analyze, dialect_name, parse, referenced_tables


def lineage(sql, dialect="postgres", default_schema="public", schema=None, target=None):
    return analyze(sql, dialect, default_schema, schema, target=target).as_dict()


def columns(answer):
    return {c["target"]: set(c["sources"]) for c in answer["columns"]}


def test_insert_select_with_join_and_aliases():
    answer = lineage(
        "INSERT INTO dw.fact_sales (order_id, customer_email, amount) "
        "SELECT o.id, c.email, o.total * 1.2 FROM orders o JOIN customers c ON c.id = o.cid"
    )
    assert answer["sources"] == ["public.customers", "public.orders"]
    assert answer["targets"] == ["dw.fact_sales"]
    assert columns(answer) == {
        "dw.fact_sales.order_id": {"public.orders.id"},
        "dw.fact_sales.customer_email": {"public.customers.email"},
        "dw.fact_sales.amount": {"public.orders.total"},
    }
    by_target = {c["target"]: c["transformation"] for c in answer["columns"]}
    assert by_target["dw.fact_sales.order_id"] == ""  # a plain copy
    assert by_target["dw.fact_sales.amount"] == "o.total * 1.2"


def test_ctes_and_subqueries_are_followed_to_physical_columns():
    answer = lineage("""
        CREATE TABLE mart.customer_value AS
        WITH paid AS (SELECT customer_id, SUM(amount) AS revenue FROM payments GROUP BY 1),
             active AS (SELECT id, name FROM (SELECT id, name, status FROM customers) x
                        WHERE status = 'active')
        SELECT a.id AS customer_id, a.name, p.revenue
        FROM active a LEFT JOIN paid p ON p.customer_id = a.id
    """)
    assert answer["sources"] == ["public.customers", "public.payments"]
    assert columns(answer) == {
        "mart.customer_value.customer_id": {"public.customers.id"},
        "mart.customer_value.name": {"public.customers.name"},
        "mart.customer_value.revenue": {"public.payments.amount"},
    }
    revenue = next(c for c in answer["columns"] if c["target"].endswith("revenue"))
    assert revenue["transformation"] == "SUM(amount)"


def test_union_merges_branches_positionally():
    answer = lineage(
        "CREATE VIEW all_people AS SELECT id, email FROM customers "
        "UNION ALL SELECT staff_id, mail FROM hr.staff"
    )
    assert answer["sources"] == ["hr.staff", "public.customers"]
    assert columns(answer) == {
        "public.all_people.id": {"public.customers.id", "hr.staff.staff_id"},
        "public.all_people.email": {"public.customers.email", "hr.staff.mail"},
    }


def test_select_star_expands_from_the_schema_mapping():
    schema = {"public.orders": ["id", "total"], "public.customers": ["id", "email"]}
    answer = lineage(
        "CREATE VIEW v AS SELECT o.*, c.email FROM orders o JOIN customers c ON c.id = o.id",
        schema=schema,
    )
    assert columns(answer) == {
        "public.v.id": {"public.orders.id"},
        "public.v.total": {"public.orders.total"},
        "public.v.email": {"public.customers.email"},
    }
    # Without the mapping, the star is reported rather than guessed.
    answer = lineage("CREATE VIEW v AS SELECT * FROM orders")
    assert answer["unresolved"] == ["public.orders.*"] and answer["columns"] == []


def test_unqualified_columns_are_placed_by_the_schema_or_reported():
    sql = "INSERT INTO t (a, b) SELECT total, email FROM orders JOIN customers USING (id)"
    assert set(lineage(sql)["unresolved"]) == {"total", "email"}
    schema = {"orders": ["id", "total"], "customers": ["id", "email"]}
    assert columns(lineage(sql, schema=schema)) == {
        "public.t.a": {"public.orders.total"},
        "public.t.b": {"public.customers.email"},
    }


def test_insert_without_column_list_fills_the_table_in_order():
    answer = lineage(
        "INSERT INTO archive SELECT id, created FROM events",
        schema={"public.archive": ["event_id", "created_at"]},
    )
    assert columns(answer) == {
        "public.archive.event_id": {"public.events.id"},
        "public.archive.created_at": {"public.events.created"},
    }


def test_update_from_reads_the_joined_tables():
    answer = lineage(
        "UPDATE accounts a SET balance = a.balance + t.amount, updated = now() "
        "FROM transfers t WHERE t.account_id = a.id"
    )
    assert answer["targets"] == ["public.accounts"]
    assert answer["sources"] == ["public.transfers"]
    assert columns(answer) == {
        "public.accounts.balance": {"public.accounts.balance", "public.transfers.amount"},
        "public.accounts.updated": set(),
    }


def test_mysql_multi_table_update():
    answer = lineage(
        "UPDATE orders o JOIN customers c ON c.id = o.customer_id SET o.email = c.Email",
        dialect="mysql",
        default_schema="shop",
    )
    assert answer["targets"] == ["shop.orders"] and answer["sources"] == ["shop.customers"]
    # MySQL keeps names as written.
    assert columns(answer) == {"shop.orders.email": {"shop.customers.Email"}}


def test_merge_update_and_insert_branches():
    answer = lineage("""
        MERGE INTO dim_customer d
        USING (SELECT id, email, name FROM staging.customers) s ON d.id = s.id
        WHEN MATCHED THEN UPDATE SET email = s.email
        WHEN NOT MATCHED THEN INSERT (id, email, name) VALUES (s.id, s.email, upper(s.name))
    """)
    assert answer["sources"] == ["staging.customers"]
    assert answer["targets"] == ["public.dim_customer"]
    assert columns(answer) == {
        "public.dim_customer.id": {"staging.customers.id"},
        "public.dim_customer.email": {"staging.customers.email"},
        "public.dim_customer.name": {"staging.customers.name"},
    }


def test_oracle_folds_unquoted_names_to_upper_case():
    answer = lineage(
        'CREATE TABLE sales.x AS SELECT e.name, "MixedCase" FROM emp e',
        dialect="oracle",
        default_schema="HR",
    )
    assert answer["targets"] == ["SALES.X"]
    assert answer["sources"] == ["HR.EMP"]
    assert columns(answer) == {
        "SALES.X.NAME": {"HR.EMP.NAME"},
        "SALES.X.MixedCase": {"HR.EMP.MixedCase"},
    }


def test_postgres_folds_to_lower_and_keeps_quoted_names():
    answer = lineage('CREATE VIEW Reports."Daily" AS SELECT "Id", Amount FROM Sales')
    assert answer["targets"] == ["reports.Daily"]
    assert columns(answer) == {
        "reports.Daily.Id": {"public.sales.Id"},
        "reports.Daily.amount": {"public.sales.amount"},
    }


def test_sqlite_and_ansi_dialects():
    answer = lineage(
        "INSERT INTO Log SELECT Id FROM Events", dialect="sqlite", default_schema="main"
    )
    assert answer["targets"] == ["main.log"] and answer["sources"] == ["main.events"]
    answer = lineage("INSERT INTO t SELECT a FROM s", dialect="ansi", default_schema="")
    assert columns(answer) == {"t.a": {"s.a"}}


def test_bare_query_with_a_target_is_a_view_definition():
    # What a connector stores for a view: its SELECT alone, PostgreSQL-deparsed.
    definition = (
        " SELECT o.id,\n    c.email\n   FROM (orders o\n     JOIN customers c ON "
        "((c.id = o.customer_id)))\n  WHERE (o.total > (100)::numeric);"
    )
    answer = lineage(definition, target="public.big_orders")
    assert answer["targets"] == ["public.big_orders"]
    assert columns(answer) == {
        "public.big_orders.id": {"public.orders.id"},
        "public.big_orders.email": {"public.customers.email"},
    }


def test_scalar_subquery_gives_its_output_not_its_filter():
    answer = lineage(
        "CREATE VIEW v AS SELECT t.id, (SELECT max(s.x) FROM s WHERE s.id = t.id) AS mx FROM t"
    )
    assert columns(answer)["public.v.mx"] == {"public.s.x"}
    assert answer["sources"] == ["public.s", "public.t"]


def test_recursive_cte_terminates():
    answer = lineage(
        "WITH RECURSIVE r AS (SELECT id, parent FROM tree UNION ALL "
        "SELECT t.id, r.parent FROM tree t JOIN r ON r.id = t.parent) "
        "INSERT INTO flat SELECT id, parent FROM r"
    )
    assert columns(answer) == {
        "public.flat.id": {"public.tree.id"},
        "public.flat.parent": {"public.tree.parent"},
    }


def test_several_statements_and_skipped_ones():
    answer = lineage(
        "CREATE TABLE a AS SELECT x FROM b; DELETE FROM c WHERE 1 = 1; "
        "INSERT INTO d SELECT x FROM a;"
    )
    assert answer["statements"] == 3
    assert answer["targets"] == ["public.a", "public.d"]
    assert answer["sources"] == ["public.a", "public.b"]
    assert len(answer["skipped"]) == 1 and answer["skipped"][0].startswith("DELETE")


def test_referenced_tables_leave_ctes_out():
    statements = parse("WITH c AS (SELECT 1 FROM x.a) SELECT * FROM c JOIN b ON true", "postgres")
    assert referenced_tables(statements, "public") == {"x.a", "public.b"}


@pytest.mark.parametrize(
    "sql,line,col",
    [("SELECT a FROM (", 1, 15), ("SELECT 1;\nSELEC 2", 2, 7), ("SELECT 'abc", None, None)],
)
def test_unparseable_sql_raises_with_position(sql, line, col):
    with pytest.raises(SqlError) as caught:
        parse(sql, "postgres")
    assert caught.value.message
    if line is not None:
        assert (caught.value.line, caught.value.col) == (line, col)


def test_dialects():
    assert {"ansi", "postgres", "mysql", "oracle", "sqlite"} <= set(DIALECTS)
    assert dialect_name("ANSI") == "" and dialect_name("Postgres") == "postgres"
    with pytest.raises(ValueError, match="allowed: ansi"):
        dialect_name("cobol")


def test_the_lineage_test_set_meets_its_floor():
    from lineage.tests.sql_cases import load_cases, score

    cases = load_cases()
    assert len(cases) >= 40
    figures, misses = score(cases)
    # bench/lineage_sql.py prints these figures; the floor sits a little under them.
    assert figures["tables"]["f1"] >= 0.95, misses
    assert figures["columns"]["f1"] >= 0.95, misses
    assert figures["tables"]["precision"] >= 0.98 and figures["columns"]["precision"] >= 0.98
