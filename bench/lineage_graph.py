#!/usr/bin/env python3
"""Lineage graph walks: upstream and downstream at depth 3 and 10 on a synthetic graph.

On its own database (default steward_bench_lineage_graph), migrated in a separate process, the
script builds once (again with --rebuild) a graph of --tables tables (20,000) spread over
--sources sources (20) and --edges edges (100,000): each edge feeds a table from one up to
--window tables before it in a seeded order, so that pipelines have depth and fan-out, and
--back-edges of them (1%) point backwards, so that the graph has cycles. Statuses are 70%
approved, 25% pending, 5% rejected. Tables and sources go in with bulk_create, edges with
COPY, then ANALYZE.

It then times lineage.graph.lineage() (the service behind GET /api/v1/lineage/table/{id}/
upstream|downstream: the recursive walk, the visibility query, the answer) from --roots
seeded random roots (200) in each direction at depth 3 and 10, as a superuser and as a user
granted viewer on every other source (permission caches cleared before each call, as in a
fresh request), the database primitive lineage.graph.edge_levels() alone, and the edge list
of the API (GET /api/v1/lineage/?table=<root>, in-process) as both users. Prints
p50/p95/p99/max ms per query kind, the answer sizes, the indexes on the edge table and the
load average. Goal: p95 under 50 ms at depth 3.

    .venv/bin/python bench/lineage_graph.py [--rebuild] [--roots 200] [--depths 3 10]
        [--tables 20000] [--edges 100000] [--sources 20] [--window 1000] [--seed 42]
"""

import argparse
import io
import itertools
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/steward_bench_lineage_graph"
TARGET_P95_MS_DEPTH_3 = 50
SOURCE_PREFIX = "lineage-bench-"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", type=int, default=20_000)
    parser.add_argument("--edges", type=int, default=100_000)
    parser.add_argument("--sources", type=int, default=20)
    parser.add_argument("--window", type=int, default=1000, help="how far back an edge reaches")
    parser.add_argument("--back-edges", type=float, default=0.01, help="share of cycle edges")
    parser.add_argument("--roots", type=int, default=200, help="timed roots per query kind")
    parser.add_argument("--warmup", type=int, default=10, help="untimed walks per query kind")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--depths", type=int, nargs="+", default=[3, 10], help="depths timed")
    parser.add_argument("--rebuild", action="store_true", help="drop and rebuild the graph")
    args = parser.parse_args()
    if min(args.tables, args.edges, args.sources, args.window, args.roots) < 1:
        parser.error("sizes must be positive")
    if any(not 1 <= d <= 10 for d in args.depths):
        parser.error("depths run from 1 to 10")
    if args.edges > args.tables * min(args.window, args.tables - 1) * 0.9:
        parser.error("too many edges for the tables and window")
    return args


def graph_present(args):
    from catalog.models import Table
    from lineage.models import LineageEdge

    tables = Table.objects.filter(source__name__startswith=SOURCE_PREFIX).count()
    return tables == args.tables and LineageEdge.objects.count() == args.edges


def progress(message):
    print(f"  {message}", file=sys.stderr, flush=True)


