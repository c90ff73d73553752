"""OpenLineage ingestion: events from the official Python client over HTTP, run state across
START and COMPLETE in any order, dataset matching (scanned tables, external tables), malformed
events and refused ones (nothing written), batches, DatasetEvents and JobEvents."""

import gzip
import json
import os
import sqlite3
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import column_lineage_dataset, schema_dataset
from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport
from requests import HTTPError

from catalog.models import Field, Table
from catalog.services import source_scan
from governance.models import AccessLogEntry, ChangeLogEntry
from governance.services import grant
from governance.testing import client_for, make_user
from governance.tokens import token_create
from lineage.models import (
    FieldLineageEdge,
    LineageEdge,
    LineageEvidence,
    LineageJob,
    LineageNamespace,
    LineageRun,
)
from lineage.services import EdgeSpec, Evidence, decide, merge_table, record_edges
from sources.models import DataSource

URL = "/api/v1/lineage/openlineage"
PG = "postgres://db.example.com:5432"
LAKE = "s3://lake"
PRODUCER = "https://github.com/example/pipeline"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


@pytest.fixture
def shop(db):
    """A scanned PostgreSQL source with public.orders (id, amount)."""
    source = DataSource.objects.create(
        name="shop", kind="postgresql", host="db.example.com", port=5432, database="shop"
    )
    orders = Table.objects.create(source=source, schema="public", name="orders")
    Field.objects.create(table=orders, name="id", position=1, data_type="integer")
    Field.objects.create(table=orders, name="amount", position=2, data_type="decimal")
    return source


@pytest.fixture
def steward(db):
    return make_user("pipeline", roles=["Steward"])


def dataset(namespace, name, fields=None, lineage=None):
    facets = {}
    if fields:
        facets["schema"] = {
            "_producer": PRODUCER,
            "_schemaURL": "https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json",
            "fields": [{"name": n, "type": t, "description": f"the {n}"} for n, t in fields],
        }
    if lineage:
        facets["columnLineage"] = {
            "_producer": PRODUCER,
            "_schemaURL": "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json",
            "fields": {
                out: {
                    "inputFields": [
                        {
                            "namespace": ns,
                            "name": n,
                            "field": f,
                            "transformations": [{"type": "DIRECT", "subtype": "IDENTITY"}],
                        }
                        for ns, n, f in sources
                    ]
                }
                for out, sources in lineage.items()
            },
        }
    return {"namespace": namespace, "name": name, "facets": facets}


def event(event_type="COMPLETE", run_id=None, time="2026-11-22T03:00:00Z", **overrides):
    body = {
        "eventType": event_type,
        "eventTime": time,
        "run": {"runId": str(run_id or uuid.uuid4()), "facets": {}},
        "job": {"namespace": "etl", "name": "daily_revenue", "facets": {}},
        "inputs": [
            dataset(PG, "shop.public.orders"),
            dataset(LAKE, "fx/rates", fields=[("currency", "VARCHAR"), ("rate", "DOUBLE")]),
        ],
        "outputs": [
            dataset(
                LAKE,
                "marts/revenue",
                fields=[("order_id", "BIGINT"), ("amount_eur", "DECIMAL(12,2)")],
                lineage={
                    "order_id": [(PG, "shop.public.orders", "id")],
                    "amount_eur": [
                        (PG, "shop.public.orders", "amount"),
                        (LAKE, "fx/rates", "rate"),
                    ],
                },
            )
        ],
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
    }
    body.update(overrides)
    return body


def stored():
    return {
        model.__name__: model.objects.count()
        for model in (
            Table,
            Field,
            LineageEdge,
            FieldLineageEdge,
            LineageEvidence,
            LineageJob,
            LineageRun,
            ChangeLogEntry,
        )
    }


def post(client, body):
    return client.post(URL, json.dumps(body), content_type="application/json")


# --- the official client, over HTTP -----------------------------------------------------------


