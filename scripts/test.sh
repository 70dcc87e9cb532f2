#!/usr/bin/env bash
# The test suite as `make test` runs it: lint, format check, types, then pytest on the
# embedded default, then (when PostgreSQL and Redis answer locally) pytest again with
# SIMLAB_STACK=services over everything but the browser journeys (the pages, run once;
# what they drive on the services stack, the same requests and sockets, is covered there
# by tests/web and tests/compute); the tests that use no stack (STACKLESS: pure numerics,
# the lanes' collection) run once, in one of them.
# The two pytest runs go side by side (SIMLAB_TEST_SERIAL=1: one after the other); the
# time-bar (solo) tests and the scaled-out run behind nginx (with RabbitMQ too) come last.
# Every step runs; the summary says which ran and how; any failure exits non-zero.
# Extra pytest arguments: PYTEST_ARGS="-x -k login" make test
set -uo pipefail

cd "$(dirname "$0")/.."
UV="${UV:-uv}"
read -r -a pytest_args <<<"${PYTEST_ARGS:-}"

summary=()
failed=0
# Every pytest run's output is also kept here, so the summary can name the tests that
# failed (a CI log is often read from its tail).
pytest_logs="$(mktemp -d -t simlab-pytest-logs.XXXXXX)"
trap 'rm -rf "${pytest_logs}"' EXIT

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

# The two pytest runs are isolated from each other (each has its own database, broker
# queue, cache prefix and files: tests/settings.py), and much of their time is spent
# waiting on the processes they start: run them side by side, the services run's output
# kept in a file and printed when it ends. SIMLAB_TEST_SERIAL=1 runs them one by one.
echo
echo "==> Are PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) up?"
services_up=0
if "${UV}" run python scripts/services_up.py; then services_up=1; fi

services_rc=0
services_log=""
services_pid=""
# Tests marked `solo` hold a time bar (e.g. a rescue within 90 s behind a backlog): they
# run after the parallel runs, alone, one stack after the other.
# The tests that use no stack (no database, broker or cache: the engine's and the
# surrogate's numerics, the fast lane's collection) run once, in whichever run has the
# time: the embedded one, except beside a services run, which is minutes shorter (no
# browser journeys) and takes them over (they hold no time-bar test, so the solo runs need
# not care).
STACKLESS=(tests/engine tests/analytics/test_surrogate.py tests/test_lanes.py)
stackless_in=embedded
stackless_skip() {  # stackless_skip RUN: --ignore options unless RUN runs the stackless tests
    if [ "${stackless_in}" != "$1" ]; then printf -- '--ignore=%s\n' "${STACKLESS[@]}"; fi
}
run_embedded() {  # run_embedded MARKERS LOG_NAME
    local skip=()
    mapfile -t skip < <(stackless_skip embedded)
    env -u DATABASE_URL -u CELERY_BROKER_URL -u REDIS_URL SIMLAB_STACK=embedded \
        "${UV}" run pytest "${skip[@]}" -m "$1" "${pytest_args[@]}" 2>&1 \
        | tee "${pytest_logs}/$2.log"
}
run_services() {  # run_services MARKERS LOG_NAME
    # `scaled` (the scaled-out run behind nginx) runs on its own, last: see run_scaled.
    local skip=()
    mapfile -t skip < <(stackless_skip services)
    SIMLAB_STACK=services "${UV}" run pytest "${skip[@]}" \
        -m "not browser and not scaled and ($1)" \
        "${pytest_args[@]}" 2>&1 | tee "${pytest_logs}/$2.log"
}
# The scaled-out run (2 web, 2 compute, 2 workers, a beat, behind nginx; on RabbitMQ and
# on Redis) starts a dozen processes of its own and kills some: alone, after the rest.
run_scaled() {  # run_scaled LOG_NAME
    SIMLAB_STACK=services "${UV}" run pytest -m scaled "${pytest_args[@]}" 2>&1 \
        | tee "${pytest_logs}/$1.log"
}
scaled_ready() {  # what the scaled-out run needs beyond PostgreSQL and Redis
    { command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; } \
        && "${UV}" run python scripts/services_up.py 127.0.0.1:5672 >/dev/null
}
serial=${SIMLAB_TEST_SERIAL:-0}
keep_first_failure() {  # keep_first_failure RC_SO_FAR RC: the run's exit code so far
    if [ "$1" -eq 0 ] && [ "$2" -ne 0 ] && [ "$2" -ne 5 ]; then echo "$2"; else echo "$1"; fi
}