def build(args):
    """Sources, owners, tables (bulk_create) and edges (COPY), seeded; returns timings."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from catalog.models import Table
    from lineage.models import LineageEdge
    from sources.models import DataSource

    rng = random.Random(args.seed)
    started = time.perf_counter()
    User = get_user_model()
    owners = [
        User.objects.get_or_create(
            username=f"bench-owner-{i}", defaults={"email": f"owner{i}@example.com"}
        )[0]
        for i in range(10)
    ]
    with transaction.atomic():
        sources = DataSource.objects.bulk_create(
            DataSource(name=f"{SOURCE_PREFIX}{i:02d}", kind="sqlite", database=f"bench_{i}.db")
            for i in range(args.sources)
        )
        rows = []
        for i in range(args.tables):
            source = sources[i % len(sources)]
            schema, name = f"layer{i * 10 // args.tables}", f"t{i:06d}"
            rows.append(
                Table(
                    source=source,
                    schema=schema,
                    name=name,
                    fqn=Table.make_fqn(source.name, schema, name),
                    owner=owners[i % len(owners)] if i % 3 else None,
                )
            )
        tables = Table.objects.bulk_create(rows, batch_size=5000)
    progress(
        f"{len(sources)} sources, {len(tables)} tables in {time.perf_counter() - started:.1f}s"
    )

    # Table i is fed by tables up to `window` before it (in a shuffled order, so that ids do
    # not line up with depth); a few edges point the other way and close cycles.
    order = [t.pk for t in tables]
    rng.shuffle(order)
    pairs = set()
    while len(pairs) < args.edges:
        d = rng.randrange(1, len(order))
        u = rng.randrange(max(0, d - args.window), d)
        if rng.random() < args.back_edges:
            u, d = d, u
        pairs.add((order[u], order[d]))
    statuses = ["approved"] * 70 + ["pending"] * 25 + ["rejected"] * 5
    origins = {"approved": "manual", "pending": "inferred", "rejected": "openlineage"}
    now = timezone.now().isoformat()
    buffer = io.StringIO()
    for up, down in sorted(pairs):
        status = rng.choice(statuses)
        confidence = 1.0 if status == "approved" else round(rng.uniform(0.5, 1), 2)
        buffer.write(f"{now}\t{now}\t\t{up}\t{down}\t{origins[status]}\t{status}\t{confidence}\n")
    columns = [
        "created_at",
        "updated_at",
        "description",
        "upstream_id",
        "downstream_id",
        "origin",
        "status",
        "confidence",
    ]
    copy_started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        sql = f"COPY {LineageEdge._meta.db_table} ({', '.join(columns)}) FROM STDIN"
        with cursor.cursor.copy(sql) as copy:
            copy.write(buffer.getvalue())
    copy_s = time.perf_counter() - copy_started
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    total = time.perf_counter() - started
    progress(f"{len(pairs)} edges by COPY in {copy_s:.1f}s; build {total:.1f}s")
    return {"seconds": round(total, 2), "copy_edges_s": round(copy_s, 2)}


def users(args):
    from django.contrib.auth import get_user_model

    from governance.services import grant
    from sources.models import DataSource

    User = get_user_model()
    admin = User.objects.filter(username="bench-lineage-admin").first()
    if admin is None:
        admin = User.objects.create_superuser("bench-lineage-admin", "a@example.com", "bench-pw-1")
    viewer, created = User.objects.get_or_create(username="bench-lineage-viewer")
    granted = list(DataSource.objects.filter(name__startswith=SOURCE_PREFIX).order_by("name")[::2])
    if created:
        for source in granted:
            grant(source, viewer, "viewer")
    return admin, viewer, granted


def fresh(user):
    """Forget the permissions Django cached on the user, as a new request would."""
    for name in ("_principal", "_user_perm_cache", "_group_perm_cache"):
        user.__dict__.pop(name, None)
    return user


def time_walks(user, roots, direction, depth, warmup):
    from lineage import graph

    for root in roots[:warmup]:
        graph.lineage(fresh(user), root, direction, depth=depth)
    times, sizes = [], {"nodes": 0, "edges": 0, "hidden": 0}
    for root in roots:
        fresh(user)
        started = time.perf_counter()
        answer = graph.lineage(user, root, direction, depth=depth)
        times.append((time.perf_counter() - started) * 1000)
        sizes["nodes"] += len(answer["nodes"])
        sizes["edges"] += len(answer["edges"])
        sizes["hidden"] += answer["hidden"]
    summary = benchlib.summarize(times)
    summary.update({f"mean_{k}": round(v / len(roots), 1) for k, v in sizes.items()})
    return summary


def time_primitive(roots, direction, depth, warmup):
    from lineage import graph

    for root in roots[:warmup]:
        graph.edge_levels(root.pk, direction, depth, graph.DEFAULT_STATUSES)
    times, reached = [], 0
    for root in roots:
        started = time.perf_counter()
        levels = graph.edge_levels(root.pk, direction, depth, graph.DEFAULT_STATUSES)
        times.append((time.perf_counter() - started) * 1000)
        reached += len(levels)
    summary = benchlib.summarize(times)
    summary["mean_edges"] = round(reached / len(roots), 1)
    return summary


def time_edge_list(user, roots, warmup):
    """GET /api/v1/lineage/?table=<root>, in-process: the edge list the API and the admin
    filter through LineageEdge's restrict() (both ends visible), serialized."""
    from rest_framework.test import APIRequestFactory, force_authenticate

    from lineage.api.views import LineageEdgeViewSet

    view = LineageEdgeViewSet.as_view({"get": "list"})
    factory = APIRequestFactory()

    def get(root):
        request = factory.get("/api/v1/lineage/", {"table": root.pk}, HTTP_HOST="localhost")
        force_authenticate(request, user=fresh(user))
        response = view(request)
        assert response.status_code == 200, response.data
        return response.data["count"]

    for root in roots[:warmup]:
        get(root)
    times, listed = [], 0
    for root in roots:
        started = time.perf_counter()
        listed += get(root)
        times.append((time.perf_counter() - started) * 1000)
    summary = benchlib.summarize(times)
    summary["mean_edges"] = round(listed / len(roots), 1)
    return summary


