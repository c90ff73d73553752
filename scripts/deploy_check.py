"""CI: the worker and the web server start from requirements.txt alone, as the Docker image
installs it. The test environment has more packages than that (pytest brings `packaging`,
which the Redis transport needs), so only a runtime-only environment shows a missing pin.

1. Builds a virtualenv from requirements.txt alone (reused while requirements.txt is
   unchanged), and creates DATABASE_URL's database afresh (its name must end in
   "_deploy_check": it is dropped first) and migrates it.
2. Starts `celery -A governance worker` from it against REDIS_URL, scans an SQLite source
   through the project's job runner and waits for the job to succeed; stops the worker.
3. Builds the Docker image when a Docker engine answers; otherwise starts the Dockerfile's
   CMD (read from the Dockerfile, so the two cannot drift) from the same virtualenv in
   production mode against DATABASE_URL, checks /health/ and that /metrics is closed.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/steward_deploy_check \
    REDIS_URL=redis://127.0.0.1:6379/15 .venv/bin/python scripts/deploy_check.py
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
TIMEOUT = 120  # seconds for the worker's job, and for the web server to answer


def fail(message, log=None):
    if log is not None and Path(log).exists():
        print(Path(log).read_text()[-4000:], file=sys.stderr)
    sys.exit(f"deploy check: {message}")


def fresh_database(url):
    """Drop and create the check's own PostgreSQL database, so no run leaves rows behind."""
    import dj_database_url
    import psycopg

    params = dj_database_url.parse(url)
    if not params["NAME"].endswith("_deploy_check"):
        fail("DATABASE_URL must name a database ending in _deploy_check (it is recreated)")
    server = {"host": params["HOST"], "port": params["PORT"] or 5432, "user": params["USER"]}
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{params["NAME"]}" WITH (FORCE)')
        db.execute(f'CREATE DATABASE "{params["NAME"]}"')


def runtime_venv(var_dir):
    """A virtualenv with requirements.txt only, rebuilt when the file changes."""
    venv = var_dir / "runtime-venv"
    stamp = venv / "requirements.txt"
    wanted = (ROOT / "requirements.txt").read_text()
    if not (stamp.exists() and stamp.read_text() == wanted):
        print(f"building {venv} from requirements.txt", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "-r", str(ROOT / "requirements.txt")], check=True)
        stamp.write_text(wanted)
    return venv / "bin"


def stop(process):
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def check_worker(bin_dir, var_dir):
    from django.conf import settings

    from catalog.services import scan_enqueue
    from sources.demo import build_shop_database
    from sources.models import DataSource

    database = "deploy_check_shop.sqlite3"
    build_shop_database(Path(settings.SOURCE_SQLITE_DIR) / database, customers=20)
    source, _ = DataSource.objects.update_or_create(
        name="Deploy check", defaults={"kind": "sqlite", "database": database}
    )
    log = var_dir / "deploy-check-worker.log"
    with open(log, "w") as out:
        worker = subprocess.Popen(
            [str(bin_dir / "celery"), "-A", "governance", "worker", "--concurrency=1"],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        job, _ = scan_enqueue(source=source)
        deadline = time.monotonic() + TIMEOUT
        while job.status not in ("succeeded", "failed"):
            if worker.poll() is not None:
                fail(f"the worker exited with {worker.returncode}", log)
            if time.monotonic() > deadline:
                fail(f"job run {job.pk} still {job.status} after {TIMEOUT}s", log)
            time.sleep(0.5)
            job.refresh_from_db()
        if job.status != "succeeded":
            fail(f"job run {job.pk} failed: {job.error}", log)
    finally:
        stop(worker)
    print(f"worker: scan job run {job.pk} succeeded")


def dockerfile_cmd():
    """The Dockerfile's CMD in exec form, e.g. ["gunicorn", "-c", "gunicorn.conf.py", ...]."""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("CMD "):
            return json.loads(line[4:])
    fail("the Dockerfile has no CMD line")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def status_of(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback)
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def check_web_command(bin_dir, var_dir):
    from cryptography.fernet import Fernet

    port = free_port()
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "STEWARD_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "127.0.0.1",
        # Only through gunicorn.conf.py: a command that skips it binds elsewhere.
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "1",
        "XDG_RUNTIME_DIR": tempfile.mkdtemp(),  # gunicorn's control socket, private to this run
    }
    log = var_dir / "deploy-check-web.log"
    command = dockerfile_cmd()
    with open(log, "w") as out:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            if server.poll() is not None:
                fail(f"`{' '.join(command)}` exited with {server.returncode}", log)
            try:
                health = status_of(f"{base}/health/")
                break
            except OSError:
                if time.monotonic() > deadline:
                    fail(f"nothing answered on {base} after {TIMEOUT}s", log)
                time.sleep(0.5)
        if health != 200:
            fail(f"/health/ answered {health}", log)
        if status_of(f"{base}/metrics") != 401:
            fail("/metrics is open to anyone in production", log)
    finally:
        stop(server)
        shutil.rmtree(env["XDG_RUNTIME_DIR"], ignore_errors=True)
    print(f"web: `{' '.join(command)}` served /health/ and kept /metrics closed")


def docker_answers():
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def main():
    for name in ("DATABASE_URL", "REDIS_URL"):
        if not os.environ.get(name):
            fail(f"{name} must be set (PostgreSQL and Redis, as in CI)")
    fresh_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    var_dir = Path(settings.VAR_DIR)
    var_dir.mkdir(parents=True, exist_ok=True)
    bin_dir = runtime_venv(var_dir)
    call_command("migrate", interactive=False, verbosity=0)
    check_worker(bin_dir, var_dir)
    if docker_answers():
        subprocess.run(["docker", "build", "--tag", "steward:ci", str(ROOT)], check=True)
        print("docker: the image builds")
    else:
        print("docker: no engine answers; starting the Dockerfile's command instead")
        check_web_command(bin_dir, var_dir)


if __name__ == "__main__":
    main()
