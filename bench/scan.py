#!/usr/bin/env python3
"""Catalog scan: a first scan and a no-change rescan of a synthetic source, then search.

For each N, on steward_synth_<N> (bench/catalog_synth.py builds it when missing or with
--rebuild): recreates the metadata database, migrates it in a separate process, then in one
fresh process registers a PostgreSQL source for the synthetic database and
  first scan  governance.jobs.run_now(catalog.tasks.scan_source, ...): wall and CPU time
              (of this process: the server's work is not in it), peak RSS
              (getrusage) over the RSS before it; connector.introspect() timed again on its
              own, so that apply ~ scan - introspect
  rescan      the same job with nothing changed: wall time, new catalog and change-log rows,
              and n_tup_ins + n_tup_upd + n_tup_del of those tables from pg_stat_user_tables
  pg_dump     pg_dump --schema-only of the same database, for scale
  search      catalog.selectors.search() for --queries seeded queries, as a superuser and as
              a user granted viewer on the source: p50/p95/p99 ms
Goals: first scan under 2.5 ms per table (5 s at 2,000 tables, 25 s at 10,000), peak RSS
under 500 MB, no rows written by the rescan; search p95 reported.

    .venv/bin/python bench/scan.py [N ...] [--queries 200] [--rebuild] [--profile]
"""

import argparse
import gc
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402
import introspection  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/steward_bench_scan"
HOST, PORT, USER = introspection.HOST, introspection.PORT, introspection.USER
TARGET_SECONDS_PER_TABLE = 0.0025
TARGET_PEAK_RSS_MB = 500
SEARCH_MIN_FIELDS = 50_000
WRITTEN_TABLES = (
    "catalog_table",
    "catalog_field",
    "catalog_schemaversion",
    "catalog_classification",
    "governance_changelogentry",
    "governance_event",
)
QUERY_KINDS = ("table name", "field fragment", "typo", "comment word")
STOPWORDS = {"the", "of", "and", "for"}
PROFILED_FILES = ("catalog/services.py", "governance/changelog.py")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", type=int, nargs="*", default=[2000, 10000])
    parser.add_argument("--queries", type=int, default=200, help="timed searches per user")
    parser.add_argument("--warmup", type=int, default=10, help="untimed searches per user")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--rebuild", action="store_true", help="rebuild the synthetic databases")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="afterwards, cProfile catalog_apply() on a second source (not part of the figures)",
    )
    parser.add_argument("--child", type=int, metavar="N", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if any(n < 1 for n in args.sizes) or args.queries < 1 or args.warmup < 0:
        parser.error("sizes and --queries must be positive")
    return args


def target_seconds(tables):
    return round(tables * TARGET_SECONDS_PER_TABLE, 2)


def rss_mb():
    """Resident set size now (peak_rss_mb is the high-water mark)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def reset_peak_rss():
    """Restart the high-water mark that getrusage reports (Linux 4.0+); False if not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class ProgressClock:
    """on_progress listener of run_now: seconds since start at each progress message."""

    def __init__(self):
        self.started = time.perf_counter()
        self.marks = []

    def __call__(self, percent, message):
        self.marks.append((round(time.perf_counter() - self.started, 3), percent, message))

    def at(self, prefix):
        return next((s for s, _, message in self.marks if message.startswith(prefix)), None)


def run_scan(source):
    from catalog.tasks import scan_source
    from governance import jobs

    clock = ProgressClock()
    cpu = time.process_time()
    job = jobs.run_now(
        scan_source, name="Scan", target=source, on_progress=clock, source_id=source.pk
    )
    wall = time.perf_counter() - clock.started
    cpu = time.process_time() - cpu
    read = clock.at("applying")
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "job_id": job.pk,
        "job_status": job.status,
        "job_error": job.error,
        "job_duration_s": job.duration,
        "job_progress": job.progress,
        "result": job.result,
        "progress_marks": len(clock.marks),
        "in_job_read_s": read,
        "in_job_apply_s": round(wall - read, 3) if read is not None else None,
    }


def count_rows():
    from django.db import connection

    counts = {}
    with connection.cursor() as cursor:
        for table in WRITTEN_TABLES:
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - fixed names
            counts[table] = cursor.fetchone()[0]
    return counts