def edge_indexes():
    from django.db import connection

    from lineage.models import LineageEdge

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s ORDER BY indexname",
            [LineageEdge._meta.db_table],
        )
        return [row[0] for row in cursor.fetchall()]


def main():
    args = parse_args()
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    benchlib.configure_env(DEBUG="0")
    database_url = os.environ["DATABASE_URL"]
    if args.rebuild:
        print(f"Recreating {database_url} ...", flush=True)
        benchlib.recreate_database(database_url)
    else:
        benchlib.ensure_database(database_url)
    print("Migrating ...", flush=True)
    benchlib.migrate()
    benchlib.setup_django()
    from catalog.models import Table

    built = None
    if not graph_present(args):
        if Table.objects.exists():
            sys.exit(f"{database_url} holds another catalog; run again with --rebuild")
        print(f"Building {args.tables} tables and {args.edges} edges ...", flush=True)
        built = build(args)
    admin, viewer, granted = users(args)
    rng = random.Random(args.seed)
    candidates = list(
        Table.objects.filter(source__in=granted).order_by("pk").values_list("pk", flat=True)
    )
    root_ids = rng.sample(candidates, min(args.roots, len(candidates)))
    by_id = Table.objects.in_bulk(root_ids)
    roots = [by_id[pk] for pk in root_ids]

    load_before = os.getloadavg()
    results = {}
    for depth, direction in itertools.product(args.depths, ("upstream", "downstream")):
        key = f"{direction} depth {depth}"
        progress(f"{key} ...")
        results[key] = {
            "primitive": time_primitive(roots, direction, depth, args.warmup),
            "superuser": time_walks(admin, roots, direction, depth, args.warmup),
            "viewer": time_walks(viewer, roots, direction, depth, args.warmup),
        }
    progress("edge list ...")
    results["edge list (API)"] = {
        "superuser": time_edge_list(admin, roots, args.warmup),
        "viewer": time_edge_list(viewer, roots, args.warmup),
    }
    load_after = os.getloadavg()

    rows = []
    for key, by_who in results.items():
        for who in ("primitive", "superuser", "viewer"):
            if who not in by_who:
                continue
            s = by_who[who]
            rows.append(
                [key, who if who != "primitive" else "edge_levels()", s["n"], s["p50_ms"],
                 s["p95_ms"], s["p99_ms"], s["max_ms"], s.get("mean_nodes"), s["mean_edges"],
                 s.get("mean_hidden")]
            )  # fmt: skip
    benchlib.print_table(
        ["query", "as", "roots", "p50 ms", "p95 ms", "p99 ms", "max ms", "nodes", "edges",
         "hidden"],
        rows,
        title=f"lineage.graph.lineage() on {args.tables} tables / {args.edges} edges "
        f"(seed {args.seed}, after {args.warmup} warm-up; nodes/edges/hidden: mean per answer; "
        "edge_levels(): the recursive query alone)",
    )  # fmt: skip
    print("\nIndexes on the edge table:")
    for definition in edge_indexes():
        print(f"  {definition}")
    print(
        f"\n1-min load average {load_before[0]:.2f} before, {load_after[0]:.2f} after, "
        f"on this {os.cpu_count()}-CPU machine (other work inflates every figure)."
    )
    met = None
    if 3 in args.depths:
        worst = max(
            results[f"{d} depth 3"][who]["p95_ms"]
            for d in ("upstream", "downstream")
            for who in ("superuser", "viewer")
        )
        met = worst < TARGET_P95_MS_DEPTH_3
        print(
            f"Goal p95 under {TARGET_P95_MS_DEPTH_3} ms at depth 3: worst {worst:.1f} ms -> "
            f"{'met' if met else 'NOT met'}"
        )
    path = benchlib.write_json(
        "lineage_graph",
        {
            "benchmark": "lineage_graph",
            "args": vars(args),
            "machine": benchlib.machine_info(),
            "database": database_url.rsplit("/", 1)[-1],
            "server_version": benchlib.server_version(database_url),
            "build": built,
            "viewer_sources": len(granted),
            "results": results,
            "indexes": edge_indexes(),
            "load_average": {
                "before_1_5_15": [round(x, 2) for x in load_before],
                "after_1_5_15": [round(x, 2) for x in load_after],
            },
            "goal_p95_depth_3_met": met,
        },
    )
    print(f"Figures written to {path.relative_to(benchlib.ROOT)}")
    return 0


if __name__ == "__main__":
    benchlib.use_project_python()
    sys.exit(main())
