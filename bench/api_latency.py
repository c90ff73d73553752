#!/usr/bin/env python3
"""API latency under concurrent clients: sources, tables and search, under gunicorn on PostgreSQL.

Recreates the benchmark database and loads 1,000 sources with 10 tables of 12 fields each
(10,000 tables, 120,000 fields), a superuser, and 8 users in the Viewer role, each granted
viewer on a different 100 of the sources. It starts gunicorn on a free loopback port and
sends a fixed number of requests per scenario from concurrent client threads; in the
"8 viewers" scenarios each client thread is a different viewer. Targets: p95 under 50 ms
for lists and details, under 100 ms for search.

    .venv/bin/python bench/api_latency.py [--requests 2000] [--workers 3] [--concurrency 8]
                                          [--tables-per-source 10]
"""

import argparse
import http.client
import itertools
import json
import os
import random
import re
import runpy
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402

TARGET_P95_MS = {"list": 50.0, "detail": 50.0, "search": 100.0}
SOURCES = 1000
GRANTED = 100
VIEWERS = 8
TABLES_PER_SOURCE = 10
FIELDS_PER_TABLE = 12
LIST_PATH = "/api/v1/sources/"
TABLES_PATH = "/api/v1/catalog/tables/"
SEARCH_PATH = "/api/v1/catalog/search"
TABLE_WORDS = [
    "orders",
    "customers",
    "payments",
    "invoices",
    "shipments",
    "products",
    "events",
    "sessions",
    "accounts",
    "refunds",
]
FIELD_WORDS = [
    "id",
    "customer_id",
    "email",
    "phone",
    "created_at",
    "amount",
    "status",
    "country",
    "first_name",
    "last_name",
    "address",
    "notes",
]
# Whole names, parts of names, a description word and a typo.
SEARCH_TERMS = ["email", "customer", "orders", "paymnts", "address", "refund", "status", "ship"]
COUNT_RE = re.compile(rb'"count"\s*:\s*(\d+)')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="measured requests per scenario")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured requests per scenario")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers (2-4)")
    parser.add_argument(
        "--worker-class", help="gunicorn worker class (default: gunicorn.conf.py's, sync)"
    )
    parser.add_argument("--threads", type=int, help="threads per gthread worker")
    parser.add_argument("--max-seconds", type=float, default=120, help="time cap per scenario")
    parser.add_argument(
        "--throttle-user", default="1000000/min", help="THROTTLE_USER for the server"
    )
    parser.add_argument(
        "--tables-per-source",
        type=int,
        default=TABLES_PER_SOURCE,
        choices=range(1, len(TABLE_WORDS) + 1),
        metavar=f"1-{len(TABLE_WORDS)}",
        help=f"tables under each source (default {TABLES_PER_SOURCE})",
    )
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    if not 2 <= args.workers <= 4:
        parser.error("--workers must be between 2 and 4 (the machine has few cores)")
    if args.requests < 1 or args.concurrency < 1:
        parser.error("--requests and --concurrency must be positive")
    return args


