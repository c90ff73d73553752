import pytest
from django.core.cache import cache

from governance.celery import app as celery_app


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path):
    """Each test: an empty cache (login counters, throttles), tasks run in-process, and a
    private directory for SQLite sources; loopback is allowlisted explicitly."""
    cache.clear()
    settings.SOURCE_HOSTS_ALLOW = ["127.0.0.1"]
    settings.SOURCE_SQLITE_DIR = str(tmp_path / "sources")
    (tmp_path / "sources").mkdir()
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False
    cache.clear()
