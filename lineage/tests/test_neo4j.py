"""The optional Neo4j projection.

Neo4j cannot run here: the unit tests use FakeCypherRunner, a labelled fake that records the
Cypher statements and parameters the projection sends and answers scripted rows. The
integration tests at the end run against a real server only when NEO4J_BOLT_URL is set.
"""

import os

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

import lineage.signals  # noqa: F401  (the post_delete receivers, as the app connects them)
from catalog.models import Field, Table
from governance.models import JobRun
from lineage import graph, neo4j, tasks
from lineage.models import LineageEdge, Origin, Status
from lineage.services import EdgeSpec, Evidence, decide, record_edges
from sources.models import DataSource

NEO4J_URL = os.environ.get("NEO4J_BOLT_URL", "")


class FakeCypherRunner:
    """FAKE Neo4j: records (query, params) and answers `rows_for(query, params)`."""

    url = "bolt://fake"

    def __init__(self, rows_for=None):
        self.calls = []
        self.rows_for = rows_for or (lambda query, params: [])

    def run(self, query, params=None):
        self.calls.append((query, params or {}))
        return self.rows_for(query, params or {})

    def transaction(self):
        fake = self

        class Transaction:
            def __enter__(self):
                fake.calls.append(("BEGIN", {}))

            def __exit__(self, *exc):
                fake.calls.append(("COMMIT" if exc[0] is None else "ROLLBACK", {}))

        return Transaction()

    def install_schema(self):
        self.calls.append(("INSTALL SCHEMA", {}))

    def sent(self, statement):
        return [params for query, params in self.calls if query == statement]


@pytest.fixture
def fake(monkeypatch, settings):
    settings.NEO4J_BOLT_URL = "bolt://neo4j:secret@neo4j.example:7687"
    runner = FakeCypherRunner()
    monkeypatch.setattr(neo4j, "runner", lambda: runner)
    return runner


@pytest.fixture
def unset(monkeypatch, settings):
    settings.NEO4J_BOLT_URL = ""
    monkeypatch.delenv("NEO4J_BOLT_URL", raising=False)


@pytest.fixture
def world(db):
    src = DataSource.objects.create(name="shop", kind="sqlite", database="shop.db")
    a, b, c = (Table.objects.create(source=src, schema="main", name=n) for n in "abc")
    fa = Field.objects.create(table=a, name="amount")
    fb = Field.objects.create(table=b, name="total")
    return {"a": a, "b": b, "c": c, "fa": fa, "fb": fb}


def spec(up, down, fields=()):
    return EdgeSpec(up, down, Evidence(kind="sql", key=f"{up.pk}-{down.pk}"), fields=list(fields))


def inferred(*specs):
    return record_edges(list(specs), origin=Origin.INFERRED)[0]


def test_partial_sync_sends_tables_edges_and_field_edges_in_one_transaction(world, unset, fake):
    (ab,) = inferred(spec(world["a"], world["b"], [(world["fa"], world["fb"], "sum(amount)")]))
    counts = neo4j.sync(edge_ids=[ab.pk])
    assert counts == {"tables": 2, "edges": 1, "field_edges": 1, "removed_tables": 0}
    assert fake.calls[0][0] == "BEGIN" and fake.calls[-1][0] == "COMMIT"
    assert fake.sent(neo4j.DELETE_EDGES) == [{"ids": [ab.pk]}]
    (tables,) = fake.sent(neo4j.UPSERT_TABLES)
    assert {row["id"]: row["fqn"] for row in tables["rows"]} == {
        world["a"].pk: "shop.main.a",
        world["b"].pk: "shop.main.b",
    }
    (edges,) = fake.sent(neo4j.MERGE_EDGES)
    assert edges["rows"] == [
        {
            "id": ab.pk,
            "upstream": world["a"].pk,
            "downstream": world["b"].pk,
            "origin": "inferred",
            "status": "pending",
            "confidence": 1.0,
        }
    ]
    (fields,) = fake.sent(neo4j.MERGE_FIELD_EDGES)
    row = fields["rows"][0]
    assert (row["edge"], row["upstream"], row["downstream"], row["status"]) == (
        ab.pk,
        world["fa"].pk,
        world["fb"].pk,
        "pending",
    )
    assert (row["transformation"], row["upstream_table"]) == ("sum(amount)", world["a"].pk)
    assert edges["synced"] == tables["synced"] == fields["synced"] > 0


