#!/usr/bin/env bash
# Migrate, load the demo, then run the web server, a Celery worker and beat together.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
PORT=${PORT:-8000}
# The demo registers sources on this machine; loopback is refused unless allowlisted.
export SOURCE_HOSTS_ALLOW=${SOURCE_HOSTS_ALLOW:-127.0.0.1,::1,localhost}
# Local databases on the private network stay reachable for the demo (production blocks them).
export SOURCE_BLOCK_PRIVATE_NETWORKS=${SOURCE_BLOCK_PRIVATE_NETWORKS:-false}
mkdir -p var

"$PY" manage.py migrate --noinput
"$PY" manage.py demo
"$PY" manage.py scan "Demo shop"

"$PY" -m celery -A governance worker --beat --loglevel=INFO --concurrency=2 \
    --schedule var/celerybeat-schedule >var/celery.log 2>&1 &
CELERY_PID=$!
trap 'kill "$CELERY_PID" 2>/dev/null || true; wait "$CELERY_PID" 2>/dev/null || true' EXIT INT TERM

echo
echo "Steward is running at http://127.0.0.1:${PORT}/admin/  (API: /api/v1/, docs: /api/docs/)"
echo "Worker and beat log: var/celery.log"
"$PY" manage.py runserver "127.0.0.1:${PORT}"
