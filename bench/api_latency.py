#!/usr/bin/env python3
"""API latency: GET /api/v1/sources/ and /api/v1/sources/{id}/ under gunicorn on PostgreSQL.

Recreates the benchmark database, loads 1,000 sources, a superuser and a user in the Viewer
role granted viewer on 100 of them, starts gunicorn on a free loopback port, and sends a
fixed number of requests per scenario from concurrent client threads. Target: p95 under
50 ms.

    .venv/bin/python bench/api_latency.py [--requests 2000] [--workers 3] [--concurrency 8]
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

TARGET_P95_MS = 50.0
SOURCES = 1000
GRANTED = 100
LIST_PATH = "/api/v1/sources/"
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
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    if not 2 <= args.workers <= 4:
        parser.error("--workers must be between 2 and 4 (the machine has few cores)")
    if args.requests < 1 or args.concurrency < 1:
        parser.error("--requests and --concurrency must be positive")
    return args


def build_fixture():
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from governance.services import grant
    from governance.tokens import token_create
    from sources.models import DataSource

    User = get_user_model()
    admin = User.objects.create_superuser("bench-admin", "bench-admin@example.com", "bench-pw-1")
    viewer = User.objects.create_user("bench-viewer", "bench-viewer@example.com", "bench-pw-2")
    viewer.groups.add(Group.objects.get(name="Viewer"))  # the role such users hold
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
    ids = list(DataSource.objects.order_by("pk").values_list("pk", flat=True))
    # Spread over the whole name ordering rather than the first page.
    granted_ids = ids[:: SOURCES // GRANTED][:GRANTED]
    for source in DataSource.objects.filter(pk__in=granted_ids):
        grant(source, viewer, "viewer")
    return {
        "admin": {"user": admin, "token": token_create(user=admin)[1], "ids": ids},
        "viewer": {
            "user": viewer,
            "token": token_create(user=viewer)[1],
            "ids": granted_ids,
        },
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
    for who, data in fixture.items():
        headers = {"HTTP_AUTHORIZATION": f"Token {data['token']}"}
        for kind, path in (("list", LIST_PATH), ("detail", f"{LIST_PATH}{data['ids'][0]}/")):
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
            label = "superuser" if who == "admin" else "granted user"
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


def run_requests(port, token, paths, check, concurrency, max_seconds):
    """Send each path once from `concurrency` threads; return latencies and problems."""
    counter = itertools.count()
    latencies = [None] * len(paths)
    statuses = [None] * len(paths)
    problems = []
    closes = []
    deadline = benchlib.Deadline(max_seconds)
    headers = {"Authorization": f"Token {token}", "Accept": "application/json"}

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
    print(f"Loading {SOURCES} sources, 2 users, {GRANTED} grants, 2 tokens ...", flush=True)
    fixture = build_fixture()
    analyze()
    queries = profile_requests(fixture)
    connections.close_all()

    scenarios = []
    for who, label in (("admin", "superuser"), ("viewer", "granted user")):
        data = fixture[who]
        scenarios.append(
            (f"list · {label}", who, lambda _n: LIST_PATH, list_check(len(data["ids"])))
        )
        scenarios.append(
            (
                f"detail · {label}",
                who,
                lambda _n, ids=data["ids"]: f"{LIST_PATH}{rng.choice(ids)}/",
                detail_check,
            )
        )

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
        for name, who, make_path, check in scenarios:
            data = fixture[who]
            warm = [make_path(n) for n in range(args.warmup)]
            run_requests(port, data["token"], warm, check, args.concurrency, args.max_seconds)
            paths = [make_path(n) for n in range(args.requests)]
            print(f"  {name}: {len(paths)} requests, {args.concurrency} threads ...", flush=True)
            run = run_requests(
                port, data["token"], paths, check, args.concurrency, args.max_seconds
            )
            stats = benchlib.summarize(run["latencies"])
            results.append(
                {
                    "scenario": name,
                    "requested": len(paths),
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
        r["meets_target"] = r.get("p95_ms") is not None and r["p95_ms"] < TARGET_P95_MS

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
            "p95<50ms",
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
        f"\nTarget: p95 under {TARGET_P95_MS:.0f} ms in every scenario -> "
        f"{'met' if all(r['meets_target'] for r in results) else 'NOT met'}"
    )
    print(
        f"Checks (every response 200, list counts {SOURCES}/{GRANTED}, detail ids match): "
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
