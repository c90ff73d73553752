#!/usr/bin/env python3
"""Bulk import and export of the catalog: wall time and peak memory per format and size.

For each N (default 1,000 and 10,000), on its own PostgreSQL database (default
postgres://postgres@127.0.0.1:5432/steward_bench_bulk, dropped and recreated, migrated in a
separate process):
  1. generates N tables of 25 fields each (one tag per table, every fifth field tagged, one
     accepted classification per table) in one source, and 2 lineage edges per table (to
     the next two tables) with one field edge each, with bulk inserts;
  2. for each format (json, csv, yaml, xlsx):
       export  governance.bulk.exporter.bulk_export() as a superuser, streamed to a file,
       import  the catalog tables are emptied (TRUNCATE ... CASCADE, and the change log), then
               governance.bulk.importer.bulk_import(mode="create") of that file,
     each in a fresh process that reports its wall time and peak RSS (getrusage ru_maxrss)
     and the RSS it had after Django's setup (baseline);
  3. for JSON also a second import of the same file in upsert mode (everything unchanged):
     wall time, and the change-log rows it wrote (must be 0).
Goals (JSON and CSV at 10,000 tables): import under 60 s, export under 30 s, peak RSS under
500 MB; figures for both sizes show how they grow.

    .venv/bin/python bench/bulk.py [N ...] [--formats json,csv,yaml,xlsx]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/steward_bench_bulk"
FIELDS_PER_TABLE = 25
EDGES_PER_TABLE = 2
FORMATS = ("json", "csv", "yaml", "xlsx")
GOALS = {"import_s": 60, "export_s": 30, "peak_rss_mb": 500}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", type=int, nargs="*", default=[1000, 10000])
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument(
        "--child", nargs=4, metavar=("ACTION", "FORMAT", "FILE", "MODE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    args.formats = [f for f in args.formats.split(",") if f]
    if any(f not in FORMATS for f in args.formats) or any(n < 3 for n in args.sizes):
        parser.error(f"formats are {', '.join(FORMATS)}; sizes at least 3")
    return args


def rss_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def peak_mb():
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def admin_user():
    from django.contrib.auth import get_user_model

    User = get_user_model()
    user = User.objects.filter(username="bench-admin").first()
    return user or User.objects.create_superuser("bench-admin", "bench@example.com", "bench-pw-1")


def generate(tables):
    """N tables x 25 fields, tags, classifications and 2N edges, with bulk inserts."""
    from django.db import transaction

    from catalog.models import Classification, Field, Table, Tag, TagCategory
    from lineage.models import FieldLineageEdge, LineageEdge
    from sources.models import DataSource

    started = time.perf_counter()
    admin = admin_user()
    with transaction.atomic():
        source = DataSource.objects.create(
            name="bench-src", kind="postgresql", host="db.example.com", owner=admin
        )
        domain, _ = TagCategory.objects.get_or_create(name="Domain")
        domains = [Tag.objects.get_or_create(category=domain, name=f"D{i}")[0] for i in range(5)]
        pii, _ = TagCategory.objects.get_or_create(name="PII")
        email, _ = Tag.objects.get_or_create(category=pii, name="Email")
        rows = [
            Table(
                source=source,
                schema=f"s{i % 4}",
                name=f"table_{i:05d}",
                fqn=Table.make_fqn(source.name, f"s{i % 4}", f"table_{i:05d}"),
                description=f"Synthetic table {i} for the bulk benchmark",
                owner=admin,
                retention_days=365,
            )
            for i in range(tables)
        ]
        Table.objects.bulk_create(rows, batch_size=2000)
        Table.tags.through.objects.bulk_create(
            [
                Table.tags.through(table_id=t.pk, tag_id=domains[i % 5].pk)
                for i, t in enumerate(rows)
            ],
            batch_size=5000,
        )
        fields = []
        for table in rows:
            for position in range(1, FIELDS_PER_TABLE + 1):
                fields.append(
                    Field(
                        table_id=table.pk,
                        name=f"column_{position:02d}",
                        position=position,
                        data_type="integer" if position % 3 else "string",
                        native_type="integer" if position % 3 else "varchar(200)",
                        nullable=position != 1,
                        is_primary_key=position == 1,
                        description=f"Column {position} of {table.name}",
                    )
                )
            if len(fields) >= 25_000:
                Field.objects.bulk_create(fields, batch_size=5000)
                fields = []
        Field.objects.bulk_create(fields, batch_size=5000)
        field_ids = {(t, n): pk for t, n, pk in Field.objects.values_list("table_id", "name", "pk")}
        Field.tags.through.objects.bulk_create(
            [
                Field.tags.through(field_id=pk, tag_id=email.pk)
                for (_, name), pk in field_ids.items()
                if int(name[-2:]) % 5 == 0
            ],
            batch_size=5000,
        )
        Classification.objects.bulk_create(
            [
                Classification(
                    field_id=field_ids[(t.pk, "column_05")],
                    rule="email",
                    tag=email,
                    method="name",
                    hit_ratio=0.9,
                    sample_size=100,
                    status="accepted",
                    decided_by=admin,
                )
                for t in rows
            ],
            batch_size=5000,
        )
        edges, field_edges = [], []
        for i, table in enumerate(rows):
            for step in range(1, EDGES_PER_TABLE + 1):
                edges.append(
                    LineageEdge(
                        upstream_id=table.pk,
                        downstream_id=rows[(i + step) % tables].pk,
                        origin="inferred" if step == 1 else "manual",
                        status="pending" if step == 1 else "approved",
                        confidence=0.8,
                    )
                )
        LineageEdge.objects.bulk_create(edges, batch_size=5000)
        for edge in edges:
            field_edges.append(
                FieldLineageEdge(
                    edge_id=edge.pk,
                    upstream_id=field_ids[(edge.upstream_id, "column_02")],
                    downstream_id=field_ids[(edge.downstream_id, "column_03")],
                    origin=edge.origin,
                    transformation="column_02 + 1",
                )
            )
        FieldLineageEdge.objects.bulk_create(field_edges, batch_size=5000)
    return {
        "tables": tables,
        "fields": tables * FIELDS_PER_TABLE,
        "edges": len(edges),
        "seconds": round(time.perf_counter() - started, 2),
    }


def empty_catalog():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE catalog_table, governance_changelogentry CASCADE")


def child(action, fmt, path, mode):
    benchlib.setup_django()
    from django.db import connection

    from governance import context
    from governance.models import ChangeLogEntry

    admin = admin_user()
    connection.ensure_connection()
    baseline = rss_mb()
    out = {"action": action, "format": fmt, "baseline_rss_mb": baseline}
    with context.acting(user=admin):
        if action == "export":
            from governance.bulk import exporter

            started = time.perf_counter()
            export = exporter.bulk_export(user=admin, format=fmt)
            with open(path, "wb") as handle:
                for chunk in export.chunks:
                    handle.write(chunk)
            out["seconds"] = round(time.perf_counter() - started, 2)
            out["tables"] = export.tables
            out["bytes"] = os.path.getsize(path)
        else:
            from governance.bulk import importer

            if mode == "create":
                empty_catalog()
            log_before = ChangeLogEntry.objects.count()
            started = time.perf_counter()
            try:
                with open(path, "rb") as handle:
                    result = importer.bulk_import(data=handle, user=admin, format=fmt, mode=mode)
            except importer.ImportRejected as exc:  # past a limit (XLSX over 200 MB expanded)
                result, out["refused"] = {"counts": None}, exc.detail
            out["seconds"] = round(time.perf_counter() - started, 2)
            out["counts"] = result["counts"]
            out["changelog_rows"] = ChangeLogEntry.objects.count() - log_before
    out["peak_rss_mb"] = peak_mb()
    return out


def run_child(action, fmt, path, mode="create"):
    command = [sys.executable, __file__, "--child", action, fmt, str(path), mode]
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def generate_in_child(tables):
    command = [
        sys.executable,
        "-c",
        (
            "import sys, json; sys.path.insert(0, 'bench'); import benchlib, bulk; "
            f"benchlib.setup_django(); print(json.dumps(bulk.generate({tables})))"
        ),
    ]
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True, cwd=benchlib.ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    args = parse_args()
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    benchlib.configure_env(DEBUG="0")
    if args.child:
        print(json.dumps(child(*args.child)))
        return 0
    benchlib.use_project_python()
    files = benchlib.RESULTS_DIR / "bulk"
    files.mkdir(parents=True, exist_ok=True)
    results, rows = {}, []
    for tables in args.sizes:
        print(f"N={tables}: recreating {os.environ['DATABASE_URL']} and migrating ...", flush=True)
        benchlib.recreate_database(os.environ["DATABASE_URL"])
        benchlib.migrate()
        load_before = os.getloadavg()
        built = generate_in_child(tables)
        print(f"  generated {built}", flush=True)
        runs = {}
        for fmt in args.formats:
            path = files / f"catalog-{tables}.{fmt}"
            exported = run_child("export", fmt, path)
            imported = run_child("import", fmt, path)
            runs[fmt] = {"export": exported, "import": imported}
            line = (
                f"  {fmt:5} export {exported['seconds']:7.2f} s {exported['peak_rss_mb']:6.0f} MB"
                f" ({exported['bytes'] / 1e6:.1f} MB file) | import {imported['seconds']:7.2f} s "
                f"{imported['peak_rss_mb']:6.0f} MB, {imported['changelog_rows']} change-log rows"
                + (f" (refused: {imported['refused']})" if "refused" in imported else "")
            )
            print(line, flush=True)
            if fmt == "json":
                again = run_child("import", fmt, path, "upsert")
                runs[fmt]["upsert_again"] = again
                print(
                    f"  json  upsert of the same file: {again['seconds']:.2f} s, "
                    f"{again['peak_rss_mb']:.0f} MB, counts {again['counts']}, "
                    f"{again['changelog_rows']} change-log rows",
                    flush=True,
                )
            path.unlink(missing_ok=True)  # up to ~100 MB each
            rows.append(
                [
                    tables,
                    fmt,
                    round(exported["bytes"] / 1e6, 1),
                    exported["seconds"],
                    exported["peak_rss_mb"],
                    imported["seconds"],
                    imported["peak_rss_mb"],
                    exported["baseline_rss_mb"],
                ]
            )
        results[str(tables)] = {
            "generated": built,
            "runs": runs,
            "load_average": {
                "before_1_5_15": [round(x, 2) for x in load_before],
                "after_1_5_15": [round(x, 2) for x in os.getloadavg()],
            },
        }
    benchlib.print_table(
        [
            "N",
            "format",
            "file MB",
            "export s",
            "export peak MB",
            "import s",
            "import peak MB",
            "baseline MB",
        ],
        rows,
        title="Bulk export and import (each a fresh process; peak = ru_maxrss, baseline = RSS "
        "after Django setup)",
    )
    print()
    for tables, result in results.items():
        load = result["load_average"]
        print(
            f"N={tables}: 1-min load average {load['before_1_5_15'][0]:.2f} before, "
            f"{load['after_1_5_15'][0]:.2f} after, on this {os.cpu_count()}-CPU machine"
        )
        for fmt in ("json", "csv"):
            run = result["runs"].get(fmt)
            if run:
                peak = max(run["export"]["peak_rss_mb"], run["import"]["peak_rss_mb"])
                met = (
                    run["import"]["seconds"] < GOALS["import_s"]
                    and run["export"]["seconds"] < GOALS["export_s"]
                    and peak < GOALS["peak_rss_mb"]
                )
                print(
                    f"  {fmt}: goals (import < 60 s, export < 30 s, peak < 500 MB) "
                    f"{'met' if met else 'NOT met'}"
                )
    path = benchlib.write_json(
        "bulk", {"benchmark": "bulk", "machine": benchlib.machine_info(), "results": results}
    )
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
