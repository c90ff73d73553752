"""Evidence text never names a table its reader may not see: the tables a SQL statement or
a view definition names are recorded with the evidence, and every place that shows the
evidence (API list, detail and pending queue, the admin's edge page, the table page)
replaces the names of those the reader may not view."""

import importlib

import pytest
from django.apps import apps

from catalog.models import Field, Table
from governance.services import grant
from governance.testing import client_for, make_user
from lineage import inference
from lineage.models import LineageEdge, LineageEvidence, Origin
from lineage.services import EdgeSpec, Evidence, record_edges
from sources.models import DataSource

HIDDEN = "[hidden table]"  # lineage.selectors.HIDDEN

SQL = (
    "INSERT INTO report (id, amount) SELECT o.id, p.amount FROM orders o "
    "JOIN payroll p ON p.id = o.id -- payroll is the secret part"
)


def make_table(source, name, **extra):
    table = Table.objects.create(source=source, schema="main", name=name, **extra)
    for position, column in enumerate(("id", "amount"), 1):
        Field.objects.create(table=table, name=column, position=position)
    return table


@pytest.fixture
def world(db):
    """shop: orders, report; hr: payroll. One statement feeds report from orders and
    payroll, applied by someone who sees both."""
    shop = DataSource.objects.create(name="shop", kind="sqlite", database="shop.db")
    hr = DataSource.objects.create(name="hr", kind="sqlite", database="hr.db")
    tables = {n: make_table(shop, n) for n in ("orders", "report")}
    tables["payroll"] = make_table(hr, "payroll")
    inference.infer(SQL, "sqlite", apply=True, user=make_user("root", superuser=True))
    edge = LineageEdge.objects.get(upstream=tables["orders"])
    return {"shop": shop, "hr": hr, "edge": edge, **tables}


@pytest.fixture
def reader(world):
    """May view shop (both ends of orders -> report), not hr."""
    user = make_user("rita", staff=True)
    grant(world["shop"], user, "viewer")
    return user


def evidence_of(body):
    (evidence,) = [e for e in body["evidence"] if e["kind"] == "sql"]
    return evidence


def test_the_evidence_records_the_tables_its_text_names(world):
    evidence = world["edge"].evidence.get()
    assert sorted(name for _, name in evidence.tables) == ["orders", "payroll", "report"]
    assert {pk for pk, _ in evidence.tables} == {
        world[n].pk for n in ("orders", "payroll", "report")
    }


def test_the_api_redacts_hidden_names_in_list_detail_and_pending(world, reader):
    client = client_for(reader)
    answers = [
        client.get(f"/api/v1/lineage/{world['edge'].pk}/").json(),
        *client.get("/api/v1/lineage/").json()["results"],
        *client.get("/api/v1/lineage/pending").json()["results"],
    ]
    assert len(answers) == 3  # the payroll -> report edge itself is not listed
    for body in answers:
        evidence = evidence_of(body)
        assert "payroll" not in str(body).lower()
        assert evidence["snippet"].count(HIDDEN) == 2  # the join and the comment
        assert "FROM orders AS o" in evidence["snippet"] and "report" in evidence["snippet"]
        # The hash (also the key of SQL evidence) would let a guessed name be checked.
        assert evidence["sql_hash"] == evidence["key"] == ""


def test_a_reader_who_may_view_every_table_reads_the_whole_text(world, reader):
    grant(world["hr"], reader, "viewer")
    evidence = evidence_of(client_for(reader).get(f"/api/v1/lineage/{world['edge'].pk}/").json())
    assert "JOIN payroll AS p" in evidence["snippet"]
    assert len(evidence["sql_hash"]) == 64 and evidence["key"] == evidence["sql_hash"]


def test_the_admin_edge_page_and_table_page_redact_hidden_names(world, reader, client):
    client.force_login(reader)
    for url in (
        f"/admin/lineage/lineageedge/{world['edge'].pk}/change/",
        f"/admin/catalog/table/{world['report'].pk}/change/",
    ):
        page = client.get(url).content.decode()
        assert HIDDEN in page, url
        assert "payroll" not in page.lower(), url


def test_a_name_the_author_could_not_see_is_still_recorded_and_redacted(world, reader):
    """The author sees shop only: payroll does not resolve for them, so it feeds nothing,
    but their text still names it and its readers must not see it."""
    author = make_user("sam")
    grant(world["shop"], author, "steward")
    sql = (
        "INSERT INTO orders SELECT r.id, r.amount FROM report r "
        "WHERE r.id NOT IN (SELECT id FROM payroll)"
    )
    inference.infer(sql, "sqlite", apply=True, user=author)
    edge = LineageEdge.objects.get(upstream=world["report"], downstream=world["orders"])
    assert world["payroll"].pk in {pk for pk, _ in edge.evidence.get().tables}
    body = client_for(reader).get(f"/api/v1/lineage/{edge.pk}/").json()
    assert "payroll" not in str(body).lower() and HIDDEN in evidence_of(body)["snippet"]


def test_view_evidence_records_the_view_and_what_it_reads_now(world):
    view = make_table(
        world["shop"],
        "summary",
        kind="view",
        view_definition="SELECT o.id, r.amount FROM orders o JOIN report r ON r.id = o.id",
    )
    inference.infer_views(world["shop"], [view])
    names = {
        tuple(sorted(n for _, n in ev.tables)) for ev in LineageEvidence.objects.filter(view=view)
    }
    assert names == {("orders", "report", "summary")}
    view.view_definition = "SELECT o.id, o.amount FROM orders o"
    view.save()
    inference.infer_views(world["shop"], [view])
    (evidence,) = LineageEvidence.objects.filter(view=view)
    assert sorted(n for _, n in evidence.tables) == ["orders", "summary"]


@pytest.mark.parametrize(
    ("text", "expected"),  # "#": where the redacted name goes
    [
        ("SELECT * FROM payroll", "SELECT * FROM #"),
        ('select * from "hr"."main"."PayRoll" p', "select * from # p"),
        ("select `payroll`.id from hr.`payroll`", "select #.id from #"),
        ("select 1 -- from [payroll]", "select 1 -- from #"),
        ("select * from payroll_summary, my_payroll", "select * from payroll_summary, my_payroll"),
    ],
)
def test_redact_replaces_every_way_sql_writes_a_name(text, expected):
    from lineage.selectors import HIDDEN, redact

    assert redact(text, {"payroll"}) == expected.replace("#", HIDDEN)


def test_the_migration_names_the_tables_of_evidence_recorded_before(world):
    """Evidence from before LineageEvidence.tables: its edges' tables (and its view)."""
    view = make_table(world["shop"], "summary", kind="view")
    spec = EdgeSpec(world["orders"], view, Evidence(kind="view", key=str(view.pk), view=view))
    record_edges([spec], origin=Origin.INFERRED)
    LineageEvidence.objects.update(tables=[])
    migration = importlib.import_module("lineage.migrations.0003_evidence_tables_named")
    migration.name_the_tables(apps, None)
    by_kind = {ev.kind: sorted(n for _, n in ev.tables) for ev in LineageEvidence.objects.all()}
    # The statement supports two edges: it names their three tables.
    assert by_kind == {"sql": ["orders", "payroll", "report"], "view": ["orders", "summary"]}
