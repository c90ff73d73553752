"""gunicorn.conf.py, the one server configuration of the image, docker-compose and the API
benchmark."""

import json
import runpy
from pathlib import Path

import yaml
from django.conf import settings

CONF = Path(settings.BASE_DIR) / "gunicorn.conf.py"


def test_defaults_are_sync_workers_one_per_core_plus_one(monkeypatch):
    for name in ("GUNICORN_WORKERS", "GUNICORN_WORKER_CLASS", "GUNICORN_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    conf = runpy.run_path(str(CONF))
    assert (conf["workers"], conf["worker_class"], conf["threads"]) == (3, "sync", 1)
    assert (conf["timeout"], conf["accesslog"]) == (60, None)


def test_environment_overrides(monkeypatch):
    monkeypatch.setenv("GUNICORN_WORKERS", "5")
    monkeypatch.setenv("GUNICORN_WORKER_CLASS", "gthread")
    monkeypatch.setenv("GUNICORN_THREADS", "4")
    monkeypatch.setenv("GUNICORN_ACCESS_LOG", "-")
    conf = runpy.run_path(str(CONF))
    assert (conf["workers"], conf["worker_class"], conf["threads"]) == (5, "gthread", 4)
    assert conf["accesslog"] == "-"


def test_docker_compose_web_uses_it():
    compose = yaml.safe_load((Path(settings.BASE_DIR) / "docker-compose.yml").read_text())
    assert "gunicorn -c gunicorn.conf.py governance.wsgi:application" in " ".join(
        compose["services"]["web"]["command"].split()
    )


def test_the_image_starts_gunicorn_with_it_and_no_overriding_flags():
    dockerfile = (Path(settings.BASE_DIR) / "Dockerfile").read_text().splitlines()
    cmd = [json.loads(line.removeprefix("CMD ")) for line in dockerfile if line.startswith("CMD ")]
    assert cmd == [["gunicorn", "-c", "gunicorn.conf.py", "governance.wsgi:application"]]


def test_workers_freeze_the_loaded_application_out_of_the_collector():
    import gc

    conf = runpy.run_path(str(CONF))
    try:
        conf["post_worker_init"](None)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
