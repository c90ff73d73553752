#!/usr/bin/env python3
"""SQL lineage: accuracy on the lineage test set, and statements parsed per second.

accuracy  every case of lineage/tests/sql_cases/*.yaml through lineage.sql: micro-averaged
          precision, recall and F1 of (source, target) pairs at table and column level,
          and the cases that missed
speed     the test set's statements, round after round for --seconds: parse alone
          (sqlglot into normalised trees) and parse + lineage (qualify, scopes, tracing),
          as statements per second in one process
views     with --views N (needs PostgreSQL): lineage.inference.infer_views() on a source
          of N tables and N/5 views in one call, as a scan's hook runs it: wall time,
          queries, edges; metadata database steward_bench_lineage (dropped and recreated)

  .venv/bin/python bench/lineage_sql.py
  .venv/bin/python bench/lineage_sql.py --seconds 20 --views 10000
"""

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/steward_bench_lineage"


def accuracy():
    from lineage.tests.sql_cases import load_cases, score

    cases = load_cases()
    figures, misses = score(cases)
    rows = [
        [level, round(f["precision"], 4), round(f["recall"], 4), round(f["f1"], 4)]
        for level, f in figures.items()
    ]
    benchlib.print_table(
        ["level", "precision", "recall", "F1"], rows, title=f"Accuracy on {len(cases)} cases"
    )
    for miss in misses:
        print(f"  missed {miss['case']} ({miss['level']}): -{miss['missing']} +{miss['extra']}")
    return {"cases": len(cases), "figures": figures, "misses": misses}


def speed(seconds):
    from lineage.sql import SqlError, analyze, parse
    from lineage.tests.sql_cases import load_cases

    work = []
    for case in load_cases():
        try:
            parse(case.sql, case.dialect)
        except SqlError:
            continue
        work.append(case)
    statements_per_round = sum(len(parse(c.sql, c.dialect)) for c in work)

    def run(step):
        rounds, started = 0, time.perf_counter()
        while True:
            for case in work:
                step(case)
            rounds += 1
            elapsed = time.perf_counter() - started
            if elapsed >= seconds:
                return rounds * statements_per_round / elapsed, rounds

    parse_rate, parse_rounds = run(lambda c: parse(c.sql, c.dialect))
    full_rate, full_rounds = run(
        lambda c: analyze(c.sql, c.dialect, c.default_schema, c.schema, target=c.target)
    )
    benchlib.print_table(
        ["step", "statements/s", "rounds"],
        [
            ["parse", round(parse_rate, 1), parse_rounds],
            ["parse + lineage", round(full_rate, 1), full_rounds],
        ],
        title=f"Speed ({statements_per_round} statements a round, {seconds:g} s each, one process)",
    )
    return {
        "statements_per_round": statements_per_round,
        "parse_per_s": parse_rate,
        "lineage_per_s": full_rate,
    }


def views(n):
    import os

    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    env = benchlib.configure_env(LOG_LEVEL="WARNING", DEBUG="0")
    benchlib.recreate_database(env["DATABASE_URL"])
    benchlib.setup_django()
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    call_command("migrate", verbosity=0)
    from catalog.models import Field, Table
    from lineage.inference import infer_views
    from sources.models import DataSource

    source = DataSource.objects.create(name="synth", kind="postgresql", host="127.0.0.1")
    tables = Table.objects.bulk_create(
        Table(source=source, schema=f"s{i % 4}", name=f"t{i}", fqn=f"synth.s{i % 4}.t{i}")
        for i in range(n)
    )
    Field.objects.bulk_create(
        (Field(table=t, name=f"c{j}", position=j) for t in tables for j in range(1, 11)),
        batch_size=5000,
    )
    # A view body as pg_get_viewdef writes it; synthetic names, parsed but never executed.
    body = (
        " SELECT a.c1, a.c2 + b.c3 AS total, b.c4\n   FROM ({a} a\n"
        "     JOIN {b} b ON ((b.c1 = a.c1)))\n  WHERE (a.c5 > 0);"
    )
    definitions = []
    for v in range(n // 5):
        a, b = tables[(v * 7) % n], tables[(v * 13 + 1) % n]
        definitions.append(
            Table(
                source=source,
                schema=a.schema,
                name=f"v{v}",
                kind="view",
                fqn=f"synth.{a.schema}.v{v}",
                view_definition=body.format(a=f"{a.schema}.{a.name}", b=f"{b.schema}.{b.name}"),
            )
        )
    created = Table.objects.bulk_create(definitions)
    Field.objects.bulk_create(
        Field(table=v, name=name, position=j)
        for v in created
        for j, name in enumerate(("c1", "total", "c4"), 1)
    )
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        started = time.perf_counter()
        counts = infer_views(source, created)
        elapsed = time.perf_counter() - started
    benchlib.print_table(
        ["views", "seconds", "views/s", "queries", "edges", "field edges", "errors"],
        [
            [
                len(created),
                round(elapsed, 2),
                round(len(created) / elapsed, 1),
                len(queries),
                counts["lineage_edges"],
                counts["lineage_field_edges"],
                counts["lineage_errors"],
            ]
        ],
        title=f"infer_views on {n} tables and {len(created)} views (one call, as in a scan)",
    )
    return {
        "tables": n,
        "views": len(created),
        "seconds": elapsed,
        "queries": len(queries),
        **counts,
    }


def main():
    benchlib.use_project_python()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="per speed step")
    parser.add_argument("--views", type=int, default=0, help="also time infer_views on N tables")
    args = parser.parse_args()
    # sqlglot warns for each statement it keeps as a command (REPLACE INTO); once is enough.
    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    sys.path.insert(0, str(benchlib.ROOT))
    info = benchlib.machine_info()
    print(f"load average {info['loadavg_1_5_15']} on {info['cpus']} CPUs")
    result = {"machine": info, "accuracy": accuracy(), "speed": speed(args.seconds)}
    if args.views:
        result["views"] = views(args.views)
    result["loadavg_after"] = benchlib.machine_info()["loadavg_1_5_15"]
    print(f"\nload average after {result['loadavg_after']}")
    print(f"written to {benchlib.write_json('lineage_sql', result)}")


if __name__ == "__main__":
    main()
