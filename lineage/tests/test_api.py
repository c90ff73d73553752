"""The lineage REST API: writes, decisions, lists and graph walks, with their denials."""

import json

import pytest
from django.contrib.contenttypes.models import ContentType

from catalog.models import Field, Table
from governance.models import ChangeLogEntry
from governance.services import grant
from governance.testing import client_for, make_user
from lineage import services
from lineage.models import FieldLineageEdge, LineageEdge, LineageEvidence, Origin, Status
from sources.models import DataSource

BASE = "/api/v1/lineage"


def make_table(src, name):
    return Table.objects.create(source=src, schema="main", name=name)


@pytest.fixture
def world(db):
    """Two sources: `shop` (the user's) with orders/customers/report, `hr` (not theirs)."""
    shop = DataSource.objects.create(name="shop", kind="sqlite", database="shop.db")
    hr = DataSource.objects.create(name="hr", kind="sqlite", database="hr.db")
    orders, customers, report = (make_table(shop, n) for n in ("orders", "customers", "report"))
    salaries = make_table(hr, "salaries")
    for t in (orders, customers, report, salaries):
        Field.objects.create(table=t, name="id", position=1)
        Field.objects.create(table=t, name="amount", position=2)
    return {
        "shop": shop,
        "hr": hr,
        "orders": orders,
        "customers": customers,
        "report": report,
        "salaries": salaries,
    }


@pytest.fixture
def steward(world):
    user = make_user("stella")
    grant(world["shop"], user, "steward")
    return user


@pytest.fixture
def viewer(world):
    user = make_user("vic")
    grant(world["shop"], user, "viewer")
    return user


def changes(edge_id, action):
    return ChangeLogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(LineageEdge),
        object_id=edge_id,
        action=action,
    )


def inferred(up, down):
    (edge,), _ = services.record_edges(
        [services.EdgeSpec(up, down, services.Evidence(kind="sql", key="abc", snippet="select"))],
        origin=Origin.INFERRED,
    )
    return edge


def post_table(client, up, down, **extra):
    body = {"source_table_id": up, "target_table_id": down, "lineage_source": "manual", **extra}
    return client.post(f"{BASE}/table", body, format="json")


# Writing table edges


def test_a_manual_edge_is_approved_at_once_with_evidence_and_change_log(world, steward):
    client = client_for(steward)
    response = post_table(client, world["orders"].pk, world["report"].pk)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["upstream"] == {"id": world["orders"].pk, "fqn": "shop.main.orders"}
    assert body["downstream"] == {"id": world["report"].pk, "fqn": "shop.main.report"}
    assert (body["origin"], body["status"], body["confidence"]) == ("manual", "approved", 1.0)
    assert body["created_by"] == body["decided_by"] == "stella"
    assert body["decided_at"]
    assert [e["kind"] for e in body["evidence"]] == ["manual"]
    assert body["field_edges"] == []
    entry = changes(body["id"], "create").get()
    assert entry.user == steward
    # The same pair again: the same edge, 200, nothing doubled.
    again = post_table(client, world["orders"].pk, world["report"].pk)
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    assert LineageEdge.objects.count() == 1 and LineageEvidence.objects.count() == 1


def test_asserting_a_pending_edge_approves_it_and_adds_evidence(world, steward):
    edge = inferred(world["orders"], world["report"])
    response = post_table(client_for(steward), world["orders"].pk, world["report"].pk)
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == edge.pk and body["status"] == "approved"
    assert sorted(e["kind"] for e in body["evidence"]) == ["manual", "sql"]


def test_no_trailing_slash_and_trailing_slash_both_work(world, steward):
    client = client_for(steward)
    body = {"source_table_id": world["orders"].pk, "target_table_id": world["report"].pk}
    assert client.post(f"{BASE}/table/", body, format="json").status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"source_table_id": 999999, "target_table_id": "report"}, "source_table_id"),
        ({"source_table_id": "orders", "target_table_id": 999999}, "target_table_id"),
        ({"source_table_id": "report", "target_table_id": "report"}, "target_table_id"),
        ({"target_table_id": "report"}, "source_table_id"),
        ({"source_table_id": "x", "target_table_id": "report"}, "source_table_id"),
        ({"source_table_id": 10**30, "target_table_id": "report"}, "source_table_id"),
        (
            {"source_table_id": "orders", "target_table_id": "report", "lineage_source": "sql"},
            "lineage_source",
        ),
        # A table the user may not view answers like a missing one.
        ({"source_table_id": "salaries", "target_table_id": "report"}, "source_table_id"),
    ],
)
def test_bad_table_edges_are_400_naming_the_field_and_write_nothing(world, steward, body, field):
    body = {k: world[v].pk if v in world else v for k, v in body.items()}
    response = client_for(steward).post(f"{BASE}/table", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert LineageEdge.objects.count() == 0
    assert not ChangeLogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(LineageEdge)
    ).exists()


