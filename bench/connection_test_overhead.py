#!/usr/bin/env python3
"""Connection-test overhead: what Steward adds on top of a bare PostgreSQL connect.

Times N iterations each of
  raw      psycopg.connect() + SELECT version() + close
  connector  get_connector(spec, policy).test(): host guard, timeouts, SHOW server_version
  service  sources.services.datasource_test_connection(): the connector plus the
           connection-test log row, the access-log row and the source's status update
against the same server, interleaved so that drift hits all three alike.
Target: the service's median overhead over raw under 10 ms.

    .venv/bin/python bench/connection_test_overhead.py [-n 200]
"""

import argparse
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402

TARGET_OVERHEAD_MS = 10.0
SOURCE_NAME = "bench-connection-test-postgres"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--iterations", type=int, default=200, help="timed runs per variant")
    parser.add_argument("--warmup", type=int, default=10, help="untimed runs per variant")
    parser.add_argument("--max-seconds", type=float, default=300, help="time cap for the loop")
    parser.add_argument("--host", default="127.0.0.1", help="server to connect to (loopback)")
    parser.add_argument("--port", type=int, default=5432)
    parser.add_argument("--dbname", default="postgres")
    parser.add_argument("--user", default="postgres")
    args = parser.parse_args()
    if args.iterations < 1:
        parser.error("--iterations must be positive")
    return args


def main():
    args = parse_args()
    # The connector refuses loopback unless it is allowlisted.
    benchlib.configure_env(DEBUG="0", SOURCE_HOSTS_ALLOW=args.host)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    database_url = os.environ["DATABASE_URL"]
    print(f"Using {database_url} (created if missing) and migrating ...", flush=True)
    db_name = benchlib.ensure_database(database_url)
    benchlib.setup_django()

    import psycopg
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from sources.connectors import get_connector
    from sources.connectors.base import ConnectionSpec
    from sources.models import DataSource
    from sources.services import datasource_test_connection, network_policy

    call_command("migrate", interactive=False, verbosity=0)
    source, _ = DataSource.objects.update_or_create(
        name=SOURCE_NAME,
        defaults={
            "kind": "postgresql",
            "host": args.host,
            "port": args.port,
            "database": args.dbname,
            "username": args.user,
            "environment": "dev",
            "description": "Target of bench/connection_test_overhead.py.",
        },
    )
    spec = ConnectionSpec(
        kind="postgresql",
        host=args.host,
        port=args.port,
        database=args.dbname,
        username=args.user,
    )
    policy = network_policy()

    def raw():
        conn = psycopg.connect(
            host=args.host, port=args.port, dbname=args.dbname, user=args.user, connect_timeout=5
        )
        try:
            return conn.execute("SELECT version()").fetchone()[0]
        finally:
            conn.close()

    def connector():
        result = get_connector(spec, policy).test()
        if not result.ok:
            raise RuntimeError(f"connector test failed: {result.error_kind}: {result.error}")
        return result

    def service():
        result = datasource_test_connection(source=source)
        if not result.ok:
            raise RuntimeError(f"service test failed: {result.error_kind}: {result.error}")
        return result

    variants = {"raw psycopg": raw, "connector.test()": connector, "service": service}
    print(f"Server: {raw().split(',')[0]}", flush=True)
    for fn in variants.values():
        for _ in range(args.warmup):
            fn()
    with CaptureQueriesContext(connection) as ctx:
        service()
    service_queries = [q["sql"][:300] for q in ctx.captured_queries]

    timings = {name: [] for name in variants}
    names = list(variants)
    deadline = benchlib.Deadline(args.max_seconds)
    print(f"Timing {args.iterations} iterations of each, interleaved ...", flush=True)
    for i in range(args.iterations):
        if deadline.passed():
            print(f"Stopped after {i} iterations: --max-seconds {args.max_seconds} reached.")
            break
        for k in range(len(names)):
            name = names[(i + k) % len(names)]
            start = time.perf_counter()
            variants[name]()
            timings[name].append((time.perf_counter() - start) * 1000)

    stats = {name: benchlib.summarize(values) for name, values in timings.items()}
    base = stats["raw psycopg"]["p50_ms"]
    for name in names:
        stats[name]["overhead_vs_raw_median_ms"] = round(stats[name]["p50_ms"] - base, 3)
    service_overhead = stats["service"]["overhead_vs_raw_median_ms"]
    connector_overhead = stats["connector.test()"]["overhead_vs_raw_median_ms"]
    bookkeeping = round(stats["service"]["p50_ms"] - stats["connector.test()"]["p50_ms"], 3)

    benchlib.print_table(
        ["variant", "n", "median ms", "p95 ms", "mean ms", "min ms", "overhead vs raw ms"],
        [
            [
                name,
                s["n"],
                s["p50_ms"],
                s["p95_ms"],
                s["mean_ms"],
                s["min_ms"],
                s["overhead_vs_raw_median_ms"],
            ]
            for name, s in stats.items()
        ],
        title=f"Connection test to {args.user}@{args.host}:{args.port}/{args.dbname}",
    )
    print(f"1-min load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(
        f"\nservice - connector (log rows and status update): {bookkeeping:.2f} ms median; "
        f"{len(service_queries)} queries on the metadata database per service call"
    )
    met = service_overhead < TARGET_OVERHEAD_MS
    print(
        f"Target: service overhead over raw under {TARGET_OVERHEAD_MS:.0f} ms (median) -> "
        f"{service_overhead:.2f} ms, {'met' if met else 'NOT met'}"
    )

    path = benchlib.write_json(
        "connection_test_overhead",
        {
            "benchmark": "connection_test_overhead",
            "target": {"service_overhead_median_ms_below": TARGET_OVERHEAD_MS},
            "target_met": met,
            "overhead_median_ms": {
                "connector_vs_raw": connector_overhead,
                "service_vs_raw": service_overhead,
                "service_vs_connector": bookkeeping,
            },
            "config": {
                "metadata_database": db_name,
                "target": f"{args.user}@{args.host}:{args.port}/{args.dbname}",
                "iterations": args.iterations,
                "warmup": args.warmup,
                "raw_query": "SELECT version()",
                "connector_query": "SHOW server_version",
            },
            "machine": benchlib.machine_info(),
            "variants": stats,
            "service_queries": service_queries,
        },
    )
    print(f"Results written to {path.relative_to(benchlib.ROOT)}")
    return 0


if __name__ == "__main__":
    benchlib.use_project_python()
    sys.exit(main())
