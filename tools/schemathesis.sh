#!/usr/bin/env bash
# Schema-driven fuzzing of a real server, as .ci/run runs it: schemathesis (PyPI) reads
# /openapi.json and sends generated requests to every operation with all its checks
# (no server errors, responses that match the document, valid input accepted, invalid
# input refused, ...), once authenticated as a customer and once as an admin, on SQLite
# and on PostgreSQL. Any failure fails the run.
#
#   tools/schemathesis.sh PAZAR_BINARY SCHEMATHESIS_BINARY
#
# Environment: PAZAR_TEST_POSTGRES (default postgres://postgres@127.0.0.1:5432),
# PAZAR_SCHEMATHESIS_EXAMPLES (default 25 per operation and phase),
# PAZAR_SCHEMATHESIS_SEED (default 20261129: the same cases every run; unset it with
# an empty value to explore).
set -euo pipefail

pazar="$1"
st="$(realpath "$2")"
postgres="${PAZAR_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432}"
examples="${PAZAR_SCHEMATHESIS_EXAMPLES:-25}"
seed="${PAZAR_SCHEMATHESIS_SEED-20261129}"
python="$(dirname "$st")/python"
work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# POSTs JSON and prints the access token of the answer.
token() {
    "$python" - "$1" "$2" "$3" <<'EOF'
import json, sys, urllib.request
url, path, body = sys.argv[1], sys.argv[2], sys.argv[3]
request = urllib.request.Request(url + path, data=body.encode(),
                                 headers={"content-type": "application/json"})
print(json.load(urllib.request.urlopen(request))["access_token"])
EOF
}

run_against() {
    local backend="$1" database_url="$2" data_dir="$work/$1"
    mkdir -p "$data_dir"
    export PAZAR_DATA_DIR="$data_dir" DATABASE_URL="$database_url"
    "$pazar" admin create --email admin@fuzz.test --password admin-password >/dev/null
    local port
    port="$(free_port)"
    PAZAR_BIND="127.0.0.1:$port" PAZAR_LOG=warn "$pazar" serve >"$data_dir/server.log" 2>&1 &
    server_pid=$!
    local base="http://127.0.0.1:$port"
    for _ in $(seq 1 100); do
        "$python" -c "import urllib.request; urllib.request.urlopen('$base/health')" 2>/dev/null && break
        sleep 0.1
    done
    local admin customer
    admin="$(token "$base" /api/v1/auth/login '{"email": "admin@fuzz.test", "password": "admin-password"}')"
    customer="$(token "$base" /api/v1/auth/register '{"email": "fuzz@fuzz.test", "password": "customer-password", "name": "Fuzz"}')"
    local seed_args=()
    if [ -n "$seed" ]; then seed_args=(--seed "$seed"); fi
    for role in customer admin; do
        local bearer="$customer"
        if [ "$role" = admin ]; then bearer="$admin"; fi
        echo "-- schemathesis on $backend as $role"
        # From the scratch folder: schemathesis writes its cache where it runs. One
        # worker: with two threads, CPython 3.11.7's ast.parse (schemathesis' coverage
        # phase) can fail with "AST constructor recursion depth mismatch", a
        # thread-safety bug of that interpreter, not of the server.
        (cd "$work" && "$st" run "$base/openapi.json" --checks all --max-examples "$examples" \
            --workers 1 --no-color "${seed_args[@]}" \
            -H "Authorization: Bearer $bearer") || {
            echo "schemathesis found failures on $backend as $role; server log:" >&2
            tail -50 "$data_dir/server.log" >&2
            exit 1
        }
    done
    if grep -q "panicked" "$data_dir/server.log"; then
        echo "the server panicked during the run on $backend:" >&2
        grep -A5 panicked "$data_dir/server.log" >&2
        exit 1
    fi
    kill "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

run_against sqlite "sqlite://$work/sqlite/pazar.db"
database="pazar_test_fuzz_$$"
psql "$postgres/postgres" -qc "create database $database"
run_against postgres "$postgres/$database"
psql "$postgres/postgres" -qc "drop database if exists $database with (force)"
echo "schemathesis: no failures on SQLite and PostgreSQL"
