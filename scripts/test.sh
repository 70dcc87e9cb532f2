#!/usr/bin/env bash
# The test suite as `make test` runs it: lint, format check, types, then pytest on the
# embedded default, then (when PostgreSQL and Redis answer locally) pytest again with
# SIMLAB_STACK=services over everything but tests/engine (pure numerics, run once) and
# the browser journeys (the pages, run once; what they drive on the services stack,
# the same requests and sockets, is covered there by tests/web and tests/compute).
# Every step runs; the summary says which ran and how; any failure exits non-zero.
# Extra pytest arguments: PYTEST_ARGS="-x -k login" make test
set -uo pipefail

cd "$(dirname "$0")/.."
UV="${UV:-uv}"
read -r -a pytest_args <<<"${PYTEST_ARGS:-}"

summary=()
failed=0

record() {  # record NAME STATUS
    summary+=("$(printf '%-6s %s' "$2" "$1")")
    if [ "$2" = "FAIL" ]; then failed=1; fi
}

step() {  # step NAME COMMAND...
    local name=$1
    shift
    echo
    echo "==> ${name}: $*"
    if "$@"; then record "${name}" PASS; else record "${name} (exit $?)" FAIL; fi
}

step "ruff check" "${UV}" run ruff check .
step "ruff format --check" "${UV}" run ruff format --check .
step "mypy src" "${UV}" run mypy src

echo
echo "==> engine warm-up: compile the kernels once, as set-up (simlab prestart) does"
step "engine warm-up" "${UV}" run python -c \
    "from simlab.engine.warmup import warm_up; warm_up(report=lambda n, s: print(f'{n}: {s:.1f} s'))"

echo
echo "==> pytest, embedded default (SQLite, SQLite broker, file cache)"
embedded_rc=0
env -u DATABASE_URL -u CELERY_BROKER_URL -u REDIS_URL SIMLAB_STACK=embedded \
    "${UV}" run pytest "${pytest_args[@]}" || embedded_rc=$?
if [ "${embedded_rc}" -eq 0 ]; then
    record "pytest embedded" PASS
elif [ "${embedded_rc}" -eq 5 ]; then
    record "pytest embedded (no tests collected: nothing ran)" FAIL
else
    record "pytest embedded (exit ${embedded_rc})" FAIL
fi

echo
echo "==> Are PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) up?"
if "${UV}" run python scripts/services_up.py; then
    echo "==> pytest, SIMLAB_STACK=services (PostgreSQL, Redis), without tests/engine and"
    echo "    the browser journeys"
    services_rc=0
    SIMLAB_STACK=services "${UV}" run pytest --ignore=tests/engine -m "not browser" \
        "${pytest_args[@]}" || services_rc=$?
    if [ "${services_rc}" -eq 0 ]; then
        record "pytest services" PASS
    elif [ "${services_rc}" -eq 5 ] && [ "${embedded_rc}" -ne 5 ]; then
        # Nothing outside tests/engine was selected; the embedded run did run tests.
        record "pytest services (no tests collected outside tests/engine)" PASS
    else
        record "pytest services (exit ${services_rc})" FAIL
    fi
else
    record "pytest services (PostgreSQL/Redis not reachable: not run)" SKIP
fi

echo
echo "================ make test summary ================"
printf '%s\n' "${summary[@]}"
echo "==================================================="
if [ "${failed}" -ne 0 ]; then
    echo "make test: FAILED"
    exit 1
fi
echo "make test: all runs passed"
