"""Graph walks at the service level: levels, cycles, depth bounds, statuses, visibility."""

import json
import sys
import types

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

import lineage
from catalog.models import Field, Table
from governance.services import grant
from governance.testing import make_user
from lineage import graph
from lineage.models import FieldLineageEdge, LineageEdge, Origin, Status
from sources.models import DataSource


def source(name):
    return DataSource.objects.create(name=name, kind="sqlite", database=f"{name}.db")


def table(src, name, owner=None):
    return Table.objects.create(source=src, schema="main", name=name, owner=owner)


def edge(up, down, status=Status.APPROVED, origin=Origin.MANUAL):
    return LineageEdge.objects.create(upstream=up, downstream=down, status=status, origin=origin)


@pytest.fixture
def ring(db):
    """a -> b -> c -> d -> a (a cycle), plus b -> e, and a rejected c -> x."""
    src = source("warehouse")
    a, b, c, d, e, x = (table(src, n) for n in "abcdex")
    edges = {
        "ab": edge(a, b),
        "bc": edge(b, c),
        "cd": edge(c, d, Status.PENDING, Origin.INFERRED),
        "da": edge(d, a),
        "be": edge(b, e),
        "cx": edge(c, x, Status.REJECTED, Origin.INFERRED),
    }
    return src, {t.name: t for t in (a, b, c, d, e, x)}, edges


@pytest.fixture
def root(db):
    return make_user("root", superuser=True)


def test_edge_levels_are_the_smallest_level_and_a_cycle_terminates(ring):
    _, t, e = ring
    statuses = graph.DEFAULT_STATUSES
    assert graph.edge_levels(t["a"].pk, "downstream", 1, statuses) == {e["ab"].pk: 1}
    assert graph.edge_levels(t["a"].pk, "downstream", 3, statuses) == {
        e["ab"].pk: 1,
        e["bc"].pk: 2,
        e["be"].pk: 2,
        e["cd"].pk: 3,
    }
    # Around the ring and past it: each edge once, at its first level.
    assert graph.edge_levels(t["a"].pk, "downstream", 10, statuses) == {
        e["ab"].pk: 1,
        e["bc"].pk: 2,
        e["be"].pk: 2,
        e["cd"].pk: 3,
        e["da"].pk: 4,
    }
    assert graph.edge_levels(t["a"].pk, "upstream", 10, statuses) == {
        e["da"].pk: 1,
        e["cd"].pk: 2,
        e["bc"].pk: 3,
        e["ab"].pk: 4,
    }


def test_statuses_choose_the_edges_followed(ring):
    _, t, e = ring
    assert graph.edge_levels(t["c"].pk, "downstream", 2, [Status.APPROVED]) == {}
    assert graph.edge_levels(t["c"].pk, "downstream", 1, graph.DEFAULT_STATUSES) == {e["cd"].pk: 1}
    assert graph.edge_levels(t["c"].pk, "downstream", 1, list(Status.values)) == {
        e["cd"].pk: 1,
        e["cx"].pk: 1,
    }


@pytest.mark.parametrize("depth", [0, 11, -1, "3", True])
def test_depth_outside_one_to_ten_is_refused(ring, depth):
    _, t, _ = ring
    with pytest.raises(graph.GraphError):
        graph.edge_levels(t["a"].pk, "downstream", depth, graph.DEFAULT_STATUSES)


def test_unknown_direction_and_status_are_refused(ring):
    _, t, _ = ring
    with pytest.raises(graph.GraphError):
        graph.edge_levels(t["a"].pk, "sideways", 3, graph.DEFAULT_STATUSES)
    with pytest.raises(graph.GraphError, match="unknown: maybe"):
        graph.edge_levels(t["a"].pk, "downstream", 3, ["maybe"])


def test_depth_limits_hold_on_a_long_chain(db, root):
    src = source("chain")
    chain = [table(src, f"t{i:02d}") for i in range(15)]
    for up, down in zip(chain, chain[1:], strict=False):
        edge(up, down)
    for depth in (1, 3, 10):
        answer = graph.lineage(root, chain[0], "downstream", depth=depth)
        assert [n["id"] for n in answer["nodes"]] == [t.pk for t in chain[: depth + 1]]
        assert len(answer["edges"]) == depth
        assert max(n["level"] for n in answer["nodes"]) == depth
        assert answer["levels"] == [
            {"level": level, "tables": 1, "edges": 1} for level in range(1, depth + 1)
        ]
    answer = graph.lineage(root, chain[14], "upstream", depth=10)
    assert answer["nodes"][-1] == {**answer["nodes"][-1], "id": chain[4].pk, "level": 10}


def test_lineage_answer_shape(ring, root):
    _, t, e = ring
    answer = graph.lineage(root, t["a"], "downstream", depth=10)
    assert list(answer) == ["root", "direction", "depth", "nodes", "edges", "levels", "hidden"]
    assert answer["nodes"][0] == {
        "id": t["a"].pk,
        "fqn": "warehouse.main.a",
        "name": "a",
        "schema": "main",
        "source": t["a"].source_id,
        "source_name": "warehouse",
        "kind": "table",
        "owner": None,
        "level": 0,
    }
    assert {n["name"]: n["level"] for n in answer["nodes"]} == {
        "a": 0,
        "b": 1,
        "c": 2,
        "e": 2,
        "d": 3,
    }
    cycle = next(x for x in answer["edges"] if x["id"] == e["da"].pk)
    assert cycle == {
        "id": e["da"].pk,
        "upstream": t["d"].pk,
        "downstream": t["a"].pk,
        "origin": "manual",
        "status": "approved",
        "confidence": 1.0,
        "level": 4,
    }
    assert answer["levels"] == [
        {"level": 1, "tables": 1, "edges": 1},
        {"level": 2, "tables": 2, "edges": 2},
        {"level": 3, "tables": 1, "edges": 1},
        {"level": 4, "tables": 0, "edges": 1},
    ]
    assert answer["hidden"] == 0