def test_unknown_id_message_names_the_id(world, steward):
    response = post_table(client_for(steward), 424242, world["report"].pk)
    assert "424242" in response.json()["source_table_id"][0]


def test_self_loop_is_400(world, steward):
    response = post_table(client_for(steward), world["orders"].pk, world["orders"].pk)
    assert response.status_code == 400
    assert "self-loop" in response.json()["target_table_id"][0]


def test_writing_edges_is_denied_without_change_on_the_target(world, viewer):
    client = client_for(make_user("nobody"))
    assert post_table(client, world["orders"].pk, world["report"].pk).status_code == 403
    # A viewer grant does not allow recording lineage into the tables it covers.
    assert post_table(client_for(viewer), world["orders"].pk, world["report"].pk).status_code == 403
    # A steward elsewhere who only views the target: still 403.
    grant(world["hr"], viewer, "steward")
    assert post_table(client_for(viewer), world["salaries"].pk, world["report"].pk).status_code == (
        403
    )
    assert post_table(client_for(None), world["orders"].pk, world["report"].pk).status_code == 401
    assert LineageEdge.objects.count() == 0


def test_change_on_the_target_and_view_on_the_source_suffice(world, steward):
    grant(world["hr"], steward, "viewer")
    response = post_table(client_for(steward), world["salaries"].pk, world["report"].pk)
    assert response.status_code == 201
    # The other way round needs change on hr.
    response = post_table(client_for(steward), world["report"].pk, world["salaries"].pk)
    assert response.status_code == 403


# Writing field edges


def field(world, table, name):
    return Field.objects.get(table=world[table], name=name)


def test_a_field_edge_creates_the_table_edge_under_it(world, steward):
    client = client_for(steward)
    up, down = field(world, "orders", "amount"), field(world, "report", "amount")
    body = {"source_field_id": up.pk, "target_field_id": down.pk, "transformation": "sum(amount)"}
    response = client.post(f"{BASE}/field", body, format="json")
    assert response.status_code == 201, response.content
    edge = response.json()
    assert edge["upstream"]["id"] == world["orders"].pk and edge["status"] == "approved"
    assert edge["field_edges"] == [
        {
            "id": FieldLineageEdge.objects.get().pk,
            "edge": edge["id"],
            "upstream_field": {"id": up.pk, "name": "amount", "table": world["orders"].pk},
            "downstream_field": {"id": down.pk, "name": "amount", "table": world["report"].pk},
            "transformation": "sum(amount)",
            "origin": "manual",
        }
    ]
    # A second field edge reuses the table edge.
    up2, down2 = field(world, "orders", "id"), field(world, "report", "id")
    response = client.post(
        f"{BASE}/field", {"source_field_id": up2.pk, "target_field_id": down2.pk}, format="json"
    )
    assert response.status_code == 201 and response.json()["id"] == edge["id"]
    assert len(response.json()["field_edges"]) == 2
    assert LineageEdge.objects.count() == 1


def test_field_edges_need_fields_the_user_may_change_and_see(world, steward, viewer):
    up, down = field(world, "orders", "amount"), field(world, "report", "amount")
    hidden = field(world, "salaries", "amount")
    same = field(world, "orders", "id")
    body = {"source_field_id": up.pk, "target_field_id": down.pk}
    assert client_for(viewer).post(f"{BASE}/field", body, format="json").status_code == 403
    client = client_for(steward)
    cases = [
        ({"source_field_id": hidden.pk, "target_field_id": down.pk}, "source_field_id"),
        ({"source_field_id": up.pk, "target_field_id": hidden.pk}, "target_field_id"),
        ({"source_field_id": up.pk, "target_field_id": 987654}, "target_field_id"),
        ({"source_field_id": up.pk, "target_field_id": same.pk}, "target_field_id"),
    ]
    for body, name in cases:
        response = client.post(f"{BASE}/field", body, format="json")
        assert response.status_code == 400 and name in response.json(), (body, response.content)
    grant(world["hr"], steward, "viewer")
    response = client.post(
        f"{BASE}/field", {"source_field_id": up.pk, "target_field_id": hidden.pk}, format="json"
    )
    assert response.status_code == 403
    assert LineageEdge.objects.count() == 0 and FieldLineageEdge.objects.count() == 0


