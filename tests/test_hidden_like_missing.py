"""A hidden object answers exactly like a missing one, in every write that names objects:
bulk import, OpenLineage, table and field creation, lineage by ids, SQL lineage.

Each oracle test sends one request while the object exists but is hidden from the user,
rolls back whatever that wrote, deletes the object and sends the same request again: the
status and the body must be identical. Where a name is unique across the catalog (a source's
name, a manual or external table's), a conflict cannot look like a missing object; there the
answer is the same whether the other object is hidden or visible, and names nothing of it."""

import json
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction

from catalog.models import Field, Table
from governance.services import grant
from governance.testing import client_for, make_user
from lineage.models import LineageNamespace
from sources.models import DataSource

HR = "postgres://hr-db.internal:5432"
LAKE = "s3://lake"


@pytest.fixture
def world(db):
    """shop (granted to the user as steward) and hr (not granted: hidden), a table each."""
    shop = DataSource.objects.create(name="shop", kind="sqlite", database="shop.db")
    hr = DataSource.objects.create(
        name="hr", kind="postgresql", host="hr-db.internal", port=5432, database="hr"
    )
    orders = Table.objects.create(source=shop, schema="main", name="orders")
    payroll = Table.objects.create(source=hr, schema="public", name="payroll")
    for table in (orders, payroll):
        Field.objects.create(table=table, name="id", position=1)
    user = make_user("sam", roles=["Steward"])
    grant(shop, user, "steward")
    return {"shop": shop, "hr": hr, "orders": orders, "payroll": payroll, "user": user}


def answer(response):
    body = (
        response.json() if response.get("Content-Type", "").startswith("application/json") else None
    )
    return response.status_code, body


def hidden_then_missing(ask, hidden):
    """(answer while `hidden` exists, answer once it is deleted); the first one's writes are
    rolled back so that both requests meet the same catalog."""
    savepoint = transaction.savepoint()
    first = answer(ask())
    transaction.savepoint_rollback(savepoint)
    type(hidden).objects.filter(pk=hidden.pk).delete()
    return first, answer(ask())


def hidden_then_visible(ask, hidden, user):
    """(answer while the user may not see `hidden`, answer once they may view it)."""
    savepoint = transaction.savepoint()
    first = answer(ask())
    transaction.savepoint_rollback(savepoint)
    grant(hidden, user, "viewer")
    return first, answer(ask())


# --- bulk import --------------------------------------------------------------------------


def import_file(user, doc, mode):
    upload = SimpleUploadedFile("catalog.json", json.dumps(doc).encode(), "application/json")
    body = {"file": upload, "mode": mode}
    return client_for(user).post("/api/v1/bulk/import", body, format="multipart")


@pytest.mark.parametrize("mode", ["create", "upsert"])
@pytest.mark.parametrize("name", ["payroll", "new_table"])
def test_bulk_import_of_a_table_under_a_hidden_source(world, mode, name):
    doc = {"tables": [{"source": "hr", "schema": "public", "name": name}]}
    hidden, missing = hidden_then_missing(
        lambda: import_file(world["user"], doc, mode), world["hr"]
    )
    assert hidden == missing
    assert missing[0] == 400 and missing[1]["errors"][0]["message"] == "no data source named 'hr'"


def test_bulk_import_of_lineage_from_a_hidden_table(world):
    doc = {"lineage": [{"source": "hr.public.payroll", "target": "shop.main.orders"}]}
    hidden, missing = hidden_then_missing(
        lambda: import_file(world["user"], doc, "upsert"), world["payroll"]
    )
    assert hidden == missing and missing[0] == 400


def test_bulk_import_of_a_manual_table_whose_name_is_taken(world):
    """Manual tables are unique by name across the catalog: taken is taken, seen or not."""
    taken = Table.objects.create(source=None, schema="finance", name="budget")
    doc = {"tables": [{"schema": "finance", "name": "budget"}]}
    hidden, visible = hidden_then_visible(
        lambda: import_file(world["user"], doc, "create"), taken, world["user"]
    )
    assert hidden == visible and visible[0] == 403  # an existing table they may not change
    assert "already exists" in visible[1]["errors"][0]["message"]


# --- OpenLineage --------------------------------------------------------------------------


def lineage_event(inputs, outputs):
    def datasets(items):
        return [{"namespace": namespace, "name": name} for namespace, name in items]

    return {
        "eventType": "COMPLETE",
        "eventTime": "2026-11-22T03:00:00Z",
        "run": {"runId": "6f3c1d2e-8a51-4c39-9e1a-2b7d5f0c9a11"},
        "job": {"namespace": "etl", "name": "payroll_costs"},
        "inputs": datasets(inputs),
        "outputs": datasets(outputs),
        "producer": "https://example.com/pipeline",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    }


def post_events(user, body):
    return client_for(user).post(
        "/api/v1/lineage/openlineage", json.dumps(body), content_type="application/json"
    )


@pytest.mark.parametrize(
    ("inputs", "outputs"),
    [
        ([(HR, "hr.public.payroll")], [(LAKE, "costs")]),  # reads a hidden table
        ([(HR, "hr.public.bonus")], [(LAKE, "costs")]),  # a table the hidden source lacks
        ([(LAKE, "costs")], [(HR, "hr.public.payroll_copy")]),  # writes into the source
    ],
)
def test_openlineage_datasets_of_a_hidden_source(world, inputs, outputs):
    body = lineage_event(inputs, outputs)
    hidden, missing = hidden_then_missing(lambda: post_events(world["user"], body), world["hr"])
    assert hidden == missing
    assert missing[0] == 201  # as for any namespace that names no source: external tables
    assert Table.objects.filter(source=None, schema=HR).exists()