def test_one_query_per_level_whatever_the_width(db, root):
    src = source("wide")
    hub = table(src, "hub")
    for i in range(40):
        middle = table(src, f"m{i:02d}")
        edge(hub, middle)
        edge(middle, table(src, f"leaf{i:02d}"))
    with CaptureQueriesContext(connection) as queries:
        answer = graph.lineage(root, hub, "downstream", depth=10)
    assert len(answer["nodes"]) == 81 and len(answer["edges"]) == 80
    # Level 1, level 2, level 3 (finds nothing new and stops), then the tables' details.
    assert len(queries) == 4


def test_hidden_tables_are_counted_not_named_and_stop_the_walk(db):
    mine, theirs = source("mine"), source("theirs")
    a, b, d, f = (table(mine, n) for n in ("a", "b", "d", "f"))
    secret, secret2 = table(theirs, "salaries"), table(theirs, "bonuses")
    edge(a, b)
    edge(a, secret)
    edge(secret, d)  # d is visible but reachable only through the secret table
    edge(secret, secret2)
    edge(b, f)
    edge(secret, f)  # f is also reachable by a visible path, one level further
    user = make_user("vic")
    grant(mine, user, "viewer")
    answer = graph.lineage(user, a, "downstream", depth=10)
    assert {n["name"]: n["level"] for n in answer["nodes"]} == {"a": 0, "b": 1, "f": 2}
    assert answer["hidden"] == 1
    touched = {x["upstream"] for x in answer["edges"]} | {x["downstream"] for x in answer["edges"]}
    assert touched == {a.pk, b.pk, f.pk}
    text = json.dumps(answer)
    assert "salaries" not in text and "theirs" not in text and "bonuses" not in text
    # The impact answer hides the same way.
    impact = graph.impact(user, a)
    assert [(x["name"], x["depth"]) for x in impact["tables"]] == [("b", 1), ("f", 2)]
    assert impact["hidden"] == 1
    # A superuser sees everything, at the smallest levels.
    everything = graph.lineage(make_user("root", superuser=True), a, "downstream", depth=10)
    assert {n["name"]: n["level"] for n in everything["nodes"]} == {
        "a": 0,
        "b": 1,
        "salaries": 1,
        "d": 2,
        "f": 2,
        "bonuses": 2,
    }
    assert everything["hidden"] == 0


def test_a_root_the_user_may_not_see_is_refused(ring):
    _, t, _ = ring
    with pytest.raises(Table.DoesNotExist):
        graph.lineage(make_user("nobody"), t["a"], "downstream")


def test_field_edges_come_with_fields_true(ring, root):
    _, t, e = ring
    up = Field.objects.create(table=t["a"], name="id")
    down = Field.objects.create(table=t["b"], name="a_id")
    fe = FieldLineageEdge.objects.create(
        edge=e["ab"], upstream=up, downstream=down, transformation="id", origin="manual"
    )
    assert "field_edges" not in graph.lineage(root, t["a"], "downstream")
    answer = graph.lineage(root, t["a"], "downstream", fields=True)
    assert answer["field_edges"] == [
        {
            "id": fe.pk,
            "edge": e["ab"].pk,
            "upstream_field": {"id": up.pk, "name": "id", "table": t["a"].pk},
            "downstream_field": {"id": down.pk, "name": "a_id", "table": t["b"].pk},
            "transformation": "id",
            "origin": "manual",
        }
    ]


def test_impact_lists_owners_by_depth(ring, root):
    _, t, _ = ring
    owner = make_user("olga")
    owner.email = "olga@example.com"
    owner.save()
    Table.objects.filter(pk=t["c"].pk).update(owner=owner)
    answer = graph.impact(root, t["a"])
    assert [(x["name"], x["depth"]) for x in answer["tables"]] == [
        ("b", 1),
        ("c", 2),
        ("e", 2),
        ("d", 3),
    ]
    assert answer["tables"][1]["owner"] == {"username": "olga", "email": "olga@example.com"}
    assert answer["tables"][0]["owner"] is None
    assert answer["count"] == 4 and answer["hidden"] == 0
    assert [x["name"] for x in graph.impact(root, t["a"], depth=1)["tables"]] == ["b"]


def test_the_neo4j_backend_answers_edge_levels_when_chosen(ring, root, settings, monkeypatch):
    _, t, e = ring
    calls = []

    def edge_levels(root_id, direction, depth, statuses):
        calls.append((root_id, direction, depth, tuple(statuses)))
        return {e["ab"].pk: 1}

    # A stand-in module (labelled fake): only the call contract is under test here.
    fake = types.SimpleNamespace(edge_levels=edge_levels)
    monkeypatch.setitem(sys.modules, "lineage.neo4j", fake)
    monkeypatch.setattr(lineage, "neo4j", fake, raising=False)
    settings.LINEAGE_GRAPH_BACKEND = "neo4j"
    answer = graph.lineage(root, t["a"], "downstream", depth=2)
    assert calls == [(t["a"].pk, "downstream", 2, ("approved", "pending"))]
    assert [x["id"] for x in answer["edges"]] == [e["ab"].pk]
    assert [n["name"] for n in answer["nodes"]] == ["a", "b"]