def build_fixture(tables_per_source):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from catalog.models import Field, Table
    from governance.services import grant
    from governance.tokens import token_create
    from sources.models import DataSource

    User = get_user_model()
    admin = User.objects.create_superuser("bench-admin", "bench-admin@example.com", "bench-pw-1")
    environments = ["prod", "staging", "dev"]
    DataSource.objects.bulk_create(
        [
            DataSource(
                name=f"bench-source-{i:04d}",
                kind="postgresql",
                host=f"db-{i:04d}.example.internal",
                port=5432,
                database=f"app_{i:04d}",
                username=f"svc_{i:04d}",
                password=f"pw-{i:04d}-not-a-secret",
                options={"connect_timeout": 5.0},
                environment=environments[i % 3],
                owner=admin,
                description=f"Benchmark source {i}.",
            )
            for i in range(SOURCES)
        ],
        batch_size=500,
    )
    sources = list(DataSource.objects.order_by("pk"))
    ids = [source.pk for source in sources]
    Table.objects.bulk_create(
        [
            Table(
                source=source,
                schema="public",
                name=f"{TABLE_WORDS[t]}_{n:04d}",
                fqn=f"{source.name}.public.{TABLE_WORDS[t]}_{n:04d}",
                row_count=1000 * (t + 1),
                description=f"The {TABLE_WORDS[t]} of application {n}." if t % 3 == 0 else "",
            )
            for n, source in enumerate(sources)
            for t in range(tables_per_source)
        ],
        batch_size=2000,
    )
    table_ids = Table.objects.order_by("pk").values_list("pk", flat=True)
    for start in range(0, len(table_ids), 1000):
        Field.objects.bulk_create(
            [
                Field(
                    table_id=table_id,
                    name=name,
                    position=position,
                    data_type="text",
                    native_type="text",
                    comment="Contact address of the customer" if name == "address" else "",
                )
                for table_id in table_ids[start : start + 1000]
                for position, name in enumerate(FIELD_WORDS[:FIELDS_PER_TABLE], start=1)
            ],
            batch_size=5000,
        )
    viewers = []
    for k in range(VIEWERS):
        viewer = User.objects.create_user(f"bench-viewer-{k}", f"viewer{k}@example.com", "pw-2")
        viewer.groups.add(Group.objects.get(name="Viewer"))  # the role such users hold
        # A different tenth of the sources each, spread over the whole name ordering.
        granted_ids = ids[k :: SOURCES // GRANTED][:GRANTED]
        for source in DataSource.objects.filter(pk__in=granted_ids):
            grant(source, viewer, "viewer")
        viewers.append({"user": viewer, "token": token_create(user=viewer)[1], "ids": granted_ids})
    return {
        "admin": [{"user": admin, "token": token_create(user=admin)[1], "ids": ids}],
        "viewers": viewers,
    }


def analyze():
    """Planner statistics for the fresh tables, as autovacuum would gather them in service."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


class QueryTimer:
    """execute_wrapper timing each query to the microsecond (the debug log keeps 1 ms)."""

    def __init__(self):
        self.times_ms = []

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.times_ms.append((time.perf_counter() - start) * 1000)


def profile_requests(fixture, repeat=20):
    """Per request, served in-process one at a time: SQL queries (one warm request, with
    their database time) and the median wall time of `repeat` requests."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")
    profiles = {}
    for who, label in (("admin", "superuser"), ("viewers", "viewer")):
        data = fixture[who][0]
        headers = {"HTTP_AUTHORIZATION": f"Token {data['token']}"}
        requests = (
            ("sources list", LIST_PATH),
            ("source detail", f"{LIST_PATH}{data['ids'][0]}/"),
            ("tables list", TABLES_PATH),
            ("search", f"{SEARCH_PATH}?q=email"),
        )
        for kind, path in requests:
            client.get(path, **headers)  # warm caches (content types, permissions code paths)
            timer = QueryTimer()
            with CaptureQueriesContext(connection) as ctx, connection.execute_wrapper(timer):
                response = client.get(path, **headers)
            # captured_queries reads the live log, which the next request resets.
            captured = list(ctx.captured_queries)
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                client.get(path, **headers)
                times.append((time.perf_counter() - start) * 1000)
            profiles[f"{kind} · {label}"] = {
                "path": path,
                "status": response.status_code,
                "queries": len(captured),
                "db_ms": round(sum(timer.times_ms), 2),
                "in_process_median_ms": round(benchlib.percentile(sorted(times), 50), 2),
                "sql": [
                    {"ms": round(ms, 2), "sql": q["sql"][:600]}
                    for ms, q in zip(timer.times_ms, captured, strict=False)
                ],
            }
    return profiles


GUNICORN_CONF = benchlib.ROOT / "gunicorn.conf.py"