def test_a_deleted_edge_is_only_removed(world, unset, fake):
    (ab,) = inferred(spec(world["a"], world["b"]))
    edge_id = ab.pk
    ab.delete()
    neo4j.sync(edge_ids=[edge_id], table_ids=[world["c"].pk])
    assert [q for q, _ in fake.calls] == [
        "BEGIN",
        neo4j.DELETE_TABLES,
        neo4j.DELETE_EDGES,
        "COMMIT",
    ]
    assert fake.sent(neo4j.DELETE_TABLES) == [{"ids": [world["c"].pk]}]


def test_rebuild_installs_the_schema_writes_in_batches_and_sweeps(world, unset, fake, monkeypatch):
    monkeypatch.setattr(neo4j, "BATCH", 2)
    inferred(
        spec(world["a"], world["b"]), spec(world["b"], world["c"]), spec(world["c"], world["a"])
    )
    seen = []
    counts = neo4j.sync(progress=lambda percent, message: seen.append(percent))
    assert counts == {"tables": 3, "edges": 3, "field_edges": 0}
    queries = [q for q, _ in fake.calls]
    assert queries[0] == "INSTALL SCHEMA"
    assert queries.count(neo4j.UPSERT_TABLES) == 2 and queries.count(neo4j.MERGE_EDGES) == 2
    assert queries[-2:] == [neo4j.SWEEP_RELATIONSHIPS, neo4j.SWEEP_NODES]
    started = fake.sent(neo4j.SWEEP_NODES)[0]["started"]
    assert {p["synced"] for p in fake.sent(neo4j.MERGE_EDGES)} == {started}
    assert seen == sorted(seen) and seen[-1] == 100


@pytest.mark.parametrize(
    ("direction", "pattern"),
    [
        ("upstream", "(root)<-[:LINEAGE*0..2]-(near:Table)"),
        ("downstream", "(root)-[:LINEAGE*0..2]->(near:Table)"),
    ],
)
def test_edge_levels_query_and_parameters(unset, fake, direction, pattern):
    fake.rows_for = lambda query, params: [[11, 1], [12, 3]]
    levels = neo4j.edge_levels(7, direction, 3, ("approved", "pending"))
    assert levels == {11: 1, 12: 3}
    ((query, params),) = fake.calls
    assert pattern in query
    assert params == {"root": 7, "statuses": ["approved", "pending"]}
    assert "r.status IN $statuses" in query and "e.status IN $statuses" in query


def test_edge_levels_depth_one_looks_only_at_the_root(unset, fake):
    neo4j.edge_levels(7, "downstream", 1, ("approved",))
    assert "[:LINEAGE*0..0]" in fake.calls[0][0]


@pytest.mark.parametrize(("direction", "depth"), [("up", 3), ("upstream", 0), ("upstream", 11)])
def test_edge_levels_refuses_what_it_cannot_bound(unset, fake, direction, depth):
    with pytest.raises(ValueError):
        neo4j.edge_levels(7, direction, depth, ("approved",))
    assert fake.calls == []


def test_the_graph_backend_setting_asks_neo4j(world, unset, fake, settings):
    settings.LINEAGE_GRAPH_BACKEND = "neo4j"
    fake.rows_for = lambda query, params: [[99, 1]]
    assert graph.edge_levels(world["a"].pk, "downstream", 2) == {99: 1}
    assert fake.calls[0][1]["root"] == world["a"].pk