def test_openlineage_namespace_mapped_to_a_hidden_source(world):
    LineageNamespace.objects.create(namespace="proxy://hr", source=world["hr"])
    body = lineage_event([("proxy://hr", "public.payroll")], [(LAKE, "costs")])
    hidden, missing = hidden_then_missing(lambda: post_events(world["user"], body), world["hr"])
    assert hidden == missing and missing[0] == 201


def test_openlineage_external_table_whose_name_is_taken(world):
    """External tables are unique by namespace and name: one the user may not see is a
    conflict, answered as for one they may see but not write."""
    other = make_user("ola", roles=["Steward"])
    assert post_events(other, lineage_event([], [(LAKE, "costs")])).status_code == 201
    costs = Table.objects.get(fqn=f"manual.{LAKE}.costs")
    body = lineage_event([(LAKE, "raw")], [(LAKE, "costs")])
    hidden, visible = hidden_then_visible(
        lambda: post_events(world["user"], body), costs, world["user"]
    )
    assert hidden == visible and visible[0] == 403
    assert visible[1]["datasets"] == [f"{LAKE}/costs"]


def test_a_run_of_another_job_is_refused_without_naming_that_job(world):
    run = str(uuid.uuid4())
    secret_job = {**lineage_event([], [(LAKE, "costs")]), "run": {"runId": run}}
    assert post_events(make_user("ola", roles=["Steward"]), secret_job).status_code == 201
    mine = {**lineage_event([], [(LAKE, "mine")]), "run": {"runId": run}}
    mine["job"] = {"namespace": "etl", "name": "mine"}
    status, body = answer(post_events(world["user"], mine))
    assert (status, body["pointer"]) == (400, "/run/runId")
    assert "payroll_costs" not in body["detail"]


# --- tables, fields, lineage by ids, SQL --------------------------------------------------


@pytest.mark.parametrize("name", ["payroll", "new_table"])
def test_table_create_under_a_hidden_source(world, name):
    body = {"source": world["hr"].pk, "schema": "public", "name": name}

    def ask():
        return client_for(world["user"]).post("/api/v1/catalog/tables/", body, format="json")

    hidden, missing = hidden_then_missing(ask, world["hr"])
    assert hidden == missing
    assert missing == (400, {"source": [f'Invalid pk "{world["hr"].pk}" - object does not exist.']})


def test_manual_table_create_whose_name_is_taken(world):
    taken = Table.objects.create(source=None, schema="finance", name="budget")

    def ask():
        body = {"schema": "finance", "name": "budget"}
        return client_for(world["user"]).post("/api/v1/catalog/tables/", body, format="json")

    hidden, visible = hidden_then_visible(ask, taken, world["user"])
    assert hidden == visible and visible[0] == 400


@pytest.mark.parametrize("path", ["fields/", "fields/batch"])
def test_field_create_under_a_hidden_table(world, path):
    payroll = world["payroll"]
    body = {"name": "salary"} if path == "fields/" else [{"name": "salary"}]

    def ask():
        url = f"/api/v1/catalog/tables/{payroll.pk}/{path}"
        return client_for(world["user"]).post(url, body, format="json")

    hidden, missing = hidden_then_missing(ask, payroll)
    assert hidden == missing and missing[0] == 404


@pytest.mark.parametrize("kind", ["table", "field"])
def test_lineage_by_ids_from_a_hidden_object(world, kind):
    if kind == "table":
        hidden_object = world["payroll"]
        body = {"source_table_id": hidden_object.pk, "target_table_id": world["orders"].pk}
    else:
        hidden_object = world["payroll"].fields.get()
        body = {
            "source_field_id": hidden_object.pk,
            "target_field_id": world["orders"].fields.get().pk,
        }

    def ask():
        return client_for(world["user"]).post(f"/api/v1/lineage/{kind}", body, format="json")

    hidden, missing = hidden_then_missing(ask, hidden_object)
    assert hidden == missing and missing[0] == 400


@pytest.mark.parametrize("by", ["source_id", "table name"])
def test_sql_lineage_naming_a_hidden_object(world, by):
    if by == "source_id":
        body, hidden_object = {"sql": "select 1", "source_id": world["hr"].pk}, world["hr"]
    else:
        sql = "insert into main.orders select id from public.payroll"
        body, hidden_object = {"sql": sql, "dialect": "postgres", "apply": True}, world["payroll"]

    def ask():
        return client_for(world["user"]).post("/api/v1/lineage/sql", body, format="json")

    hidden, missing = hidden_then_missing(ask, hidden_object)
    assert hidden == missing


def test_source_create_whose_name_is_taken(world):
    """A source's name is unique across the console: the conflict reads the same whether the
    other source is hidden or visible, and names nothing of it."""

    def ask():
        body = {"name": "hr", "kind": "sqlite", "database": "other.db"}
        return client_for(world["user"]).post("/api/v1/sources/", body, format="json")

    hidden, visible = hidden_then_visible(ask, world["hr"], world["user"])
    assert hidden == visible == (400, {"name": ["data source with this name already exists."]})