class Gunicorn:
    """The server as docker-compose runs it (gunicorn.conf.py), on a loopback port."""

    def __init__(self, workers, port, log_path, worker_class=None, threads=None):
        self.workers, self.port, self.log_path = workers, port, log_path
        conf = runpy.run_path(str(GUNICORN_CONF))
        self.worker_class = worker_class or conf["worker_class"]
        self.threads = threads or conf["threads"]
        self.proc = None

    def describe(self):
        threads = f" x {self.threads} threads" if self.worker_class == "gthread" else ""
        return f"{self.workers} gunicorn {self.worker_class} workers{threads}"

    def start(self):
        self.log = open(self.log_path, "w")  # noqa: SIM115
        cmd = [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            str(GUNICORN_CONF),
            "governance.wsgi:application",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(self.workers),
            "--worker-class",
            self.worker_class,
            "--threads",
            str(self.threads),
            "--no-control-socket",  # the default socket lives in ~/.gunicorn and may clash
            "--log-level",
            "warning",
        ]
        self.proc = subprocess.Popen(
            cmd,
            cwd=benchlib.ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_healthy(self, timeout=60):
        url = f"http://127.0.0.1:{self.port}/health/"
        deadline = benchlib.Deadline(timeout)
        last = ""
        while not deadline.passed():
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"gunicorn exited with {self.proc.returncode}; see {self.log_path}"
                )
            try:
                with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except Exception as exc:
                last = str(exc)
            time.sleep(0.25)
        raise RuntimeError(
            f"/health/ did not answer 200 within {timeout}s ({last}); see {self.log_path}"
        )

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        self.log.close()


def run_requests(port, requests, check, concurrency, max_seconds):
    """Send each (token, path) request once from `concurrency` threads; return latencies
    and problems."""
    counter = itertools.count()
    paths = [path for _token, path in requests]
    latencies = [None] * len(paths)
    statuses = [None] * len(paths)
    problems = []
    closes = []
    deadline = benchlib.Deadline(max_seconds)

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        closed = 0
        try:
            while not deadline.passed():
                i = next(counter)
                if i >= len(paths):
                    break
                start = time.perf_counter()
                try:
                    headers = {
                        "Authorization": f"Token {requests[i][0]}",
                        "Accept": "application/json",
                    }
                    conn.request("GET", paths[i], headers=headers)
                    response = conn.getresponse()
                    body = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    statuses[i] = "error"
                    problems.append(f"{paths[i]}: {type(exc).__name__}: {exc}")
                    continue
                latencies[i] = (time.perf_counter() - start) * 1000
                statuses[i] = response.status
                closed += response.will_close
                try:
                    problem = check(paths[i], response.status, body)
                except ValueError as exc:
                    problem = f"{paths[i]}: unreadable body ({exc}): {body[:200]!r}"
                if problem:
                    problems.append(problem)
        finally:
            conn.close()
            closes.append(closed)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    cpu_started = time.process_time()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max_seconds + 60)
    wall = time.perf_counter() - started
    client_cpu = time.process_time() - cpu_started
    done = [v for v in latencies if v is not None]
    return {
        "latencies": done,
        "sent": sum(s is not None for s in statuses),
        "non_200": sum(s is not None and s != 200 for s in statuses),
        "problems": problems,
        "server_closed_connection": sum(closes),
        "wall_s": wall,
        "client_cpu_s": client_cpu,
        "timed_out": deadline.passed() and len(done) < len(paths),
    }


def list_check(expected_count):
    def check(path, status, body):
        if status != 200:
            return f"{path}: HTTP {status}: {body[:200]!r}"
        match = COUNT_RE.search(body[:200])
        count = int(match.group(1)) if match else None
        if count != expected_count:
            return f"{path}: count {count}, expected {expected_count}"
        return None

    return check


def search_check(path, status, body):
    if status != 200:
        return f"{path}: HTTP {status}: {body[:200]!r}"
    if "results" not in json.loads(body):
        return f"{path}: no results in {body[:200]!r}"
    return None


