#!/usr/bin/env python3
"""OpenLineage ingestion: events per second through POST /api/v1/lineage/openlineage.

Recreates the metadata database (its name must contain "bench"), migrates it, then in-process
registers a scanned PostgreSQL source of --tables tables (10 fields each, bulk-created) and a
Steward-role user granted steward on it, with an API token sent as `Authorization: Bearer`.
One client (Django's test client, the whole request path: middleware, authentication,
throttling, the view, the database) then posts --events COMPLETE events, one per request or
--batch per request: event i is a run of job i % --jobs, which reads two datasets (a scanned
table and an external lake table) and writes its own external table, with schema and
columnLineage facets (3 output fields fed by 4 input fields). A job's first run creates its
tables, fields and edges; later runs add a run and evidence to the existing edges.

Prints events/s overall and for first and repeat runs, request latency p50/p95/p99, SQL
queries per request, what was written, and the load average before and after.

    .venv/bin/python bench/openlineage_ingest.py [--events 2000] [--jobs 200] [--batch 1]
"""

import argparse
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/steward_bench_openlineage"
URL = "/api/v1/lineage/openlineage"
PG = "postgres://warehouse.example.com:5432"
LAKE = "s3://lake"
PRODUCER = "https://example.com/bench-pipeline"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--jobs", type=int, default=200, help="distinct jobs (first runs)")
    parser.add_argument("--tables", type=int, default=100, help="tables of the scanned source")
    parser.add_argument("--batch", type=int, default=1, help="events per request")
    args = parser.parse_args()
    if min(args.events, args.jobs, args.tables, args.batch) < 1:
        parser.error("every count must be positive")
    return args


def seed(tables):
    from django.contrib.auth.models import Group

    from catalog.models import Field, Table
    from governance.services import grant
    from governance.testing import make_user
    from governance.tokens import token_create
    from sources.models import DataSource

    source = DataSource.objects.create(
        name="warehouse", kind="postgresql", host="warehouse.example.com", port=5432, database="dw"
    )
    rows = Table.objects.bulk_create(
        Table(source=source, schema="sales", name=f"t{i:04d}", fqn=f"warehouse.sales.t{i:04d}")
        for i in range(tables)
    )
    Field.objects.bulk_create(
        Field(table=t, name=f"c{j}", position=j + 1, data_type="integer")
        for t in rows
        for j in range(10)
    )
    user = make_user("pipeline")
    user.groups.add(Group.objects.get(name="Steward"))
    grant(source, user, "steward")
    return token_create(user=user)[1]


def dataset(namespace, name, fields=None, lineage=None):
    facets = {}
    if fields:
        facets["schema"] = {
            "_producer": PRODUCER,
            "_schemaURL": "https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json",
            "fields": [{"name": n, "type": t} for n, t in fields],
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
                            "transformations": [{"type": "DIRECT", "subtype": "TRANSFORMATION"}],
                        }
                        for ns, n, f in inputs
                    ]
                }
                for out, inputs in lineage.items()
            },
        }
    return {"namespace": namespace, "name": name, "facets": facets}


def event(i, jobs, tables, start):
    job = i % jobs
    scanned = f"dw.sales.t{job % tables:04d}"
    lake = f"raw/feed_{job % 50:03d}"
    output = f"marts/job_{job:04d}"
    return {
        "eventType": "COMPLETE",
        "eventTime": (start + timedelta(seconds=i)).isoformat(),
        "run": {"runId": str(uuid.uuid4()), "facets": {}},
        "job": {"namespace": "bench", "name": f"job_{job:04d}", "facets": {}},
        "inputs": [
            dataset(PG, scanned, fields=[("c0", "integer"), ("c1", "integer")]),
            dataset(LAKE, lake, fields=[("key", "BIGINT"), ("value", "DOUBLE")]),
        ],
        "outputs": [
            dataset(
                LAKE,
                output,
                fields=[("id", "BIGINT"), ("total", "DECIMAL(12,2)"), ("label", "VARCHAR")],
                lineage={
                    "id": [(PG, scanned, "c0")],
                    "total": [(PG, scanned, "c1"), (LAKE, lake, "value")],
                    "label": [(LAKE, lake, "key")],
                },
            )
        ],
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
    }