def tuples_written():
    """n_tup_ins, n_tup_upd and n_tup_del of WRITTEN_TABLES, after this backend's pending
    statistics are flushed (the job wrote through this same connection)."""
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.pg_version >= 150000:
            cursor.execute("SELECT pg_stat_force_next_flush()")
        else:
            time.sleep(1)
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables "
            "WHERE schemaname = current_schema() AND relname = ANY(%s)",
            [list(WRITTEN_TABLES)],
        )
        rows = {name: {"ins": i, "upd": u, "del": d} for name, i, u, d in cursor.fetchall()}
    return {table: rows.get(table, {"ins": 0, "upd": 0, "del": 0}) for table in WRITTEN_TABLES}


def tuple_sum(stats):
    return sum(sum(row.values()) for row in stats.values())


def make_fixture(tables):
    from django.contrib.auth import get_user_model

    from governance.services import grant

    User = get_user_model()
    admin = User.objects.create_superuser("bench-admin", "bench-admin@example.com", "bench-pw-1")
    viewer = User.objects.create_user("bench-viewer", "bench-viewer@example.com", "bench-pw-2")
    source = register_source(f"synth-{tables}", tables, admin)
    grant(source, viewer, "viewer")
    return admin, viewer, source


def register_source(name, tables, owner):
    from sources.models import DataSource

    source = DataSource(
        name=name,
        kind="postgresql",
        host=HOST,
        port=PORT,
        database=catalog_database(tables),
        username=USER,
        scan_sample_values=False,
        environment="dev",
        owner=owner,
        description=f"Target of bench/scan.py: {catalog_database(tables)}.",
    )
    source.full_clean()
    source.save()
    return source


def pg_dump(tables):
    """pg_dump --schema-only of the source database; its own peak RSS from /usr/bin/time (a
    child's getrusage maxrss would include this process's RSS when it was spawned)."""
    command = ["pg_dump", "--schema-only", "--no-password", "-h", HOST, "-p", str(PORT)]
    command += ["-U", USER, "-f", os.devnull, catalog_database(tables)]
    timed = Path("/usr/bin/time").exists()
    if timed:
        command = ["/usr/bin/time", "-f", "%M", *command]
    started = time.perf_counter()
    done = subprocess.run(command, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"pg_dump failed ({done.returncode}): {done.stderr.strip()}")
    peak = round(int(done.stderr.split()[-1]) / 1024, 1) if timed else None
    return {"seconds": round(seconds, 3), "peak_rss_mb": peak}


def catalog_database(tables):
    import catalog_synth

    return catalog_synth.database_name(tables)


def build_queries(source, count, rng):
    """`count` queries, the kinds in turn, from the catalog's own names and comments."""
    from catalog.models import Field, Table

    tables = Table.objects.filter(source=source)
    fields = Field.objects.filter(table__source=source)
    table_names = sorted(tables.values_list("name", flat=True))
    field_names = sorted(set(fields.values_list("name", flat=True)))
    comments = list(tables.exclude(comment="").order_by("pk").values_list("comment", flat=True))
    comments += fields.exclude(comment="").order_by("pk").values_list("comment", flat=True)
    words = [name for name in field_names if re.fullmatch(r"[a-z]{4,}_\d+", name)]

    def comment_word():
        while True:
            candidates = [
                w
                for w in re.findall(r"[A-Za-z]+", rng.choice(comments))
                if len(w) > 2 and w.lower() not in STOPWORDS
            ]
            if candidates:
                return rng.choice(candidates)

    def typo():
        word, _, suffix = rng.choice(words).partition("_")
        at = rng.randrange(len(word) - 1)
        while word[at] == word[at + 1]:
            at = rng.randrange(len(word) - 1)
        return f"{word[:at]}{word[at + 1]}{word[at]}{word[at + 2 :]}_{suffix}"

    makers = {
        "table name": lambda: rng.choice(table_names),
        "field fragment": lambda: rng.choice(words).partition("_")[0],
        "typo": typo,
        "comment word": comment_word,
    }
    queries = [
        (kind, makers[kind]()) for kind in (QUERY_KINDS[i % len(QUERY_KINDS)] for i in range(count))
    ]
    rng.shuffle(queries)
    return queries


def time_searches(user, queries, warmup):
    from catalog.selectors import search

    for _, q in queries[:warmup]:
        search(user, q)
    runs = []
    for kind, q in queries:
        started = time.perf_counter()
        results = search(user, q)
        runs.append(
            {
                "kind": kind,
                "q": q,
                "ms": (time.perf_counter() - started) * 1000,
                "results": [(r["type"], r["id"]) for r in results],
                "exact_table": any(r["type"] == "table" and r["name"] == q for r in results),
            }
        )
    return runs


