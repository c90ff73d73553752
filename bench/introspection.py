#!/usr/bin/env python3
"""Introspection speed: PostgreSQLConnector.introspect() next to pg_dump --schema-only.

For each N, on the database bench/catalog_synth.py builds (steward_synth_<N>, built when it is
missing or with --rebuild), times in turn, each run in a fresh child process:
  introspect  the connector's bulk pg_catalog queries (what Steward uses)
  inspector   SQLAlchemy 2's Inspector get_multi_columns / get_multi_pk_constraint /
              get_multi_foreign_keys / get_multi_table_comment, plus get_view_definition per
              view, over the same guarded connection (the alternative that was measured)
  pg_dump     pg_dump --schema-only of the same database, written to /dev/null
and reports wall time and peak RSS (getrusage of the child, or of pg_dump itself).
Goal: introspect() within 2x of pg_dump.

    .venv/bin/python bench/introspection.py [N ...] [--repeat 3] [--rebuild] [--no-inspector]
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402

TARGET_RATIO = 2.0
HOST, PORT, USER = "127.0.0.1", 5432, "postgres"
SYSTEM_SCHEMAS = {"information_schema", "pg_catalog", "pg_toast"}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", type=int, nargs="*", default=[2000, 10000])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per variant and size")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the synthetic databases")
    parser.add_argument("--no-inspector", action="store_true", help="skip the SQLAlchemy variant")
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "N"), help=argparse.SUPPRESS)
    return parser.parse_args()


def peak_rss_mb(who=resource.RUSAGE_SELF) -> float:
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)


def connector(tables: int):
    from sources.connectors import ConnectionSpec, NetworkPolicy, get_connector

    spec = ConnectionSpec(
        kind="postgresql", host=HOST, port=PORT, database=f"steward_synth_{tables}", username=USER
    )
    policy = NetworkPolicy(allow=(HOST,), connect_timeout=10, statement_timeout=600)
    return get_connector(spec, policy)


def child_introspect(tables: int) -> dict:
    import psycopg

    from sources.connectors.postgresql import PostgreSQLConnector

    counted = []

    class CountingCursor(psycopg.Cursor):
        def execute(self, query, params=None, **kwargs):
            counted.append(query)
            return super().execute(query, params, **kwargs)

    def counting_open(self, target, stack, _open=PostgreSQLConnector.open):
        conn = _open(self, target, stack)
        conn.cursor_factory = CountingCursor
        return conn

    PostgreSQLConnector.open = counting_open
    source = connector(tables)
    baseline = peak_rss_mb()
    started = time.perf_counter()
    found = source.introspect()
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
        "baseline_rss_mb": baseline,
        "tables": len(found),
        "columns": sum(len(t.columns) for t in found),
        "statements": len(counted),
    }


def child_inspector(tables: int) -> dict:
    from sqlalchemy import event, inspect
    from sqlalchemy.engine.reflection import ObjectKind

    source = connector(tables)
    baseline = peak_rss_mb()
    counted = []
    started = time.perf_counter()
    with source.connect() as conn:
        engine = source.engine(conn)
        event.listen(engine, "before_cursor_execute", lambda *args: counted.append(args[2]))
        inspector = inspect(engine)
        found = columns = 0
        for schema in inspector.get_schema_names():
            if schema in SYSTEM_SCHEMAS:
                continue
            reflected = inspector.get_multi_columns(schema=schema, kind=ObjectKind.ANY)
            inspector.get_multi_pk_constraint(schema=schema)
            inspector.get_multi_foreign_keys(schema=schema)
            inspector.get_multi_table_comment(schema=schema, kind=ObjectKind.ANY)
            views = inspector.get_view_names(schema=schema)
            views += inspector.get_materialized_view_names(schema=schema)
            for view in views:
                inspector.get_view_definition(view, schema=schema)
            found += len(reflected)
            columns += sum(len(c) for c in reflected.values())
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
        "baseline_rss_mb": baseline,
        "tables": found,
        "columns": columns,
        "statements": len(counted),
    }


def child_pg_dump(tables: int) -> dict:
    command = [
        "pg_dump", "--schema-only", "--no-password", "-h", HOST, "-p", str(PORT), "-U", USER,
        "-f", os.devnull, f"steward_synth_{tables}",
    ]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, check=True)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb(resource.RUSAGE_CHILDREN)}


CHILDREN = {"introspect": child_introspect, "inspector": child_inspector, "pg_dump": child_pg_dump}


def run_child(variant: str, tables: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(benchlib.ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, __file__, "--child", variant, str(tables)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def database_exists(tables: int) -> bool:
    import psycopg

    with psycopg.connect(host=HOST, port=PORT, user=USER, dbname="postgres") as conn:
        found = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [f"steward_synth_{tables}"]
        ).fetchone()
    return bool(found)


def main():
    args = parse_args()
    if args.child:
        variant, tables = args.child
        print(json.dumps(CHILDREN[variant](int(tables))))
        return
    benchlib.use_project_python()
    import catalog_synth

    variants = ["introspect", "pg_dump"] + ([] if args.no_inspector else ["inspector"])
    results, rows = {}, []
    for tables in args.sizes:
        build = None
        if args.rebuild or not database_exists(tables):
            print(f"Building steward_synth_{tables} ...", flush=True)
            build = catalog_synth.build(tables)
        runs = {variant: [] for variant in variants}
        load_before = os.getloadavg()[0]
        for attempt in range(args.repeat):
            for variant in variants:
                outcome = run_child(variant, tables)
                runs[variant].append(outcome)
                print(f"  N={tables} {variant:10} run {attempt + 1}: {outcome['seconds']:.2f}s")
        summary = {}
        for variant, outcomes in runs.items():
            seconds = sorted(o["seconds"] for o in outcomes)
            counts = {k: v for k, v in outcomes[-1].items() if k not in ("seconds", "peak_rss_mb")}
            summary[variant] = {
                "median_s": round(statistics.median(seconds), 3),
                "min_s": round(seconds[0], 3),
                "max_s": round(seconds[-1], 3),
                "peak_rss_mb": max(o["peak_rss_mb"] for o in outcomes),
                **counts,
            }
        dump = summary["pg_dump"]["median_s"]
        for variant, numbers in summary.items():
            numbers["vs_pg_dump"] = round(numbers["median_s"] / dump, 2)
            rows.append([
                tables, variant, numbers["median_s"], numbers["min_s"], numbers["vs_pg_dump"],
                numbers["peak_rss_mb"], numbers.get("statements", ""),
                numbers.get("columns", ""),
            ])  # fmt: skip
        results[str(tables)] = {
            "database": f"steward_synth_{tables}",
            "build": build,
            "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "variants": summary,
            "target_met": summary["introspect"]["median_s"] <= TARGET_RATIO * dump,
        }
    benchlib.print_table(
        ["N", "variant", "median s", "min s", "x pg_dump", "peak RSS MB", "statements", "columns"],
        rows,
        title=f"Introspection vs pg_dump --schema-only (median of {args.repeat})",
    )
    path = benchlib.write_json(
        "introspection",
        {
            "benchmark": "introspection",
            "target": {"introspect_within_x_pg_dump": TARGET_RATIO},
            "target_met": all(r["target_met"] for r in results.values()),
            "config": {"repeat": args.repeat, "host": HOST, "sizes": args.sizes},
            "machine": benchlib.machine_info(),
            "results": results,
        },
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