def test_writes_schedule_a_sync_after_commit(world, fake, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        (ab, bc) = inferred(spec(world["a"], world["b"]), spec(world["b"], world["c"]))
        # Nothing reaches Neo4j before the commit.
        assert fake.calls == []
    assert fake.sent(neo4j.DELETE_EDGES) == [{"ids": sorted([ab.pk, bc.pk])}]
    fake.calls.clear()
    with django_capture_on_commit_callbacks(execute=True):
        decide([ab], status=Status.APPROVED, user=None)
    assert fake.sent(neo4j.MERGE_EDGES)[0]["rows"][0]["status"] == "approved"
    fake.calls.clear()
    c_id, bc_id = world["c"].pk, bc.pk
    with django_capture_on_commit_callbacks(execute=True):
        world["c"].delete()  # takes b -> c with it
    assert fake.sent(neo4j.DELETE_EDGES) == [{"ids": [bc_id]}]
    assert fake.sent(neo4j.DELETE_TABLES) == [{"ids": [c_id]}]


def test_sync_is_queued_with_ids_only(world, fake, monkeypatch, django_capture_on_commit_callbacks):
    sent = []
    monkeypatch.setattr(tasks.sync_neo4j, "delay", lambda **kwargs: sent.append(kwargs))
    with django_capture_on_commit_callbacks(execute=True):
        (ab,) = inferred(spec(world["a"], world["b"]))
    assert sent == [{"edge_ids": [ab.pk], "table_ids": []}]
    assert "secret" not in str(sent)


def test_a_table_deleted_with_its_edges_is_one_message(
    world, fake, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(tasks.sync_neo4j, "delay", lambda **kwargs: sent.append(kwargs))
    ab, ac = inferred(spec(world["a"], world["b"]), spec(world["a"], world["c"]))
    with django_capture_on_commit_callbacks(execute=True):
        a_id = world["a"].pk
        world["a"].delete()  # takes both edges with it, each with its own post_delete
    assert sent == [{"edge_ids": sorted([ab.pk, ac.pk]), "table_ids": [a_id]}]


def test_ids_of_a_rolled_back_savepoint_are_not_sent(
    world, fake, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(tasks.sync_neo4j, "delay", lambda **kwargs: sent.append(kwargs))
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        tasks.neo4j_sync_on_commit(edge_ids=[1])
        try:
            with transaction.atomic():
                tasks.neo4j_sync_on_commit(edge_ids=[2])
                raise RuntimeError("undo")
        except RuntimeError:
            pass
        tasks.neo4j_sync_on_commit(edge_ids=[3])
    assert sent == [{"edge_ids": [1, 3], "table_ids": []}]


def test_a_renamed_source_resends_its_tables_edges(
    world, fake, monkeypatch, django_capture_on_commit_callbacks
):
    (ab,) = inferred(spec(world["a"], world["b"]))
    sent = []
    monkeypatch.setattr(tasks.sync_neo4j, "delay", lambda **kwargs: sent.append(kwargs))
    source = world["a"].source
    with django_capture_on_commit_callbacks(execute=True):
        source.name = "shop-2019"
        source.save()
    assert sent == [{"edge_ids": [ab.pk], "table_ids": []}]
    tasks.sync_neo4j(**sent[0])
    (row,) = [r for r in fake.sent(neo4j.UPSERT_TABLES)[-1]["rows"] if r["id"] == world["a"].pk]
    assert row["fqn"] == "shop-2019.main.a"


def test_nothing_is_scheduled_without_the_url(
    world, unset, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(tasks.sync_neo4j, "delay", lambda **kwargs: sent.append(kwargs))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        (ab,) = inferred(spec(world["a"], world["b"]))
        decide([ab], status=Status.REJECTED, user=None)
        ab.delete()
    assert sent == []
    assert not any("_send" in repr(c) for c in callbacks)
    with pytest.raises(neo4j.Neo4jNotConfigured):
        neo4j.runner()
    assert tasks.sync_neo4j(edge_ids=[1]) is None


def test_sync_tries_again_while_the_server_is_unavailable(world, fake, monkeypatch):
    from neo4j.exceptions import ServiceUnavailable

    (ab,) = inferred(spec(world["a"], world["b"]))
    real_sync, attempts = neo4j.sync, []

    def flaky_sync(**kwargs):
        attempts.append(kwargs)
        if len(attempts) < 3:
            raise ServiceUnavailable("server restarting")
        return real_sync(**kwargs)

    monkeypatch.setattr(neo4j, "sync", flaky_sync)
    result = tasks.sync_neo4j.apply(kwargs={"edge_ids": [ab.pk]})  # retries run in place
    assert result.successful()
    assert len(attempts) == 3
    assert fake.sent(neo4j.MERGE_EDGES)


def test_sync_gives_up_after_five_retries(world, fake, monkeypatch):
    from neo4j.exceptions import ServiceUnavailable

    attempts = []

    def down(**kwargs):
        attempts.append(kwargs)
        raise ServiceUnavailable("no server")

    monkeypatch.setattr(neo4j, "sync", down)
    result = tasks.sync_neo4j.apply(kwargs={"edge_ids": [1]})
    assert result.failed() and isinstance(result.result, ServiceUnavailable)
    assert len(attempts) == 6


def test_command_needs_the_url(db, unset):
    with pytest.raises(CommandError, match="NEO4J_BOLT_URL is not set"):
        call_command("sync_lineage_neo4j")


def test_command_rebuilds_as_a_job(world, fake, capsys):
    inferred(spec(world["a"], world["b"]))
    call_command("sync_lineage_neo4j", verbosity=0)
    job = JobRun.objects.get(task="lineage.rebuild_neo4j")
    assert (job.status, job.progress) == ("succeeded", 100)
    assert job.result == {"tables": 3, "edges": 1, "field_edges": 0}
    assert "tables 3, edges 1, field edges 0" in capsys.readouterr().out
    assert "secret" not in str(job.arguments) + job.progress_message


def test_the_url_and_its_password_stay_out_of_errors(world, fake, monkeypatch):
    def refuse(query, params):
        raise RuntimeError("connection refused")

    fake.rows_for = refuse
    inferred(spec(world["a"], world["b"]))
    with pytest.raises(CommandError) as failure:
        call_command("sync_lineage_neo4j", verbosity=0)
    assert "connection refused" in str(failure.value)
    assert "secret" not in str(failure.value)


# Integration: a real Neo4j server (docker-compose starts one) named by NEO4J_BOLT_URL.
needs_neo4j = pytest.mark.skipif(
    not NEO4J_URL, reason="NEO4J_BOLT_URL is not set: no Neo4j server to project lineage into"
)


@pytest.fixture
def real(transactional_db, settings):
    settings.NEO4J_BOLT_URL = NEO4J_URL
    cypher = neo4j.runner()
    cypher.run("MATCH (n) WHERE n:Table OR n:Field DETACH DELETE n")
    yield cypher
    cypher.run("MATCH (n) WHERE n:Table OR n:Field DETACH DELETE n")


def ring():
    src = DataSource.objects.create(name="ring", kind="sqlite", database="ring.db")
    t = {n: Table.objects.create(source=src, schema="main", name=n) for n in "abcde"}
    edges = inferred(
        spec(t["a"], t["b"]), spec(t["b"], t["c"]), spec(t["c"], t["d"]), spec(t["d"], t["a"])
    )
    (be,) = record_edges(
        [EdgeSpec(t["b"], t["e"], Evidence(kind="manual", key="x"))], origin=Origin.MANUAL
    )[0]
    return t, {f"{e.upstream.name}{e.downstream.name}": e for e in [*edges, be]}


@pytest.mark.integration
@needs_neo4j
def test_neo4j_answers_the_same_levels_as_the_database(real, settings):
    t, e = ring()
    neo4j.sync()
    for direction in ("upstream", "downstream"):
        for depth in (1, 2, 3, 10):
            for statuses in (("approved", "pending"), ("approved",)):
                settings.LINEAGE_GRAPH_BACKEND = "database"
                expected = graph.edge_levels(t["a"].pk, direction, depth, statuses)
                got = neo4j.edge_levels(t["a"].pk, direction, depth, statuses)
                assert got == expected, (direction, depth, statuses)
    constraints = str(real.run("SHOW CONSTRAINTS YIELD labelsOrTypes, properties"))
    assert "table_id" in constraints and "field_id" in constraints


@pytest.mark.integration
@needs_neo4j
def test_neo4j_follows_commits_and_rebuild_sweeps(real, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    t, e = ring()
    neo4j.sync(edge_ids=[x.pk for x in e.values()])
    decide([e["ab"]], status=Status.APPROVED, user=None)
    neo4j.sync(edge_ids=[e["ab"].pk])
    rows = real.run(
        "MATCH ()-[r:LINEAGE]->() WHERE r.edge_id = $id RETURN r.status", {"id": e["ab"].pk}
    )
    assert rows == [["approved"]]
    LineageEdge.objects.filter(pk=e["cd"].pk).delete()  # behind the projection's back
    neo4j.sync()
    count = real.run("MATCH ()-[r:LINEAGE]->() RETURN count(r)")[0][0]
    assert count == 4
    assert real.run("MATCH (t:Table) RETURN count(t)")[0][0] == Table.objects.count()