# Reading, deciding, deleting


def test_detail_and_list_with_filters(world, steward):
    manual = services.record_edges(
        [
            services.EdgeSpec(
                world["orders"], world["report"], services.Evidence(kind="manual", key="1")
            )
        ],
        origin=Origin.MANUAL,
    )[0][0]
    pending = inferred(world["customers"], world["report"])
    hidden_up = inferred(world["salaries"], world["orders"])  # names a table stella can't see
    invisible = inferred(world["customers"], world["salaries"])
    client = client_for(steward)
    ids = lambda url: [e["id"] for e in client.get(url).json()["results"]]  # noqa: E731
    assert ids(f"{BASE}/") == [manual.pk, pending.pk]
    assert ids(f"{BASE}?status=pending") == [pending.pk]
    assert ids(f"{BASE}/pending") == [pending.pk]
    assert ids(f"{BASE}?origin=manual") == [manual.pk]
    assert ids(f"{BASE}?table={world['customers'].pk}") == [pending.pk]
    assert ids(f"{BASE}?source={world['shop'].pk}") == [manual.pk, pending.pk]
    assert client.get(f"{BASE}?source={world['hr'].pk}").status_code == 400
    assert client.get(f"{BASE}/{manual.pk}").json()["evidence"][0]["kind"] == "manual"
    assert client.get(f"{BASE}/{hidden_up.pk}").status_code == 404
    assert client.get(f"{BASE}/{invisible.pk}").status_code == 404
    assert "salaries" not in client.get(f"{BASE}/").content.decode()
    superuser = client_for(make_user("root", superuser=True))
    assert superuser.get(f"{BASE}/").json()["count"] == 4
    nobody = client_for(make_user("nobody"))
    assert nobody.get(f"{BASE}/").json()["count"] == 0
    assert nobody.get(f"{BASE}/{manual.pk}").status_code == 404
    anonymous = client_for(None)
    assert anonymous.get(f"{BASE}/").status_code == 401
    assert anonymous.get(f"{BASE}/{manual.pk}").status_code == 401
    assert anonymous.delete(f"{BASE}/{manual.pk}").status_code == 401


def test_approve_and_reject_change_status_and_write_change_log(world, steward, viewer):
    edge = inferred(world["orders"], world["report"])
    assert client_for(viewer).post(f"{BASE}/{edge.pk}/approve").status_code == 403
    assert client_for(make_user("nobody")).post(f"{BASE}/{edge.pk}/approve").status_code == 404
    edge.refresh_from_db()
    assert edge.status == Status.PENDING and not changes(edge.pk, "update").exists()

    response = client_for(steward).post(f"{BASE}/{edge.pk}/approve")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["decided_by"]) == ("approved", "stella")
    edge.refresh_from_db()
    assert (edge.status, edge.decided_by) == (Status.APPROVED, steward)
    entry = changes(edge.pk, "update").get()
    assert "status" in entry.changed and entry.user == steward

    response = client_for(steward).post(f"{BASE}/{edge.pk}/reject/")
    assert response.status_code == 200 and response.json()["status"] == "rejected"
    assert changes(edge.pk, "update").count() == 2
    assert client_for(steward).get(f"{BASE}/pending").json()["count"] == 0


def test_delete_needs_change_on_the_downstream_table(world, steward, viewer):
    edge = inferred(world["orders"], world["report"])
    assert client_for(make_user("nobody")).delete(f"{BASE}/{edge.pk}").status_code == 404
    assert client_for(viewer).delete(f"{BASE}/{edge.pk}").status_code == 403
    assert LineageEdge.objects.filter(pk=edge.pk).exists()
    assert client_for(steward).delete(f"{BASE}/{edge.pk}").status_code == 204
    assert not LineageEdge.objects.filter(pk=edge.pk).exists()
    assert changes(edge.pk, "delete").exists()