def run(args):
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from catalog.models import Field, Table
    from lineage.models import FieldLineageEdge, LineageEdge, LineageEvidence, LineageRun

    key = seed(args.tables)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    events = [event(i, args.jobs, args.tables, start) for i in range(args.events)]
    bodies = [
        json.dumps(events[i] if args.batch == 1 else events[i : i + args.batch])
        for i in range(0, len(events), args.batch)
    ]
    first_runs = -(-args.jobs // args.batch)  # requests holding first runs of the jobs
    latencies, queries = [], []
    load_before = os.getloadavg()
    began = time.perf_counter()
    for body in bodies:
        with CaptureQueriesContext(connection) as captured:
            t0 = time.perf_counter()
            response = client.post(URL, body, content_type="application/json")
            latencies.append((time.perf_counter() - t0) * 1000)
        if response.status_code != 201:
            sys.exit(f"unexpected {response.status_code}: {response.content[:500]!r}")
        queries.append(len(captured.captured_queries))
        reset_queries()  # the captured-query log is bounded; keep it from filling
    wall = time.perf_counter() - began
    load_after = os.getloadavg()
    first = latencies[:first_runs]
    repeat = latencies[first_runs:]
    first_events = min(args.jobs, args.events)

    def rate(events_count, ms):
        return round(events_count / (sum(ms) / 1000), 1) if ms else None

    return {
        "events": args.events,
        "batch": args.batch,
        "requests": len(bodies),
        "wall_s": round(wall, 2),
        "events_per_s": round(args.events / wall, 1),
        "first_run_events_per_s": rate(first_events, first),
        "repeat_run_events_per_s": rate(args.events - first_events, repeat),
        "latency_ms": benchlib.summarize(latencies),
        "queries_per_request": {
            "first_run_median": sorted(queries[:first_runs])[len(queries[:first_runs]) // 2],
            "repeat_median": (
                sorted(queries[first_runs:])[len(queries[first_runs:]) // 2]
                if queries[first_runs:]
                else None
            ),
        },
        "written": {
            "external_tables": Table.objects.filter(source=None).count(),
            "fields_on_external_tables": Field.objects.filter(table__source=None).count(),
            "edges": LineageEdge.objects.count(),
            "field_edges": FieldLineageEdge.objects.count(),
            "evidence": LineageEvidence.objects.count(),
            "runs": LineageRun.objects.count(),
        },
        "load_average": {
            "before_1_5_15": [round(x, 2) for x in load_before],
            "after_1_5_15": [round(x, 2) for x in load_after],
        },
    }


def main():
    args = parse_args()
    benchlib.use_project_python()
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # One client posting thousands of events must not meet the per-user throttle.
    benchlib.configure_env(DEBUG="0", THROTTLE_USER="100000000/min")
    print(f"Recreating {os.environ['DATABASE_URL']} and migrating ...", flush=True)
    benchlib.recreate_database(os.environ["DATABASE_URL"])
    benchlib.migrate()
    benchlib.setup_django()
    result = run(args)
    result["machine"] = benchlib.machine_info()
    benchlib.print_table(
        ["events", "batch", "wall s", "events/s", "first-run ev/s", "repeat ev/s", "p50 ms",
         "p95 ms", "p99 ms", "queries first", "queries repeat"],
        [[
            result["events"], result["batch"], result["wall_s"], result["events_per_s"],
            result["first_run_events_per_s"], result["repeat_run_events_per_s"],
            result["latency_ms"]["p50_ms"], result["latency_ms"]["p95_ms"],
            result["latency_ms"]["p99_ms"], result["queries_per_request"]["first_run_median"],
            result["queries_per_request"]["repeat_median"],
        ]],
        title="OpenLineage ingestion (one client, Django test client, PostgreSQL)",
    )  # fmt: skip
    print("\nwritten:", json.dumps(result["written"]))
    load = result["load_average"]
    print(f"load average 1/5/15: before {load['before_1_5_15']}, after {load['after_1_5_15']}")
    print(f"results: {benchlib.write_json('openlineage_ingest', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