def search_summary(runs):
    summary = {
        **benchlib.summarize([r["ms"] for r in runs]),
        "mean_results": round(sum(len(r["results"]) for r in runs) / len(runs), 1),
        "by_kind": {},
    }
    for kind in QUERY_KINDS:
        of_kind = [r for r in runs if r["kind"] == kind]
        if of_kind:
            summary["by_kind"][kind] = {
                **benchlib.summarize([r["ms"] for r in of_kind]),
                "mean_results": round(sum(len(r["results"]) for r in of_kind) / len(of_kind), 1),
            }
    return summary


def where(file, line, func):
    path = file.replace(os.sep, "/")
    root = str(benchlib.ROOT).replace(os.sep, "/") + "/"
    path = path.split("site-packages/")[-1].removeprefix(root)
    return f"{path}:{line}({func})"


def profile_apply(tables, owner, connector_for):
    """cProfile catalog_apply() (in its transaction) for a first and a no-change apply of a
    second source on the same database; the top functions of the scan's own modules."""
    import cProfile
    import pstats

    from django.db import transaction

    from catalog.services import catalog_apply

    source = register_source(f"synth-{tables}-profile", tables, owner)
    metas = connector_for(source).introspect(source.scan_rules())
    found = {}
    for label in ("first", "rescan"):
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        with transaction.atomic():
            counts = catalog_apply(source, metas)
        profiler.disable()
        seconds = time.perf_counter() - started
        path = benchlib.RESULTS_DIR / f"scan.{tables}.apply-{label}.prof"
        profiler.dump_stats(path)
        stats = pstats.Stats(profiler).stats
        own = sorted(
            (
                (ct, tt, nc, where(file, line, func))
                for (file, line, func), (_, nc, tt, ct, _) in stats.items()
                if file.replace(os.sep, "/").endswith(PROFILED_FILES)
            ),
            reverse=True,
        )
        by_self = sorted(
            (
                (tt, ct, nc, where(file, line, func))
                for (file, line, func), (_, nc, tt, ct, _) in stats.items()
            ),
            reverse=True,
        )
        found[label] = {
            "profiled_s": round(seconds, 3),
            "counts": counts,
            "stats_file": str(path.relative_to(benchlib.ROOT)),
            "top_cumulative": [
                {
                    "function": name,
                    "cumulative_s": round(ct, 3),
                    "self_s": round(tt, 3),
                    "calls": nc,
                }
                for ct, tt, nc, name in own[:5]
            ],
            "top_self": [
                {
                    "function": name,
                    "self_s": round(tt, 3),
                    "cumulative_s": round(ct, 3),
                    "calls": nc,
                }
                for tt, ct, nc, name in by_self[:10]
            ],
        }
    return found


