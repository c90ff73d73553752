#!/usr/bin/env bash
# Fuzz every API operation with schemathesis (--checks all) against a real server: a fresh
# PostgreSQL database with the demo catalog, served by gunicorn with gunicorn.conf.py.
# Any failure (a server error, an answer the schema does not describe) fails the run.
#
# The server and schemathesis run in a network namespace of their own that has only a
# loopback interface: sources, scans and connection tests that the fuzzer points at random
# hosts can reach nothing outside this machine. PostgreSQL is reached through its socket.
#
#   FUZZ_DATABASE       database to (re)create (default steward_fuzz)
#   FUZZ_PG_SOCKET      PostgreSQL socket directory (default /var/run/postgresql)
#   FUZZ_MAX_EXAMPLES   test cases per operation and phase (default 5)
#   FUZZ_SEED           schemathesis seed; fixed by default so CI runs are repeatable
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${FUZZ_ISOLATED:-}" ]; then
    exec unshare --net env FUZZ_ISOLATED=1 bash "$0" "$@"
fi
ip link set lo up

PY=${PYTHON:-.venv/bin/python}
DATABASE=${FUZZ_DATABASE:-steward_fuzz}
SOCKET=${FUZZ_PG_SOCKET:-/var/run/postgresql}
WORK=$(mktemp -d)
SERVER_PID=

export STEWARD_ENV=local DEBUG=0 STEWARD_VAR_DIR="$WORK" LOG_LEVEL=WARNING
export DATABASE_URL="postgres://postgres@${SOCKET//\//%2F}/${DATABASE}"
unset REDIS_URL  # an in-process cache and the embedded broker: nothing outlives the run
export SOURCE_CONNECT_TIMEOUT=1 SOURCE_STATEMENT_TIMEOUT=5
for scope in ANON USER LOGIN CONNECTION_TEST LINEAGE_SQL; do
    export "THROTTLE_${scope}=100000/min"
done

database() {  # database create|drop
    "$PY" - "$1" "$SOCKET" "$DATABASE" <<'EOF'
import sys

import psycopg

action, socket, name = sys.argv[1:]
with psycopg.connect(host=socket, user="postgres", dbname="postgres", autocommit=True) as db:
    db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if action == "create":
        db.execute(f'CREATE DATABASE "{name}"')
EOF
}

cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    database drop || true
    rm -rf "$WORK"
}
trap cleanup EXIT

database create
"$PY" manage.py migrate --noinput >/dev/null
"$PY" manage.py demo --no-local-servers >/dev/null
"$PY" manage.py scan "Demo shop" >/dev/null 2>&1

GUNICORN_WORKERS=2 GUNICORN_BIND=127.0.0.1:8000 \
    "$PY" -m gunicorn -c gunicorn.conf.py governance.wsgi:application >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

# A token through the project's own login endpoint, once the server answers.
TOKEN=$("$PY" - "$WORK/admin_password" <<'EOF'
import json
import sys
import time
import urllib.parse
import urllib.request

password = open(sys.argv[1]).read().strip()
body = urllib.parse.urlencode({"username": "admin", "password": password}).encode()
for _ in range(60):
    try:
        with urllib.request.urlopen("http://127.0.0.1:8000/api/v1/auth/token/", body) as answer:
            print(json.load(answer)["token"])
            break
    except OSError:
        time.sleep(0.5)
else:
    sys.exit("the server did not answer")
EOF
)

status=0
"$(dirname "$PY")/schemathesis" --config-file scripts/schemathesis.toml run \
    http://127.0.0.1:8000/api/schema/ \
    --checks all \
    --max-examples "${FUZZ_MAX_EXAMPLES:-5}" \
    --seed "${FUZZ_SEED:-20261203}" \
    --header "Authorization: Token $TOKEN" || status=$?
if [ "$status" -ne 0 ]; then
    echo "--- server log (last 40 lines)"
    tail -n 40 "$WORK/server.log"
fi
exit "$status"
