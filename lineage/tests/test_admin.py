"""The lineage admin: the edge list, its pending queue and bulk decisions, the table page's
lineage panel and picture data, all through object permissions."""

import pytest

from catalog.models import Field, Table
from governance.services import grant
from governance.testing import make_user
from lineage.models import LineageEdge, LineageEvidence, Origin, Status
from lineage.services import EdgeSpec, Evidence, record_edges
from sources.models import DataSource

EDGES = "/admin/lineage/lineageedge/"


def table_page(table):
    return f"/admin/catalog/table/{table.pk}/change/"


def picture(table, depth=1):
    return f"{EDGES}table/{table.pk}/picture/?depth={depth}"


@pytest.fixture
def world(db):
    """shop: raw -> clean (approved, manual) -> report (pending, inferred from SQL, with a
    field edge); hr.secret -> shop.clean (pending): a table shop's viewers may not see."""
    shop = DataSource.objects.create(name="shop", kind="sqlite", database="shop.db")
    hr = DataSource.objects.create(name="hr", kind="sqlite", database="hr.db")
    raw, clean, report = (
        Table.objects.create(source=shop, schema="main", name=name)
        for name in ("orders_raw", "orders_clean", "orders_report")
    )
    secret = Table.objects.create(source=hr, schema="main", name="salaries_secret")
    total_in = Field.objects.create(table=clean, name="total", position=1)
    total_out = Field.objects.create(table=report, name="revenue", position=1)
    author = make_user("author", superuser=True)
    (approved,), _ = record_edges(
        [EdgeSpec(raw, clean, Evidence(kind="manual", key=f"user:{author.pk}"))],
        origin=Origin.MANUAL,
        user=author,
    )
    sql = "insert into orders_report select sum(total) as revenue from orders_clean"
    (pending,), _ = record_edges(
        [
            EdgeSpec(
                clean,
                report,
                Evidence(kind="sql", key="abc123", sql_hash="abc123", snippet=sql),
                fields=[(total_in, total_out, "sum(total)")],
                confidence=0.8,
            )
        ],
        origin=Origin.INFERRED,
    )
    (hidden,), _ = record_edges(
        [
            EdgeSpec(
                secret,
                clean,
                Evidence(kind="sql", key="def456", snippet="select * from salaries_secret"),
            )
        ],
        origin=Origin.INFERRED,
    )
    tables = {"raw": raw, "clean": clean, "report": report, "secret": secret}
    return {
        "shop": shop,
        "hr": hr,
        "approved": approved,
        "pending": pending,
        "hidden": hidden,
        **tables,
    }


def staff(world, name, role=None):
    user = make_user(name, staff=True)
    if role:
        grant(world["shop"], user, role)
    return user


@pytest.fixture
def steward(world, client):
    client.force_login(staff(world, "stella", "steward"))
    return client


@pytest.fixture
def viewer(world, client):
    client.force_login(staff(world, "victor", "viewer"))
    return client


def listed(response):
    assert response.status_code == 200, response.status_code
    return {edge.pk for edge in response.context["cl"].result_list}


def act(client, action, edges):
    return client.post(
        EDGES,
        {"action": action, "_selected_action": [e.pk for e in edges], "index": 0},
        follow=True,
    )


def test_list_filters_and_search(world, client):
    client.force_login(make_user("root", superuser=True))
    everything = {world[k].pk for k in ("approved", "pending", "hidden")}
    assert listed(client.get(EDGES)) == everything
    assert listed(client.get(f"{EDGES}?status__exact=pending")) == {
        world["pending"].pk,
        world["hidden"].pk,
    }
    assert listed(client.get(f"{EDGES}?origin__exact=manual")) == {world["approved"].pk}
    assert listed(client.get(f"{EDGES}?source={world['hr'].pk}")) == {world["hidden"].pk}
    assert listed(client.get(f"{EDGES}?q=orders_report")) == {world["pending"].pk}
    page = client.get(EDGES).content.decode()
    assert "Pending queue (2)" in page


def test_pending_queue_lists_what_waits(world, steward):
    response = steward.get(f"{EDGES}pending/", follow=True)
    assert response.redirect_chain[-1][0].endswith("?status__exact=pending&o=1")
    # The steward of shop may not view hr, so hr's edge into shop is not listed.
    assert listed(response) == {world["pending"].pk}