def child(args, tables):
    """Everything measured for one N, in this fresh process (so that its peak RSS is its own)."""
    benchlib.setup_django()
    from django.db import connection

    from catalog.models import Field
    from sources.connectors import get_connector
    from sources.services import network_policy

    def log(message):
        print(f"  N={tables} {message}", file=sys.stderr, flush=True)

    def connector_for(source):
        return get_connector(source.connection_spec(), network_policy())

    checks = []
    admin, viewer, source = make_fixture(tables)
    gc.collect()
    baseline_rss = rss_mb()
    baseline_peak = introspection.peak_rss_mb()
    log("first scan ...")
    first = run_scan(source)
    first_peak = introspection.peak_rss_mb()
    first["baseline_rss_mb"] = baseline_rss
    first["baseline_peak_rss_mb"] = baseline_peak
    first["peak_rss_mb"] = first_peak
    first["rss_after_mb"] = rss_mb()
    out = {"tables": tables, "database": catalog_database(tables), "first_scan": first}
    if first["job_status"] != "succeeded":
        checks.append(f"first scan {first['job_status']}: {first['job_error']}")
        out["checks_failed"] = checks
        return out
    rows_after_first = count_rows()
    first["rows"] = rows_after_first
    log(f"first scan {first['wall_s']:.2f}s, {first['result']}")

    started = time.perf_counter()
    metas = connector_for(source).introspect(source.scan_rules())
    introspect_s = time.perf_counter() - started
    found_tables, found_columns = len(metas), sum(len(m.columns) for m in metas)
    del metas
    first["introspect_s"] = round(introspect_s, 3)
    first["apply_s_estimate"] = round(first["wall_s"] - introspect_s, 3)
    out["source"] = {"tables": found_tables, "columns": found_columns}
    if (first["result"]["tables_added"], first["result"]["fields_added"]) != (
        found_tables,
        found_columns,
    ):
        checks.append(
            f"first scan added {first['result']['tables_added']} tables and "
            f"{first['result']['fields_added']} fields; the source has {found_tables} "
            f"and {found_columns}"
        )
    log(f"introspect alone {introspect_s:.2f}s ({found_tables} tables, {found_columns} columns)")

    # Planner statistics for the new rows, as autovacuum gathers them soon after a bulk load.
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    out["analyze_s"] = round(time.perf_counter() - started, 3)

    rows_before = count_rows()
    tuples_before = tuples_written()
    out["pg_stat_saw_first_scan"] = (
        tuples_before["catalog_field"]["ins"] >= rows_after_first["catalog_field"]
    )
    gc.collect()
    peak_reset = reset_peak_rss()
    rss_before_rescan = rss_mb()
    log("no-change rescan ...")
    rescan = run_scan(source)
    rescan["rss_before_mb"] = rss_before_rescan
    rescan["peak_rss_mb"] = introspection.peak_rss_mb() if peak_reset else None
    rows_after = count_rows()
    tuples_after = tuples_written()
    rescan["rows_before"], rescan["rows_after"] = rows_before, rows_after
    rescan["new_rows"] = {t: rows_after[t] - rows_before[t] for t in WRITTEN_TABLES}
    rescan["tuples_before"], rescan["tuples_after"] = tuples_before, tuples_after
    rescan["tuples_written"] = tuple_sum(tuples_after) - tuple_sum(tuples_before)
    rescan["new_rows_total"] = sum(rescan["new_rows"].values())
    out["rescan"] = rescan
    if rescan["job_status"] != "succeeded":
        checks.append(f"rescan {rescan['job_status']}: {rescan['job_error']}")
    log(
        f"rescan {rescan['wall_s']:.2f}s, {rescan['new_rows_total']} new rows, "
        f"{rescan['tuples_written']} tuples written"
    )

    out["pg_dump"] = pg_dump(tables)
    log(f"pg_dump --schema-only {out['pg_dump']['seconds']:.2f}s")

    rng = random.Random(args.seed)
    queries = build_queries(source, args.queries, rng)
    fields_in_catalog = Field.objects.filter(removed=False).count()
    log(f"search: {len(queries)} queries per user over {fields_in_catalog} fields ...")
    runs = {
        "superuser": time_searches(admin, queries, args.warmup),
        "viewer": time_searches(viewer, queries, args.warmup),
    }
    exact = [r for r in runs["superuser"] if r["kind"] == "table name"]
    differ = [
        su["q"]
        for su, vw in zip(runs["superuser"], runs["viewer"], strict=True)
        if su["results"] != vw["results"]
    ]
    out["search"] = {
        "fields_in_catalog": fields_in_catalog,
        "queries": len(queries),
        "warmup": args.warmup,
        "seed": args.seed,
        "query_examples": {kind: [q for k, q in queries if k == kind][:5] for kind in QUERY_KINDS},
        "superuser": search_summary(runs["superuser"]),
        "viewer": search_summary(runs["viewer"]),
        "exact_table_found": sum(r["exact_table"] for r in exact),
        "exact_table_queries": len(exact),
        "viewer_results_differ": differ[:10],
    }
    if any(not r["exact_table"] for r in exact):
        checks.append(
            f"an exact table name was not found: {[r['q'] for r in exact if not r['exact_table']]}"
        )
    if differ:
        checks.append(f"the viewer's results differ from the superuser's for {len(differ)} queries")

    if args.profile:
        log("profiling catalog_apply() on a second source ...")
        out["profile"] = profile_apply(tables, admin, connector_for)
    out["checks_failed"] = checks
    return out


