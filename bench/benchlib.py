"""Shared pieces of the benchmark scripts: environment, database, statistics and output."""

import json
import os
import platform
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
VENV_DIR = ROOT / ".venv"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/steward_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"


def use_project_python():
    """Re-run this script under the project's virtualenv when started with another Python."""
    venv_python = VENV_DIR / "bin" / "python"
    if os.environ.get("STEWARD_BENCH_REEXEC") or not venv_python.exists():
        return
    if Path(sys.prefix).resolve() != VENV_DIR.resolve():
        os.environ["STEWARD_BENCH_REEXEC"] = "1"
        os.execv(str(venv_python), [str(venv_python), *sys.argv])  # noqa: S606


def configure_env(**forced):
    """Point Steward at the benchmark database, cache and var dir; `forced` values always win."""
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ.setdefault("REDIS_URL", DEFAULT_REDIS_URL)
    # Generated keys stay with the results, away from the developer's var/.
    os.environ.setdefault("STEWARD_VAR_DIR", str(RESULTS_DIR / "var"))
    os.environ.setdefault("STEWARD_ENV", "local")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
    # Running the app must not leave files outside bench/.
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    for key, value in forced.items():
        os.environ[key] = str(value)
    return dict(os.environ)


def setup_django():
    sys.dont_write_bytecode = True
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def migrate():
    """Migrate the configured database in a child process, leaving this one without Django
    set up (a benchmark then measures a fresh process)."""
    import subprocess

    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "migrate", "--verbosity", "0"],
        check=True,
        cwd=ROOT,
    )


def _db_params(url):
    import dj_database_url

    cfg = dj_database_url.parse(url)
    if cfg["ENGINE"] != "django.db.backends.postgresql":
        sys.exit(f"DATABASE_URL must be a PostgreSQL URL, got engine {cfg['ENGINE']}")
    params = {
        "host": cfg.get("HOST") or "127.0.0.1",
        "port": cfg.get("PORT") or 5432,
        "user": cfg.get("USER") or "postgres",
        "connect_timeout": 5,
    }
    if cfg.get("PASSWORD"):
        params["password"] = cfg["PASSWORD"]
    return cfg["NAME"], params


def _maintenance_connection(params):
    import psycopg

    return psycopg.connect(dbname="postgres", autocommit=True, **params)


def _check_bench_name(name, verb):
    # A DATABASE_URL exported for development or CI must not be wiped or filled with fixtures.
    if "bench" not in name:
        sys.exit(
            f"refusing to {verb} database {name!r}: its name must contain 'bench' "
            f"(set DATABASE_URL, default {DEFAULT_DATABASE_URL})"
        )


def recreate_database(url):
    """Drop and create the benchmark database (only one whose name says it is for benchmarks)."""
    from psycopg import sql

    name, params = _db_params(url)
    _check_bench_name(name, "drop")
    with _maintenance_connection(params) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def ensure_database(url):
    from psycopg import sql

    name, params = _db_params(url)
    _check_bench_name(name, "use")
    with _maintenance_connection(params) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def server_version(url):
    _, params = _db_params(url)
    with _maintenance_connection(params) as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(sorted_values, pct):
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return float("nan")
    rank = (len(sorted_values) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def summarize(values_ms):
    values = sorted(values_ms)
    if not values:
        keys = ("min_ms", "mean_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms")
        return {"n": 0, **dict.fromkeys(keys)}
    return {
        "n": len(values),
        "min_ms": round(values[0], 3),
        "mean_ms": round(sum(values) / len(values), 3),
        "p50_ms": round(percentile(values, 50), 3),
        "p95_ms": round(percentile(values, 95), 3),
        "p99_ms": round(percentile(values, 99), 3),
        "max_ms": round(values[-1], 3),
    }


def print_table(headers, rows, title=None):
    cells = [[str(c) for c in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [
        bool(rows) and all(_is_number(row[i]) or row[i] is None for row in rows)
        for i in range(len(headers))
    ]

    def line(row):
        return "  ".join(
            cell.rjust(widths[i]) if numeric[i] else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ).rstrip()

    if title:
        print(f"\n{title}")
    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print(line(row))


def _is_number(value):
    return isinstance(value, int | float) and not isinstance(value, bool)


def _fmt(value):
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def machine_info():
    return {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        # Other work on the machine shows here; it inflates every figure.
        "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()],
    }


def write_json(name, data):
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


class Deadline:
    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def passed(self):
        return time.monotonic() >= self.end