def test_change_page_shows_evidence_and_field_edges_read_only(world, viewer):
    response = viewer.get(f"{EDGES}{world['pending'].pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "insert into orders_report select sum(total)" in page
    assert "sum(total)" in page and "revenue" in page
    assert 'name="status"' not in page  # decided through the actions only
    assert 'name="evidence-0-snippet"' not in page  # the inlines are read-only
    assert 'name="field_edges-0-transformation"' not in page


def test_steward_approves_and_rejects_in_bulk(world, steward):
    response = act(steward, "approve_selected", [world["pending"]])
    assert "1 edge(s) approved" in response.content.decode()
    pending = LineageEdge.objects.get(pk=world["pending"].pk)
    assert (pending.status, pending.decided_by.username) == (Status.APPROVED, "stella")
    act(steward, "reject_selected", [world["pending"], world["approved"]])
    assert set(
        LineageEdge.objects.filter(pk__in=[world["pending"].pk, world["approved"].pk]).values_list(
            "status", flat=True
        )
    ) == {Status.REJECTED}


def test_viewer_cannot_approve(world, viewer):
    response = act(viewer, "approve_selected", [world["pending"]])
    assert "0 edge(s) approved; 1 you may not change were skipped" in response.content.decode()
    assert LineageEdge.objects.get(pk=world["pending"].pk).status == Status.PENDING
    # An edge the viewer cannot see is not even selectable.
    act(viewer, "approve_selected", [world["hidden"]])
    assert LineageEdge.objects.get(pk=world["hidden"].pk).status == Status.PENDING
    assert viewer.get(f"{EDGES}{world['pending'].pk}/delete/").status_code == 403


def test_a_user_without_grants_sees_nothing(world, client):
    client.force_login(staff(world, "nobody"))
    assert client.get(EDGES).status_code == 403
    assert client.get(f"{EDGES}{world['pending'].pk}/change/").status_code == 403
    assert client.get(picture(world["clean"])).status_code == 404
    assert client.get(table_page(world["clean"])).status_code == 403
    act(client, "approve_selected", [world["pending"]])
    assert LineageEdge.objects.get(pk=world["pending"].pk).status == Status.PENDING


def test_anonymous_is_sent_to_login(world, client):
    response = client.get(picture(world["clean"]))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_table_page_has_the_panel_and_hides_what_is_not_granted(world, viewer):
    response = viewer.get(table_page(world["clean"]))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'class="lineage-picture"' in page
    assert f'data-url="{EDGES}table/{world["clean"].pk}/picture/"' in page
    assert "lineage/lineage-picture.js" in page
    assert "shop.main.orders_raw" in page and "shop.main.orders_report" in page
    assert "insert into orders_report select sum(total)" in page  # the evidence
    assert "1 more edge(s) come from tables you may not view" in page  # counted
    assert "salaries_secret" not in page
    assert f'data-edge-id="{world["hidden"].pk}"' not in page  # never listed


def test_picture_data_hides_tables_and_bounds_depth(world, viewer):
    data = viewer.get(picture(world["clean"])).json()
    up, down = data["upstream"], data["downstream"]
    assert {n["name"] for n in up["nodes"]} == {"orders_clean", "orders_raw"}
    assert up["hidden"] == 1
    assert "salaries_secret" not in str(data)
    assert [(e["id"], e["status"]) for e in down["edges"]] == [
        (world["pending"].pk, Status.PENDING)
    ]
    assert (up["depth"], down["depth"]) == (1, 1)
    for bad in ("0", "11", "x", ""):
        response = viewer.get(f"{EDGES}table/{world['clean'].pk}/picture/?depth={bad}")
        assert response.status_code == 400
        assert "depth" in response.json()
    assert viewer.get(picture(world["secret"])).status_code == 404


def test_depth_expands_the_picture(world, viewer):
    dashboard = Table.objects.create(source=world["shop"], schema="main", name="dashboard")
    record_edges(
        [EdgeSpec(world["report"], dashboard, Evidence(kind="manual", key="user:0"))],
        origin=Origin.MANUAL,
    )
    one = viewer.get(picture(world["clean"], 1)).json()["downstream"]
    two = viewer.get(picture(world["clean"], 2)).json()["downstream"]
    assert "dashboard" not in {n["name"] for n in one["nodes"]}
    assert {n["name"]: n["level"] for n in two["nodes"]}["dashboard"] == 2


def test_steward_adds_a_manual_edge_through_record_edges(world, steward):
    extra = Table.objects.create(source=world["shop"], schema="main", name="orders_extra")
    response = steward.post(
        f"{EDGES}add/",
        {"upstream": world["report"].pk, "downstream": extra.pk, "description": "export"},
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    edge = LineageEdge.objects.get(upstream=world["report"], downstream=extra)
    assert (edge.origin, edge.status, edge.description) == (
        Origin.MANUAL,
        Status.APPROVED,
        "export",
    )
    assert LineageEvidence.objects.filter(edge=edge, kind="manual").exists()


def test_adding_into_a_table_needs_change_on_it(world, viewer, steward):
    # A steward of shop may not draw an edge into hr, nor from a table they cannot see.
    for up, down in (("raw", "secret"), ("secret", "report")):
        response = steward.post(
            f"{EDGES}add/", {"upstream": world[up].pk, "downstream": world[down].pk}
        )
        assert response.status_code == 200
        assert response.context["adminform"].form.errors
    assert not LineageEdge.objects.filter(downstream=world["secret"]).exists()


def test_viewer_may_not_add(world, client):
    client.force_login(staff(world, "vera", "viewer"))
    assert client.get(f"{EDGES}add/").status_code == 403