def run_child(args, tables):
    command = [sys.executable, __file__, "--child", str(tables)]
    command += ["--queries", str(args.queries), "--warmup", str(args.warmup)]
    command += ["--seed", str(args.seed)] + (["--profile"] if args.profile else [])
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_report(results, args):
    sizes = [r for r in results.values() if "rescan" in r]
    benchlib.print_table(
        ["N", "tables", "fields", "scan s", "cpu s", "target s", "introspect s", "apply~ s",
         "job apply s", "baseline MB", "peak MB", "pg_dump s", "pg_dump MB"],
        [
            [r["tables"], r["source"]["tables"], r["source"]["columns"],
             r["first_scan"]["wall_s"], r["first_scan"]["cpu_s"], target_seconds(r["tables"]),
             r["first_scan"]["introspect_s"], r["first_scan"]["apply_s_estimate"],
             r["first_scan"]["in_job_apply_s"],
             r["first_scan"]["baseline_rss_mb"], r["first_scan"]["peak_rss_mb"],
             r["pg_dump"]["seconds"], r["pg_dump"]["peak_rss_mb"]]
            for r in sizes
        ],
        title="First scan (run_now of catalog.scan_source; cpu: this process's CPU time in it, "
        "less sensitive to other load than wall time; apply ~ scan - introspect timed alone; "
        "job apply: from the job's 'applying' progress message to the end)",
    )  # fmt: skip
    benchlib.print_table(
        ["N", "rescan s", "cpu s", "read s", "compare s", "RSS before MB", "peak MB", "new rows",
         "tuples written"],
        [
            [r["tables"], r["rescan"]["wall_s"], r["rescan"]["cpu_s"], r["rescan"]["in_job_read_s"],
             r["rescan"]["in_job_apply_s"], r["rescan"]["rss_before_mb"],
             r["rescan"]["peak_rss_mb"],
             r["rescan"]["new_rows_total"], r["rescan"]["tuples_written"]]
            for r in sizes
        ],
        title="No-change rescan (read/compare split at the job's 'applying' progress message; "
        "rows counted and pg_stat_user_tables n_tup_ins+upd+del, before and after)",
    )  # fmt: skip
    benchlib.print_table(
        ["N", "user", "fields", "queries", "p50 ms", "p95 ms", "p99 ms", "max ms", "results"],
        [
            [r["tables"], who, r["search"]["fields_in_catalog"], s["n"], s["p50_ms"],
             s["p95_ms"], s["p99_ms"], s["max_ms"], s["mean_results"]]
            for r in sizes
            for who, s in (("superuser", r["search"]["superuser"]),
                           ("viewer", r["search"]["viewer"]))
        ],
        title=f"catalog.selectors.search() (seed {args.seed}, after {args.warmup} warm-up; "
        "results: mean rows returned)",
    )  # fmt: skip
    benchlib.print_table(
        ["N", "query kind", "superuser p50", "superuser p95", "viewer p50", "viewer p95",
         "results"],
        [
            [r["tables"], kind, su["p50_ms"], su["p95_ms"], vw["p50_ms"], vw["p95_ms"],
             su["mean_results"]]
            for r in sizes
            for kind in QUERY_KINDS
            if (su := r["search"]["superuser"]["by_kind"].get(kind))
            and (vw := r["search"]["viewer"]["by_kind"].get(kind))
        ],
        title="Search by query kind (ms)",
    )  # fmt: skip
    for r in sizes:
        if not r["pg_stat_saw_first_scan"]:
            print(
                f"\nN={r['tables']}: pg_stat_user_tables did not yet show the first scan's "
                "inserts; its tuple counts may lag."
            )
        if r["search"]["fields_in_catalog"] < SEARCH_MIN_FIELDS:
            print(
                f"\nN={r['tables']}: the catalog holds {r['search']['fields_in_catalog']} "
                f"fields, fewer than the {SEARCH_MIN_FIELDS:,} the search figures are meant for."
            )
    for r in results.values():
        if "profile" in r:
            for label, prof in r["profile"].items():
                benchlib.print_table(
                    ["function", "cumulative s", "self s", "calls"],
                    [
                        [f["function"], f["cumulative_s"], f["self_s"], f["calls"]]
                        for f in prof["top_cumulative"]
                    ],
                    title=f"N={r['tables']} cProfile of catalog_apply(), {label} apply "
                    f"({prof['profiled_s']:.2f} s profiled; {prof['stats_file']}): "
                    "top cumulative in catalog/services.py and governance/changelog.py",
                )


def goals(r):
    first, rescan = r["first_scan"], r["rescan"]
    peaks = [p for p in (first["peak_rss_mb"], rescan["peak_rss_mb"]) if p is not None]
    return {
        "first_scan_under_target": first["wall_s"] < target_seconds(r["tables"]),
        "peak_rss_under_500_mb": max(peaks) < TARGET_PEAK_RSS_MB,
        "rescan_writes_no_rows": rescan["new_rows_total"] == 0 and rescan["tuples_written"] == 0,
    }