def detail_check(path, status, body):
    if status != 200:
        return f"{path}: HTTP {status}: {body[:200]!r}"
    expected = int(path.rstrip("/").rsplit("/", 1)[1])
    got = json.loads(body).get("id")
    if got != expected:
        return f"{path}: id {got}, expected {expected}"
    return None


def main():
    args = parse_args()
    benchlib.configure_env(DEBUG="0", ALLOWED_HOSTS="127.0.0.1", THROTTLE_USER=args.throttle_user)
    # A SIGTERM still stops gunicorn through the finally below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    database_url = os.environ["DATABASE_URL"]
    rng = random.Random(args.seed)

    print(f"Recreating {database_url} and migrating ...", flush=True)
    db_name = benchlib.recreate_database(database_url)
    benchlib.setup_django()
    from django.core.management import call_command
    from django.db import connections

    call_command("migrate", interactive=False, verbosity=0)
    print(
        f"Loading {SOURCES} sources, {SOURCES * args.tables_per_source} tables, "
        f"{SOURCES * args.tables_per_source * FIELDS_PER_TABLE} fields, a superuser and "
        f"{VIEWERS} viewers with {GRANTED} grants each ...",
        flush=True,
    )
    fixture = build_fixture(args.tables_per_source)
    analyze()
    queries = profile_requests(fixture)
    connections.close_all()

    def requests(who, path, n):
        """n requests of `who` (the superuser, or the viewers in turn); path(user data)."""
        users = fixture[who]
        return [(users[i % len(users)]["token"], path(users[i % len(users)])) for i in range(n)]

    scenarios = []  # name, kind (for its target), who, path, check
    for who, label in (("admin", "superuser"), ("viewers", f"{VIEWERS} viewers")):
        sources = len(fixture[who][0]["ids"])
        scenarios += [
            (f"sources list · {label}", "list", who, lambda _u: LIST_PATH, list_check(sources)),
            (
                f"source detail · {label}",
                "detail",
                who,
                lambda u: f"{LIST_PATH}{rng.choice(u['ids'])}/",
                detail_check,
            ),
            (
                f"tables list · {label}",
                "list",
                who,
                lambda _u: TABLES_PATH,
                list_check(sources * args.tables_per_source),
            ),
            (
                f"search · {label}",
                "search",
                who,
                lambda _u: f"{SEARCH_PATH}?q={rng.choice(SEARCH_TERMS)}",
                search_check,
            ),
        ]

    load_before = os.getloadavg()[0]
    port = benchlib.free_port()
    log_path = benchlib.RESULTS_DIR / "api_latency.gunicorn.log"
    benchlib.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    server = Gunicorn(args.workers, port, log_path, args.worker_class, args.threads)
    results = []
    try:
        print(f"Starting gunicorn ({server.describe()}) on 127.0.0.1:{port} ...", flush=True)
        server.start()
        server.wait_healthy()
        for name, kind, who, path, check in scenarios:
            warm = requests(who, path, args.warmup)
            run_requests(port, warm, check, args.concurrency, args.max_seconds)
            measured = requests(who, path, args.requests)
            print(f"  {name}: {len(measured)} requests, {args.concurrency} threads", flush=True)
            run = run_requests(port, measured, check, args.concurrency, args.max_seconds)
            stats = benchlib.summarize(run["latencies"])
            results.append(
                {
                    "scenario": name,
                    "target_p95_ms": TARGET_P95_MS[kind],
                    "requested": len(measured),
                    "completed": len(run["latencies"]),
                    "non_200": run["non_200"],
                    "failed_checks": len(run["problems"]),
                    "problem_examples": run["problems"][:5],
                    "timed_out": run["timed_out"],
                    "wall_s": round(run["wall_s"], 3),
                    "requests_per_s": round(len(run["latencies"]) / run["wall_s"], 1),
                    "client_cpu_s": round(run["client_cpu_s"], 2),
                    "server_closed_connection": run["server_closed_connection"],
                    **stats,
                }
            )
    finally:
        server.stop()

    ok = all(
        r["failed_checks"] == 0 and r["completed"] == r["requested"] and not r["timed_out"]
        for r in results
    ) and len(results) == len(scenarios)
    for r in results:
        r["meets_target"] = r.get("p95_ms") is not None and r["p95_ms"] < r["target_p95_ms"]

    benchlib.print_table(
        [
            "scenario",
            "requests",
            "errors",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms",
            "req/s",
            "target",
            "met",
        ],
        [
            [
                r["scenario"],
                r["completed"],
                r["failed_checks"],
                r["p50_ms"],
                r["p95_ms"],
                r["p99_ms"],
                r["max_ms"],
                r["requests_per_s"],
                f"p95<{r['target_p95_ms']:.0f}",
                "yes" if r["meets_target"] else "NO",
            ]
            for r in results
        ],
        title=f"API latency: {server.describe()}, "
        f"{args.concurrency} client threads, "
        f"{args.requests} requests per scenario after {args.warmup} warm-up",
    )
    benchlib.print_table(
        ["request", "status", "SQL queries", "SQL ms", "median ms"],
        [
            [name, q["status"], q["queries"], q["db_ms"], q["in_process_median_ms"]]
            for name, q in queries.items()
        ],
        title="One request at a time, in-process (queries by CaptureQueriesContext; "
        "median of 20 requests)",
    )
    client_cpu = sum(r["client_cpu_s"] for r in results)
    wall = sum(r["wall_s"] for r in results)
    print(
        f"\nThe client threads used {client_cpu:.1f} s CPU over {wall:.1f} s of measured time "
        f"on this {os.cpu_count()}-CPU machine (shared with gunicorn and PostgreSQL); "
        f"1-min load average {load_before:.2f} before the server started, "
        f"{os.getloadavg()[0]:.2f} at the end."
    )
    print(
        "\nTargets (p95 under 50 ms for lists and details, 100 ms for search) -> "
        f"{'met' if all(r['meets_target'] for r in results) else 'NOT met'}"
    )
    print(
        "Checks (every response 200, list counts as granted, detail ids match): "
        f"{'passed' if ok else 'FAILED'}"
    )
    for r in results:
        if r["completed"] < r["requested"]:
            print(
                f"  {r['scenario']}: {r['completed']} of {r['requested']} requests done"
                + (f" when the {args.max_seconds:g} s cap was reached" if r["timed_out"] else "")
            )
        for problem in r["problem_examples"]:
            print(f"  {r['scenario']}: {problem}")

    path = benchlib.write_json(
        "api_latency",
        {
            "benchmark": "api_latency",
            "target": {"p95_ms_below": TARGET_P95_MS},
            "target_met": all(r["meets_target"] for r in results),
            "checks_passed": ok,
            "config": {
                "database": db_name,
                "postgres_version": benchlib.server_version(database_url),
                "redis_url": os.environ["REDIS_URL"],
                "gunicorn_workers": args.workers,
                "gunicorn_worker_class": server.worker_class,
                "gunicorn_threads": server.threads,
                "client_threads": args.concurrency,
                "requests_per_scenario": args.requests,
                "warmup_per_scenario": args.warmup,
                "throttle_user": args.throttle_user,
                "sources": SOURCES,
                "granted_sources": GRANTED,
                "viewers": VIEWERS,
                "tables": SOURCES * args.tables_per_source,
                "fields": SOURCES * args.tables_per_source * FIELDS_PER_TABLE,
                "page_size": 50,
                "seed": args.seed,
            },
            "machine": benchlib.machine_info(),
            "scenarios": results,
            "queries_per_request": queries,
        },
    )
    print(f"Results written to {path.relative_to(benchlib.ROOT)}")
    return 0 if ok else 1


if __name__ == "__main__":
    benchlib.use_project_python()
    sys.exit(main())
