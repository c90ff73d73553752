"""GET /health/: the database, the cache and the task broker, each checked with a short
timeout; 200 when all answer, 503 naming the parts that do not."""

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from kombu import Connection


def _database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _cache():
    cache.set("steward-health", "ok", 10)
    if cache.get("steward-health") != "ok":
        raise RuntimeError("cache did not return the value written")


def _broker():
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=2) as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


CHECKS = {"database": _database, "cache": _cache, "broker": _broker}


@never_cache
def health(request):
    results, failing = {}, []
    for name, check in CHECKS.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:
            results[name] = f"unavailable: {type(exc).__name__}"
            failing.append(name)
    body = {"status": "ok" if not failing else "unavailable", "checks": results}
    if failing:
        body["failing"] = failing
    response = JsonResponse(body, status=503 if failing else 200)
    if failing:
        response["Retry-After"] = "30"
    return response