if [ "${services_up}" -eq 1 ] && [ "${serial}" != "1" ]; then
    services_log="${pytest_logs}/services-parallel.out"
    echo "==> pytest, SIMLAB_STACK=services (PostgreSQL, Redis), with ${STACKLESS[*]},"
    echo "    without the browser journeys: started beside the embedded run, output in ${services_log}"
    stackless_in=services
    run_services "not solo" services >"${services_log}" 2>&1 &
    services_pid=$!
fi

echo
echo "==> pytest, embedded default (SQLite, SQLite broker, file cache); the stackless tests in the ${stackless_in} run"
embedded_rc=0
if [ "${serial}" = "1" ]; then
    run_embedded "" embedded || embedded_rc=$?
else
    run_embedded "not solo" embedded || embedded_rc=$?
fi

if [ -n "${services_pid}" ]; then
    echo
    echo "==> pytest, SIMLAB_STACK=services: waiting for it to end"
    wait "${services_pid}" || services_rc=$?
    cat "${services_log}"
fi

if [ "${serial}" != "1" ]; then
    echo
    echo "==> pytest, embedded default: the time-bar (solo) tests, alone"
    solo_rc=0
    run_embedded "solo" embedded-solo || solo_rc=$?
    embedded_rc=$(keep_first_failure "${embedded_rc}" "${solo_rc}")
    if [ "${services_up}" -eq 1 ]; then
        echo
        echo "==> pytest, SIMLAB_STACK=services: the time-bar (solo) tests, alone"
        solo_rc=0
        run_services "solo" services-solo || solo_rc=$?
        services_rc=$(keep_first_failure "${services_rc}" "${solo_rc}")
    fi
elif [ "${services_up}" -eq 1 ]; then
    echo
    echo "==> pytest, SIMLAB_STACK=services (PostgreSQL, Redis), without the stackless tests"
    echo "    and the browser journeys"
    run_services "solo or not solo" services || services_rc=$?
fi

scaled_status=""
if [ "${services_up}" -eq 1 ]; then
    if scaled_ready; then
        echo
        echo "==> pytest, SIMLAB_STACK=services: the scaled-out run behind nginx, alone"
        scaled_rc=0
        run_scaled scaled || scaled_rc=$?
        if [ "${scaled_rc}" -eq 0 ]; then scaled_status=PASS; else scaled_status=FAIL; fi
    else
        scaled_status=SKIP
    fi
fi

if [ "${embedded_rc}" -eq 0 ]; then
    record "pytest embedded" PASS
elif [ "${embedded_rc}" -eq 5 ] && [ "${stackless_in}" = services ] && [ "${services_rc}" -eq 0 ]; then
    # Only stackless tests were selected, and the services run ran them.
    record "pytest embedded (no tests collected outside the stackless ones)" PASS
elif [ "${embedded_rc}" -eq 5 ]; then
    record "pytest embedded (no tests collected: nothing ran)" FAIL
else
    record "pytest embedded (exit ${embedded_rc})" FAIL
fi
if [ "${services_up}" -eq 1 ]; then
    if [ "${services_rc}" -eq 0 ]; then
        record "pytest services" PASS
    elif [ "${services_rc}" -eq 5 ] && [ "${embedded_rc}" -ne 5 ]; then
        # Nothing outside the stackless tests was selected; the embedded run did run tests.
        record "pytest services (no tests collected outside the stackless ones)" PASS
    else
        record "pytest services (exit ${services_rc})" FAIL
    fi
else
    record "pytest services (PostgreSQL/Redis not reachable: not run)" SKIP
fi
case "${scaled_status}" in
    PASS) record "pytest scaled-out (nginx, RabbitMQ and Redis)" PASS ;;
    FAIL) record "pytest scaled-out (nginx, RabbitMQ and Redis; exit ${scaled_rc})" FAIL ;;
    SKIP) record "pytest scaled-out (nginx or RabbitMQ on 127.0.0.1:5672 missing: not run)" SKIP ;;
esac

echo
echo "================ make test summary ================"
printf '%s\n' "${summary[@]}"
echo "==================================================="
# pytest's short summary lines (-rfE) of every run, by run: which tests failed.
for log in "${pytest_logs}"/*.log; do
    [ -e "${log}" ] || continue
    if grep -qE '^(FAILED|ERROR) ' "${log}"; then
        echo "--- $(basename "${log}" .log):"
        grep -E '^(FAILED|ERROR) ' "${log}" | cut -c1-300
    fi
done
if [ "${failed}" -ne 0 ]; then
    echo "make test: FAILED"
    exit 1
fi
echo "make test: all runs passed"
