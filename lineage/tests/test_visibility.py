"""An edge is visible only to whoever may view both its tables: one rule, in the edge's
restrict(), and every path gets it from there (API, admin, change log, jobs, field edges and
evidence). Each path is asked about an edge whose upstream table is hidden, and about one
whose tables are both visible."""

import pytest
from django.contrib.contenttypes.models import ContentType

from catalog.models import Field, Table
from governance.models import ChangeLogEntry, JobRun
from governance.services import grant
from governance.testing import client_for, make_user
from lineage.models import FieldLineageEdge, LineageEdge, LineageEvidence, Origin
from lineage.services import EdgeSpec, Evidence, record_edges
from sources.models import DataSource

BASE = "/api/v1/lineage"
ADMIN = "/admin/lineage/lineageedge/"


def edge(up, down, fields=()):
    spec = EdgeSpec(up, down, Evidence(kind="manual", key="user:0", snippet="by hand"), fields)
    (recorded,), _ = record_edges([spec], origin=Origin.INFERRED)
    return recorded


@pytest.fixture
def world(db):
    """shop.raw -> shop.clean (both visible to shop's users); hr.payroll -> shop.clean (its
    upstream table hidden from them), each with a field edge and evidence."""
    shop = DataSource.objects.create(name="shop", kind="sqlite", database="shop.db")
    hr = DataSource.objects.create(name="hr", kind="sqlite", database="hr.db")
    raw, clean = (
        Table.objects.create(source=shop, schema="main", name=n) for n in ["raw", "clean"]
    )
    payroll = Table.objects.create(source=hr, schema="main", name="payroll")
    ids = {t: Field.objects.create(table=t, name="id", position=1) for t in (raw, clean, payroll)}
    return {
        "shop": shop,
        "seen": edge(raw, clean, [(ids[raw], ids[clean], "")]),
        "hidden": edge(payroll, clean, [(ids[payroll], ids[clean], "")]),
    }


@pytest.fixture
def viewer(world):
    user = make_user("vera", staff=True)
    grant(world["shop"], user, "steward")
    return user


def test_restrict_hides_an_edge_whose_upstream_is_hidden_for_every_action(world, viewer):
    for action in ("view", "change", "delete"):
        assert list(LineageEdge.objects.restrict(viewer, action)) == [world["seen"]], action
    seen = world["seen"]
    assert {f.edge_id for f in FieldLineageEdge.objects.restrict(viewer, "view")} == {seen.pk}
    assert {e.edge_id for e in LineageEvidence.objects.restrict(viewer, "view")} == {seen.pk}
    # A grant on the upstream table's source makes the edge visible.
    grant(DataSource.objects.get(name="hr"), viewer, "viewer")
    assert LineageEdge.objects.restrict(viewer, "view").count() == 2


def test_a_global_edge_permission_still_needs_both_tables(world):
    user = make_user("auditor", perms=["lineage.view_lineageedge"])
    assert not LineageEdge.objects.restrict(user, "view").exists()
    grant(world["shop"], user, "viewer")
    assert list(LineageEdge.objects.restrict(user, "view")) == [world["seen"]]


def test_the_change_log_lists_only_edges_whose_two_tables_are_visible(world, viewer, client):
    edges = ContentType.objects.get_for_model(LineageEdge)
    logged = ChangeLogEntry.objects.restrict(viewer, "view").filter(content_type=edges)
    assert {entry.object_id for entry in logged} == {world["seen"].pk}
    client.force_login(viewer)
    page = client.get("/admin/governance/changelogentry/").content.decode()
    assert "shop.main.raw -&gt; shop.main.clean" in page
    assert "payroll" not in page


def test_jobs_about_an_edge_follow_its_visibility(world, viewer):
    edges = ContentType.objects.get_for_model(LineageEdge)
    for name in ("seen", "hidden"):
        JobRun.objects.create(
            name=f"job on {name}", task="t", target_type=edges, target_id=world[name].pk
        )
    listed = client_for(viewer).get("/api/v1/jobs/").json()["results"]
    assert [job["name"] for job in listed] == ["job on seen"]


def test_the_api_answers_a_hidden_edge_like_a_missing_one(world, viewer):
    client = client_for(viewer)
    listed = client.get(f"{BASE}/").json()
    assert [e["id"] for e in listed["results"]] == [world["seen"].pk]
    assert [e["id"] for e in client.get(f"{BASE}/pending").json()["results"]] == [world["seen"].pk]
    hidden, missing = world["hidden"].pk, 999999
    for method, suffix in (("get", "/"), ("post", "/approve"), ("delete", "/")):
        answers = [getattr(client, method)(f"{BASE}/{pk}{suffix}") for pk in (hidden, missing)]
        assert [r.status_code for r in answers] == [404, 404], suffix
        assert answers[0].json() == answers[1].json()
    assert LineageEdge.objects.filter(pk=hidden).exists()


def test_the_admin_answers_a_hidden_edge_like_a_missing_one(world, viewer, client):
    client.force_login(viewer)
    listed = client.get(ADMIN).context["cl"].result_list
    assert [e.pk for e in listed] == [world["seen"].pk]
    answers = [client.get(f"{ADMIN}{pk}/change/") for pk in (world["hidden"].pk, 999999)]
    assert [r.status_code for r in answers] == [302, 302]
    assert answers[0]["Location"] == answers[1]["Location"]