# Graph walks


def walk(client, table, direction="upstream", query=""):
    return client.get(f"{BASE}/table/{table.pk}/{direction}{query}")


def test_upstream_and_downstream_answer_the_graph(world, steward):
    services.record_edges(
        [
            services.EdgeSpec(
                world["orders"],
                world["report"],
                services.Evidence(kind="manual", key="1"),
                fields=[(field(world, "orders", "amount"), field(world, "report", "amount"), "")],
            ),
            services.EdgeSpec(
                world["customers"], world["orders"], services.Evidence(kind="manual", key="1")
            ),
            services.EdgeSpec(
                world["salaries"], world["customers"], services.Evidence(kind="manual", key="1")
            ),
        ],
        origin=Origin.MANUAL,
    )
    client = client_for(steward)
    response = walk(client, world["report"], "upstream")
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["root", "direction", "depth", "nodes", "edges", "levels", "hidden"]
    assert (body["root"], body["direction"], body["depth"]) == (world["report"].pk, "upstream", 3)
    assert [(n["name"], n["level"]) for n in body["nodes"]] == [
        ("report", 0),
        ("orders", 1),
        ("customers", 2),
    ]
    assert body["hidden"] == 1 and "salaries" not in json.dumps(body)
    assert body["levels"] == [
        {"level": 1, "tables": 1, "edges": 1},
        {"level": 2, "tables": 1, "edges": 1},
    ]
    with_fields = walk(client, world["report"], "upstream", "?fields=true&depth=1").json()
    assert [f["upstream_field"]["name"] for f in with_fields["field_edges"]] == ["amount"]
    down = walk(client, world["customers"], "downstream", "?depth=1").json()
    assert [n["name"] for n in down["nodes"]] == ["customers", "orders"]


def test_status_filter_on_walks(world, steward):
    edge = inferred(world["orders"], world["report"])
    client = client_for(steward)
    assert len(walk(client, world["report"]).json()["edges"]) == 1
    assert walk(client, world["report"], query="?status=approved").json()["edges"] == []
    services.decide([edge], status=Status.REJECTED, user=steward)
    assert walk(client, world["report"]).json()["edges"] == []
    rejected = walk(client, world["report"], query="?status=rejected,approved").json()
    assert [e["status"] for e in rejected["edges"]] == ["rejected"]
    response = walk(client, world["report"], query="?status=bogus")
    assert response.status_code == 400 and "status" in response.json()


@pytest.mark.parametrize("depth", ["0", "11", "-2", "three"])
def test_depth_outside_one_to_ten_is_400(world, steward, depth):
    client = client_for(steward)
    for direction in ("upstream", "downstream", "impact"):
        response = walk(client, world["report"], direction, f"?depth={depth}")
        assert response.status_code == 400 and "depth" in response.json()


def test_walks_of_unknown_or_hidden_tables_are_404(world, steward):
    client = client_for(steward)
    for direction in ("upstream", "downstream", "impact"):
        assert walk(client, world["salaries"], direction).status_code == 404
        assert client.get(f"{BASE}/table/987654/{direction}").status_code == 404
    assert walk(client_for(None), world["report"]).status_code == 401


def test_impact_lists_downstream_owners(world, steward):
    owner = make_user("olga")
    owner.email = "olga@example.com"
    owner.save()
    Table.objects.filter(pk=world["report"].pk).update(owner=owner)
    services.record_edges(
        [
            services.EdgeSpec(
                world["customers"], world["orders"], services.Evidence(kind="manual", key="1")
            ),
            services.EdgeSpec(
                world["orders"], world["report"], services.Evidence(kind="manual", key="1")
            ),
            services.EdgeSpec(
                world["orders"], world["salaries"], services.Evidence(kind="manual", key="1")
            ),
        ],
        origin=Origin.MANUAL,
    )
    body = walk(client_for(steward), world["customers"], "impact").json()
    assert [(t["name"], t["depth"]) for t in body["tables"]] == [("orders", 1), ("report", 2)]
    assert body["tables"][1]["owner"] == {"username": "olga", "email": "olga@example.com"}
    assert body["hidden"] == 1 and body["depth"] == 10
