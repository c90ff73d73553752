"""Gunicorn settings for Steward's web server, shared by docker-compose (`web`) and
bench/api_latency.py. Each value can be changed with a GUNICORN_* variable or on the
command line (`gunicorn -c gunicorn.conf.py governance.wsgi:application --workers 2`).

The API is CPU-bound Python: one worker process per core plus one keeps the cores busy while
a worker waits on PostgreSQL or Redis. Sync workers serve one request at a time and close the
connection after it, so each request goes to whichever worker is free; threaded workers with
keep-alive pin a client's connection to one process, which under load leaves some clients
queued behind a busier worker (set GUNICORN_WORKER_CLASS=gthread and GUNICORN_THREADS to
try them on your traffic).
"""

import os


def _env(name, default):
    value = os.environ.get(name, "")
    return value if value.strip() else default


bind = _env("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(_env("GUNICORN_WORKERS", str((os.cpu_count() or 1) + 1)))
worker_class = _env("GUNICORN_WORKER_CLASS", "sync")
threads = int(_env("GUNICORN_THREADS", "1"))
keepalive = int(_env("GUNICORN_KEEPALIVE", "5"))  # used by threaded workers only
timeout = int(_env("GUNICORN_TIMEOUT", "60"))
graceful_timeout = int(_env("GUNICORN_GRACEFUL_TIMEOUT", "10"))
# Heartbeat files in memory: a container's overlay filesystem can stall them.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
accesslog = _env("GUNICORN_ACCESS_LOG", None)  # "-" for stdout
loglevel = _env("GUNICORN_LOG_LEVEL", "info")


def post_worker_init(worker):
    """The application is loaded by now: move its objects out of the garbage collector's
    reach, so the full collections that requests trigger scan only what requests made."""
    import gc

    gc.freeze()