def main():
    args = parse_args()
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # The connector refuses loopback unless it is allowlisted.
    benchlib.configure_env(DEBUG="0", SOURCE_HOSTS_ALLOW=HOST)
    if args.child:
        print(json.dumps(child(args, args.child), default=str))
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    import catalog_synth

    database_url = os.environ["DATABASE_URL"]
    results = {}
    for tables in args.sizes:
        build = None
        if args.rebuild or not introspection.database_exists(tables):
            print(f"Building {catalog_synth.database_name(tables)} ...", flush=True)
            build = catalog_synth.build(tables)
        print(f"Recreating {database_url} and migrating ...", flush=True)
        db_name = benchlib.recreate_database(database_url)
        benchlib.migrate()
        load_before = os.getloadavg()
        try:
            outcome = run_child(args, tables)
        except subprocess.CalledProcessError as exc:
            problem = f"the measuring process exited with status {exc.returncode}"
            outcome = {"tables": tables, "checks_failed": [problem]}
        outcome["build"] = build
        outcome["metadata_database"] = db_name
        outcome["load_average"] = {
            "before_1_5_15": [round(x, 2) for x in load_before],
            "after_1_5_15": [round(x, 2) for x in os.getloadavg()],
        }
        if "rescan" in outcome:
            outcome["goals"] = goals(outcome)
        results[str(tables)] = outcome

    print_report(results, args)
    print()
    for r in results.values():
        load = r["load_average"]
        print(
            f"N={r['tables']}: 1-min load average {load['before_1_5_15'][0]:.2f} before, "
            f"{load['after_1_5_15'][0]:.2f} after, on this {os.cpu_count()}-CPU machine "
            "(other work inflates every figure)."
        )
    print()
    for r in results.values():
        if "goals" not in r:
            continue
        g, first, rescan = r["goals"], r["first_scan"], r["rescan"]
        peak = max(p for p in (first["peak_rss_mb"], rescan["peak_rss_mb"]) if p is not None)
        su, vw = r["search"]["superuser"], r["search"]["viewer"]
        print(f"N={r['tables']}:")
        print(
            f"  first scan under {target_seconds(r['tables']):g} s: {first['wall_s']:.2f} s -> "
            f"{'met' if g['first_scan_under_target'] else 'NOT met'}"
        )
        print(
            f"  peak RSS under {TARGET_PEAK_RSS_MB} MB (first scan and rescan): {peak:.0f} MB -> "
            f"{'met' if g['peak_rss_under_500_mb'] else 'NOT met'}"
        )
        print(
            f"  no rows on rescan: {rescan['new_rows_total']} new rows, "
            f"{rescan['tuples_written']} tuples written -> "
            f"{'met' if g['rescan_writes_no_rows'] else 'NOT met'}"
        )
        print(
            f"  search p95 (reported): superuser {su['p95_ms']:.1f} ms, "
            f"viewer {vw['p95_ms']:.1f} ms"
        )
    failed = [(r["tables"], c) for r in results.values() for c in r["checks_failed"]]
    print(
        "\nChecks (scans succeeded, counts match the source, search finds exact table names "
        f"and the viewer sees what the superuser sees): {'FAILED' if failed else 'passed'}"
    )
    for tables, problem in failed:
        print(f"  N={tables}: {problem}")

    path = benchlib.write_json(
        "scan",
        {
            "benchmark": "scan",
            "target": {
                "first_scan_seconds_per_table_below": TARGET_SECONDS_PER_TABLE,
                "peak_rss_mb_below": TARGET_PEAK_RSS_MB,
                "rescan_rows_written": 0,
            },
            "target_met": all("goals" in r and all(r["goals"].values()) for r in results.values()),
            "checks_passed": not failed,
            "config": {
                "metadata_database_url": database_url,
                "postgres_version": benchlib.server_version(database_url),
                "sizes": args.sizes,
                "queries": args.queries,
                "warmup": args.warmup,
                "seed": args.seed,
                "profile": args.profile,
                "source": {"host": HOST, "port": PORT, "username": USER},
            },
            "machine": benchlib.machine_info(),
            "results": results,
        },
    )
    print(f"Results written to {path.relative_to(benchlib.ROOT)}")
    return 1 if failed else 0


if __name__ == "__main__":
    benchlib.use_project_python()
    sys.exit(main())