def official_event(event_type, run_id, time):
    orders = InputDataset(namespace=PG, name="shop.public.orders")
    rates = InputDataset(
        namespace=LAKE,
        name="fx/rates",
        facets={
            "schema": schema_dataset.SchemaDatasetFacet(
                fields=[
                    schema_dataset.SchemaDatasetFacetFields(name="currency", type="VARCHAR"),
                    schema_dataset.SchemaDatasetFacetFields(name="rate", type="DOUBLE"),
                ]
            )
        },
    )

    def source_field(namespace, name, field):
        return column_lineage_dataset.InputField(
            namespace=namespace,
            name=name,
            field=field,
            transformations=[
                column_lineage_dataset.Transformation(
                    type="INDIRECT" if field == "rate" else "DIRECT",
                    subtype="TRANSFORMATION",
                    description="amount * rate" if field != "id" else None,
                )
            ],
        )

    revenue = OutputDataset(
        namespace=LAKE,
        name="marts/revenue",
        facets={
            "schema": schema_dataset.SchemaDatasetFacet(
                fields=[
                    schema_dataset.SchemaDatasetFacetFields(
                        name="order_id", type="BIGINT", description="the order"
                    ),
                    schema_dataset.SchemaDatasetFacetFields(name="amount_eur", type="DECIMAL"),
                ]
            ),
            "columnLineage": column_lineage_dataset.ColumnLineageDatasetFacet(
                fields={
                    "order_id": column_lineage_dataset.Fields(
                        inputFields=[source_field(PG, "shop.public.orders", "id")]
                    ),
                    "amount_eur": column_lineage_dataset.Fields(
                        inputFields=[
                            source_field(PG, "shop.public.orders", "amount"),
                            source_field(LAKE, "fx/rates", "rate"),
                        ]
                    ),
                }
            ),
        },
    )
    return RunEvent(
        eventType=event_type,
        eventTime=time,
        run=Run(runId=str(run_id)),
        job=Job(namespace="etl", name="daily_revenue"),
        producer=PRODUCER,
        inputs=[orders, rates],
        outputs=[revenue],
    )


def official_client(live_server, key, **config):
    transport = HttpTransport(
        HttpConfig(
            url=live_server.url,
            endpoint="api/v1/lineage/openlineage",
            auth=ApiKeyTokenProvider({"api_key": key}),
            retry={"total": 0},
            **config,
        )
    )
    return OpenLineageClient(transport=transport)


@pytest.mark.django_db(transaction=True)
def test_official_client_events_create_tables_fields_edges_job_and_run(live_server, shop):
    user = make_user("pipeline", roles=["Steward"])
    grant(shop, user, "steward")
    key = token_create(user=user)[1]
    orders = Table.objects.get(source=shop, name="orders")
    run_id = uuid.uuid4()

    client = official_client(live_server, key)
    client.emit(official_event(RunState.START, run_id, "2026-11-22T03:00:00+00:00"))
    run = LineageRun.objects.get(run_id=run_id)
    assert run.state == "START" and run.ended_at is None
    assert run.started_at.isoformat() == "2026-11-22T03:00:00+00:00"

    # The COMPLETE event goes gzip-compressed, as the client sends it with compression set.
    gzip_client = official_client(live_server, key, compression="gzip")
    gzip_client.emit(official_event(RunState.COMPLETE, run_id, "2026-11-22T03:05:00+00:00"))
    # Closed connections end the server's request threads before the test database goes.
    client.close()
    gzip_client.close()

    run.refresh_from_db()
    assert run.state == "COMPLETE"
    assert run.started_at.isoformat() == "2026-11-22T03:00:00+00:00"
    assert run.ended_at.isoformat() == "2026-11-22T03:05:00+00:00"
    assert run.job == LineageJob.objects.get(namespace="etl", name="daily_revenue")
    rates = Table.objects.get(fqn="manual.s3://lake.fx/rates")
    revenue = Table.objects.get(fqn="manual.s3://lake.marts/revenue")
    assert {t.pk for t in run.inputs.all()} == {orders.pk, rates.pk}
    assert [t.pk for t in run.outputs.all()] == [revenue.pk]

    # The scanned table is reused and keeps its structure; the lake tables are external.
    assert Table.objects.filter(source=shop).count() == 1
    assert list(orders.fields.values_list("name", flat=True)) == ["id", "amount"]
    assert (revenue.kind, revenue.source, revenue.schema, revenue.name) == (
        "external",
        None,
        LAKE,
        "marts/revenue",
    )
    assert [(f.name, f.native_type, f.data_type, f.description) for f in revenue.fields.all()] == [
        ("order_id", "BIGINT", "integer", "the order"),
        ("amount_eur", "DECIMAL", "decimal", ""),
    ]
    assert [(f.name, f.data_type) for f in rates.fields.all()] == [
        ("currency", "string"),
        ("rate", "float"),
    ]

    edges = LineageEdge.objects.filter(downstream=revenue)
    assert {(e.upstream_id, e.origin, e.status) for e in edges} == {
        (orders.pk, "openlineage", "pending"),
        (rates.pk, "openlineage", "pending"),
    }
    evidence = LineageEvidence.objects.filter(edge__downstream=revenue)
    assert {(e.kind, e.key, e.run_id) for e in evidence} == {("openlineage", str(run_id), run.pk)}
    assert evidence.count() == 2  # START and COMPLETE are one piece of evidence per edge
    field_edges = {
        (f.upstream.name, f.downstream.name, f.transformation)
        for f in FieldLineageEdge.objects.filter(edge__downstream=revenue)
    }
    assert field_edges == {
        ("id", "order_id", "DIRECT/TRANSFORMATION"),
        ("amount", "amount_eur", "DIRECT/TRANSFORMATION: amount * rate"),
        ("rate", "amount_eur", "INDIRECT/TRANSFORMATION: amount * rate"),
    }
    assert ChangeLogEntry.objects.filter(action="create", object_id=revenue.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_official_client_sees_400_and_401(live_server, shop):
    user = make_user("pipeline", roles=["Steward"])
    # The client checks what it can (a run id is a UUID); Steward checks the rest.
    bad = official_event(RunState.START, uuid.uuid4(), "2026-11-22T03:00:00+00:00")
    bad.inputs[0].name = "x" * 300
    client = official_client(live_server, token_create(user=user)[1])
    with pytest.raises(HTTPError) as error:
        client.emit(bad)
    client.close()
    assert error.value.response.status_code == 400
    assert error.value.response.json()["pointer"] == "/inputs/0/name"
    good = official_event(RunState.START, uuid.uuid4(), "2026-11-22T03:00:00+00:00")
    client = official_client(live_server, "0" * 40)
    with pytest.raises(HTTPError) as error:
        client.emit(good)
    client.close()
    assert error.value.response.status_code == 401
    assert not LineageRun.objects.exists() and not Table.objects.exclude(source=shop).exists()


# --- runs -------------------------------------------------------------------------------------


def test_start_then_complete_and_complete_before_start(shop, steward):
    grant(shop, steward, "steward")
    client = client_for(steward)
    first, second = uuid.uuid4(), uuid.uuid4()
    response = post(client, event("START", first, "2026-11-22T03:00:00Z"))
    assert response.status_code == 201, response.content
    assert response.json() == {
        "run": str(first),
        "job": "etl/daily_revenue",
        "tables_created": 2,
        "fields_created": 4,
        "edges_created": 2,
        "field_edges_created": 3,
        "warnings": [],
    }
    response = post(client, event("COMPLETE", first, "2026-11-22T03:10:00Z"))
    assert response.status_code == 201, response.content
    assert response.json()["tables_created"] == response.json()["edges_created"] == 0
    run = LineageRun.objects.get(run_id=first)
    assert (run.state, run.started_at.minute, run.ended_at.minute) == ("COMPLETE", 0, 10)

    # Out of order: the COMPLETE arrives first, a late START must not undo it.
    post(client, event("COMPLETE", second, "2026-11-22T04:10:00Z"))
    post(client, event("START", second, "2026-11-22T04:00:00Z"))
    post(client, event("RUNNING", second, "2026-11-22T04:20:00Z"))
    run = LineageRun.objects.get(run_id=second)
    assert (run.state, run.started_at.hour, run.ended_at.minute) == ("COMPLETE", 4, 10)
    assert LineageJob.objects.count() == 1 and LineageEdge.objects.count() == 2


def test_a_run_id_reused_by_another_job_is_refused(shop, steward):
    grant(shop, steward, "steward")
    client = client_for(steward)
    run_id = uuid.uuid4()
    assert post(client, event("START", run_id)).status_code == 201
    before = stored()
    other = event("COMPLETE", run_id, job={"namespace": "etl", "name": "other"})
    response = post(client, other)
    assert response.status_code == 400
    assert response.json()["pointer"] == "/run/runId"
    assert stored() == before


# --- malformed events -------------------------------------------------------------------------


def without_run_id():
    body = event()
    del body["run"]["runId"]
    return body


def with_input(item):
    body = event()
    body["inputs"] = [item]
    return body


def schema_fields_not_a_list():
    body = event()
    body["outputs"][0]["facets"]["schema"]["fields"] = "order_id"
    return body


def column_lineage_without_field():
    body = event()
    del body["outputs"][0]["facets"]["columnLineage"]["fields"]["order_id"]["inputFields"][0][
        "field"
    ]
    return body


MALFORMED = [
    ("missing runId", without_run_id(), "/run/runId", "is required"),
    ("bad UUID", event(run={"runId": "1234"}), "/run/runId", "not a UUID"),
    ("eventTime not a time", event(time="yesterday"), "/eventTime", "ISO 8601"),
    ("eventTime a number", event(time=1700000000), "/eventTime", "must be a string"),
    ("no producer", event(producer=None), "/producer", "is required"),
    ("no schemaURL", {**event(), "schemaURL": ""}, "/schemaURL", "must not be empty"),
    ("unknown eventType", event("DONE"), "/eventType", "unknown event type"),
    ("job not an object", event(job="etl.daily"), "/job", "must be an object"),
    ("job without name", event(job={"namespace": "etl"}), "/job/name", "is required"),
    ("inputs not a list", event(inputs={"namespace": PG}), "/inputs", "must be an array"),
    ("input without name", with_input({"namespace": PG}), "/inputs/0/name", "is required"),
    ("input a string", with_input("orders"), "/inputs/0", "must be an object"),
    (
        "schema fields not a list",
        schema_fields_not_a_list(),
        "/outputs/0/facets/schema/fields",
        "must be an array",
    ),
    (
        "column lineage without field",
        column_lineage_without_field(),
        "/outputs/0/facets/columnLineage/fields/order_id/inputFields/0/field",
        "is required",
    ),
    ("an array of numbers", [1], "/0", "must be an object"),
    ("a batch with one bad event", [event(), event(run={"runId": "x"})], "/1/run/runId", "UUID"),
    ("an empty batch", [], "/", "holds no event"),
    ("not an event", {"hello": "world"}, "/eventTime", "is required"),
]


@pytest.mark.parametrize(
    ("body", "pointer", "message"),
    [pytest.param(body, pointer, message, id=name) for name, body, pointer, message in MALFORMED],
)
def test_malformed_events_are_400_naming_the_problem_and_store_nothing(
    shop, steward, body, pointer, message
):
    grant(shop, steward, "steward")
    before = stored()
    response = post(client_for(steward), body)
    assert response.status_code == 400, response.content
    assert response.json()["pointer"] == pointer.rstrip("/")
    assert message in response.json()["detail"]
    assert response.json()["detail"].startswith(pointer)
    assert stored() == before


def test_not_json_is_400(steward):
    client = client_for(steward)
    response = client.post(URL, b"{not json", content_type="application/json")
    assert response.status_code == 400
    assert "not JSON" in response.json()["detail"]
    response = client.post(URL, b"\xff\xfe", content_type="application/json")
    assert response.status_code == 400
    assert not Table.objects.exists() and not LineageRun.objects.exists()


def test_too_large_and_too_many_events(settings, steward):
    settings.OPENLINEAGE_MAX_BYTES = 1000
    client = client_for(steward)
    assert post(client, event()).status_code == 413
    bomb = gzip.compress(b" " * 10_000)
    response = client.post(URL, bomb, content_type="application/json", HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 413
    settings.OPENLINEAGE_MAX_BYTES = 2_621_440
    settings.OPENLINEAGE_MAX_EVENTS = 3
    response = post(client, [event() for _ in range(4)])
    assert response.status_code == 400 and "at most 3 events" in response.json()["detail"]
    assert not LineageRun.objects.exists()


# --- permissions ------------------------------------------------------------------------------


def test_anonymous_is_401():
    response = post(client_for(None), event())
    assert response.status_code == 401


def test_without_the_steward_role_nothing_is_written(shop):
    user = make_user("reader")
    grant(shop, user, "steward")
    before = stored()
    response = post(client_for(user), event())
    assert response.status_code == 403
    assert "lineage" in response.json()["detail"]
    assert stored() == before


def test_output_without_change_right_is_403_naming_it(shop, steward):
    """A grant to view the scanned source does not allow writing lineage into its tables."""
    grant(shop, steward, "viewer")
    body = event()
    body["inputs"] = [dataset(LAKE, "fx/rates", fields=[("rate", "DOUBLE")])]
    body["outputs"] = [dataset(PG, "shop.public.orders")]
    before = stored()
    response = post(client_for(steward), body)
    assert response.status_code == 403
    assert response.json()["datasets"] == [f"{PG}/shop.public.orders"]
    assert stored() == before  # not even the external input table or the job

    grant(shop, steward, "steward")
    assert post(client_for(steward), body).status_code == 201


def test_a_dataset_of_a_source_the_user_may_not_see_is_an_external_table(shop, steward):
    """A hidden source answers like a missing one: its namespace names no source for this
    user, so its datasets become external tables and the source's tables are untouched."""
    body = event()  # reads shop.public.orders, writes to the lake
    assert post(client_for(steward), body).status_code == 201
    outside = Table.objects.get(fqn=f"manual.{PG}.shop.public.orders")
    assert (outside.source, outside.kind) == (None, "external")
    orders = Table.objects.get(source=shop)
    assert not LineageEdge.objects.filter(upstream=orders).exists()
    grant(shop, steward, "viewer")
    body["run"]["runId"] = str(uuid.uuid4())
    assert post(client_for(steward), body).status_code == 201
    assert LineageEdge.objects.filter(upstream=orders).exists()
    # A steward of the source brings the stand-in in by mapping a namespace to it.
    LineageNamespace.objects.create(namespace="proxy://shop", source=shop)
    assert not Table.objects.filter(pk=outside.pk).exists()
    assert LineageEdge.objects.filter(upstream=orders).count() == 1


def test_external_tables_need_the_add_table_right(shop):
    user = make_user("narrow", perms=["lineage.add_lineageedge"])
    grant(shop, user, "steward")
    response = post(client_for(user), event())
    assert response.status_code == 403
    assert response.json()["datasets"] == [f"{LAKE}/fx/rates", f"{LAKE}/marts/revenue"]
    assert not Table.objects.exclude(source=shop).exists()


def test_another_users_external_table_needs_a_grant_to_write_into(shop, steward):
    grant(shop, steward, "steward")
    assert post(client_for(steward), event()).status_code == 201
    other = make_user("other", roles=["Steward"])
    grant(shop, other, "steward")
    response = post(client_for(other), event())
    assert response.status_code == 403
    assert f"{LAKE}/marts/revenue" in response.json()["datasets"]
    revenue = Table.objects.get(fqn="manual.s3://lake.marts/revenue")
    grant(revenue, other, "steward")
    grant(Table.objects.get(fqn="manual.s3://lake.fx/rates"), other, "viewer")
    assert post(client_for(other), event()).status_code == 201


# --- datasets ---------------------------------------------------------------------------------


def test_unknown_namespaces_become_external_tables_once(steward):
    body = event(
        inputs=[dataset("kafka://broker:9092", "clicks", fields=[("user_id", "long")])],
        outputs=[dataset("postgres://elsewhere:5432", "dw.public.clicks_daily")],
    )
    client = client_for(steward)
    assert post(client, body).status_code == 201
    assert post(client, {**body, "run": {"runId": str(uuid.uuid4())}}).status_code == 201
    tables = Table.objects.order_by("fqn")
    assert [(t.fqn, t.kind, t.source_id) for t in tables] == [
        ("manual.kafka://broker:9092.clicks", "external", None),
        ("manual.postgres://elsewhere:5432.dw.public.clicks_daily", "external", None),
    ]
    assert Field.objects.get(name="user_id").data_type == "integer"
    edge = LineageEdge.objects.get()
    assert edge.evidence.count() == 2  # one per run
    assert LineageRun.objects.count() == 2


def test_postgres_namespace_reuses_the_scanned_table_and_keeps_its_structure(shop, steward):
    grant(shop, steward, "steward")
    orders = Table.objects.get(source=shop)
    body = event(
        inputs=[dataset(LAKE, "raw/orders", fields=[("id", "INT"), ("amount", "DOUBLE")])],
        outputs=[
            dataset(
                "postgres://DB.example.com",  # default port, host in another case
                "shop.public.orders",
                fields=[("id", "TEXT"), ("extra", "TEXT")],
                lineage={"id": [(LAKE, "raw/orders", "id")], "gone": [(LAKE, "raw/orders", "x")]},
            )
        ],
    )
    response = post(client_for(steward), body)
    assert response.status_code == 201, response.content
    assert response.json()["tables_created"] == 1
    assert list(orders.fields.values_list("name", "data_type")) == [
        ("id", "integer"),
        ("amount", "decimal"),
    ]
    edge = LineageEdge.objects.get(downstream=orders)
    assert [(f.upstream.name, f.downstream.name) for f in edge.field_edges.all()] == [("id", "id")]
    assert response.json()["warnings"] == [
        "/outputs/0: no field shop.public.orders.gone in the catalog"
    ]


def test_a_namespace_mapping_names_the_source(shop, steward):
    grant(shop, steward, "steward")
    LineageNamespace.objects.create(namespace="postgres://pg-proxy:6432", source=shop)
    body = event(inputs=[dataset("postgres://pg-proxy:6432", "shop.public.orders")])
    assert post(client_for(steward), body).status_code == 201
    orders = Table.objects.get(source=shop)
    assert LineageEdge.objects.filter(upstream=orders).count() == 1
    assert not Table.objects.filter(schema="postgres://pg-proxy:6432").exists()


def test_mapping_a_namespace_later_brings_its_external_tables_into_the_source(shop, steward):
    proxy = "postgres://pg-proxy:6432"
    body = event(inputs=[dataset(proxy, "shop.public.orders"), dataset(proxy, "shop.public.gone")])
    grant(shop, steward, "viewer")
    assert post(client_for(steward), body).status_code == 201
    external = Table.objects.get(fqn=f"manual.{proxy}.shop.public.orders")
    assert LineageEdge.objects.filter(upstream=external).count() == 1
    LineageNamespace.objects.create(namespace=proxy, source=shop)
    orders = Table.objects.get(source=shop)
    assert not Table.objects.filter(pk=external.pk).exists()
    assert LineageEdge.objects.filter(upstream=orders).count() == 1
    # A dataset the source does not hold stays external until a scan finds it.
    assert Table.objects.filter(fqn=f"manual.{proxy}.shop.public.gone").exists()


def test_other_database_on_the_same_server_is_not_the_source(shop, steward):
    grant(shop, steward, "viewer")  # the column lineage still reads shop.public.orders
    body = event(inputs=[dataset(PG, "billing.public.orders")])
    assert post(client_for(steward), body).status_code == 201
    assert Table.objects.filter(fqn=f"manual.{PG}.billing.public.orders").exists()


def test_a_dataset_of_a_known_source_not_yet_scanned_is_created_under_it(settings, steward):
    """A pipeline writes a new table into a registered SQLite file before any scan: the
    table is created under the source, and the scan that follows fills in the same row
    rather than cataloguing a second one."""
    path = os.path.join(settings.SOURCE_SQLITE_DIR, "shop.sqlite3")
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE orders (id integer PRIMARY KEY, total real, placed text)")
    db.close()
    source = DataSource.objects.create(name="shop-file", kind="sqlite", database="shop.sqlite3")
    grant(source, steward, "steward")
    namespace = f"sqlite:{path}"
    body = event(
        inputs=[dataset(LAKE, "raw/orders", fields=[("id", "BIGINT")])],
        outputs=[
            dataset(
                namespace,
                "orders",
                fields=[("id", "INTEGER"), ("total", "REAL")],
                lineage={"id": [(LAKE, "raw/orders", "id")]},
            )
        ],
    )
    response = post(client_for(steward), body)
    assert response.status_code == 201, response.content
    orders = Table.objects.get(source=source)
    assert (orders.fqn, orders.kind, orders.schema) == ("shop-file.main.orders", "table", "main")
    assert list(orders.fields.values_list("name", flat=True)) == ["id", "total"]
    edge = LineageEdge.objects.get(downstream=orders)
    assert edge.upstream.fqn == "manual.s3://lake.raw/orders"

    counts = source_scan(source=source)
    assert counts["tables_added"] == 0
    assert Table.objects.get(source=source) == orders  # the same row, now scanned
    assert list(orders.fields.order_by("position").values_list("name", flat=True)) == [
        "id",
        "total",
        "placed",
    ]
    assert LineageEdge.objects.get(downstream=orders) == edge
    assert edge.field_edges.get().downstream.name == "id"
    # A later event names the scanned table; nothing new is created.
    again = post(client_for(steward), {**body, "run": {"runId": str(uuid.uuid4())}})
    assert again.json()["tables_created"] == 0


def test_a_new_table_under_a_source_needs_change_on_that_source(shop, steward):
    body = event(outputs=[dataset(PG, "shop.public.daily_revenue")])
    grant(shop, steward, "viewer")  # may read orders, not add to the source
    response = post(client_for(steward), body)
    assert response.status_code == 403
    assert response.json()["datasets"] == [f"{PG}/shop.public.daily_revenue"]
    admin_of_tables = make_user("tables", perms=["lineage.add_lineageedge", "catalog.add_table"])
    grant(shop, admin_of_tables, "viewer")
    assert post(client_for(admin_of_tables), body).status_code == 403
    assert not Table.objects.filter(name="daily_revenue").exists()
    grant(shop, steward, "steward")
    assert post(client_for(steward), body).status_code == 201
    daily = Table.objects.get(name="daily_revenue")
    assert (daily.source, daily.schema, daily.fqn) == (shop, "public", "shop.public.daily_revenue")


def test_a_scan_takes_over_the_external_tables_made_before_the_source_existed(settings, steward):
    """Events name a SQLite file no source points at yet: its tables are external. Once the
    file is registered and scanned, the scanned tables carry that lineage and the external
    ones are gone."""
    path = os.path.join(settings.SOURCE_SQLITE_DIR, "crm.sqlite3")
    namespace = f"sqlite:{path}"
    body = event(
        inputs=[dataset(namespace, "customers", fields=[("id", "INTEGER"), ("mail", "TEXT")])],
        outputs=[
            dataset(
                LAKE,
                "marts/contacts",
                fields=[("customer_id", "BIGINT")],
                lineage={"customer_id": [(namespace, "customers", "id")]},
            )
        ],
    )
    assert post(client_for(steward), body).status_code == 201
    external = Table.objects.get(fqn=f"manual.{namespace}.customers")
    contacts = Table.objects.get(fqn="manual.s3://lake.marts/contacts")
    edge = LineageEdge.objects.get(upstream=external)
    decide([edge], status="approved", user=steward)
    run = LineageRun.objects.get()

    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE customers (id integer PRIMARY KEY, email text)")
    db.close()
    source = DataSource.objects.create(name="crm", kind="sqlite", database="crm.sqlite3")
    counts = source_scan(source=source)

    assert counts["lineage_tables_adopted"] == 1
    assert not Table.objects.filter(pk=external.pk).exists()
    customers = Table.objects.get(source=source, name="customers")
    edge.refresh_from_db()
    assert (edge.upstream, edge.downstream, edge.status) == (customers, contacts, "approved")
    field_edge = edge.field_edges.get()  # matched by name; "mail" has no scanned field
    assert (field_edge.upstream.table, field_edge.upstream.name) == (customers, "id")
    assert list(run.inputs.all()) == [customers]
    assert edge.evidence.get().kind == "openlineage"
    # The next event names the scanned table (which the pipeline's user may now read).
    grant(source, steward, "viewer")
    again = post(client_for(steward), {**body, "run": {"runId": str(uuid.uuid4())}})
    assert again.json()["tables_created"] == 0
    assert LineageEdge.objects.count() == 1


def test_merging_two_tables_joins_their_edges_and_drops_the_one_between_them(shop, steward):
    orders = Table.objects.get(source=shop)
    twin = Table.objects.create(source=None, schema=PG, name="shop.public.orders", kind="external")
    Field.objects.create(table=twin, name="AMOUNT", position=1)
    report = Table.objects.create(source=shop, schema="public", name="report")
    Field.objects.create(table=report, name="total", position=1)

    def spec(up, down, key, fields=()):
        evidence = Evidence(kind=LineageEvidence.Kind.SQL, key=key)
        return EdgeSpec(up, down, evidence, list(fields))

    (mine,) = record_edges([spec(orders, report, "a")], origin="inferred")[0]
    total = report.fields.get()
    (theirs,) = record_edges(
        [spec(twin, report, "b", [(twin.fields.get(), total, "")])], origin="inferred"
    )[0]
    decide([theirs], status="rejected", user=steward)
    record_edges([spec(twin, orders, "c")], origin="inferred")

    merge_table(twin, orders)

    assert not Table.objects.filter(pk=twin.pk).exists()
    edge = LineageEdge.objects.get()  # twin -> orders is gone, twin -> report joined mine
    assert edge.pk == mine.pk
    assert edge.status == "rejected"  # the decision taken on either stands
    assert sorted(edge.evidence.values_list("key", flat=True)) == ["a", "b"]
    assert [(f.upstream.name, f.downstream.name) for f in edge.field_edges.all()] == [
        ("amount", "total")
    ]


def test_a_batch_of_events_is_one_transaction(shop, steward):
    grant(shop, steward, "steward")
    run_id = uuid.uuid4()
    batch = [event("START", run_id, "2026-11-22T03:00:00Z"), event("COMPLETE", run_id)]
    response = post(client_for(steward), batch)
    assert response.status_code == 201, response.content
    assert response.json()["run"] == [str(run_id), str(run_id)]
    assert response.json()["edges_created"] == 2
    assert LineageRun.objects.get().state == "COMPLETE"


def test_dataset_and_job_events(steward):
    client = client_for(steward)
    dataset_event = {
        "eventTime": "2026-11-22T03:00:00Z",
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
        "dataset": dataset(LAKE, "raw/users", fields=[("id", "INT"), ("email", "STRING")]),
    }
    response = post(client, dataset_event)
    assert response.status_code == 201, response.content
    assert response.json()["run"] is None and response.json()["fields_created"] == 2
    job_event = {
        "eventTime": "2026-11-22T03:00:00Z",
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent",
        "job": {"namespace": "etl", "name": "users_copy"},
        "inputs": [dataset(LAKE, "raw/users")],
        "outputs": [dataset(LAKE, "clean/users")],
    }
    response = post(client, job_event)
    assert response.status_code == 201, response.content
    edge = LineageEdge.objects.get()
    assert (edge.upstream.name, edge.downstream.name) == ("raw/users", "clean/users")
    assert edge.evidence.get().run is None
    assert LineageJob.objects.filter(name="users_copy").exists()
    assert not LineageRun.objects.exists()


# --- cost -------------------------------------------------------------------------------------


def distinct_events(prefix, count):
    """Events of `count` jobs, each reading the scanned orders and its own lake dataset and
    writing its own table, with schema and column lineage."""
    return [
        event(
            job={
                "namespace": "etl",
                "name": f"{prefix}_{i}",
                "facets": {"owner": {"name": prefix}},
            },
            inputs=[
                dataset(PG, "shop.public.orders"),
                dataset(LAKE, f"{prefix}/in_{i}", fields=[("key", "BIGINT")]),
            ],
            outputs=[
                dataset(
                    LAKE,
                    f"{prefix}/out_{i}",
                    fields=[("key", "BIGINT"), ("amount", "DOUBLE")],
                    lineage={
                        "key": [(LAKE, f"{prefix}/in_{i}", "key")],
                        "amount": [(PG, "shop.public.orders", "amount")],
                    },
                )
            ],
        )
        for i in range(count)
    ]


def test_queries_per_request_do_not_grow_with_the_batch(shop, steward):
    grant(shop, steward, "steward")
    client = client_for(steward)
    queries = {}
    for count in (10, 50):
        with CaptureQueriesContext(connection) as first:
            response = post(client, distinct_events(f"b{count}", count))
        assert response.status_code == 201, response.content
        assert response.json()["tables_created"] == 2 * count
        # The same jobs again: new runs on known tables, jobs and edges.
        with CaptureQueriesContext(connection) as repeat:
            response = post(client, distinct_events(f"b{count}", count))
        assert response.status_code == 201, response.content
        assert response.json()["tables_created"] == response.json()["edges_created"] == 0
        queries[count] = (len(first), len(repeat))
    # Looked up event by event, the first batch of 50 took some 2,700 queries. Now only the
    # bulk inserts may take one more for more rows (SQLite splits them at its parameter limit).
    assert queries[50][0] <= queries[10][0] + 15, queries
    assert queries[50][1] <= queries[10][1] + 2, queries
    assert max(queries[50]) < 60, queries
    assert LineageRun.objects.count() == 120
    assert FieldLineageEdge.objects.count() == 120
    assert LineageEvidence.objects.count() == 2 * 120  # one per run and edge


def test_new_external_tables_belong_to_their_creator_and_the_grants_are_logged(shop, steward):
    grant(shop, steward, "steward")
    assert post(client_for(steward), event()).status_code == 201
    revenue = Table.objects.get(fqn="manual.s3://lake.marts/revenue")
    user = type(steward).objects.get(pk=steward.pk)  # no cached permissions
    assert all(user.has_perm(f"catalog.{a}_table", revenue) for a in ("view", "change", "delete"))
    grants = AccessLogEntry.objects.filter(action="grant", object_id=revenue.pk)
    assert sorted(e.detail["permission"] for e in grants) == [
        "change_table",
        "delete_table",
        "view_table",
    ]
    assert {(e.user_name, e.object_repr, e.detail["holder"]) for e in grants} == {
        ("pipeline", revenue.fqn, "pipeline")
    }
