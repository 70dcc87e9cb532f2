# SimLab: `make run` starts the platform, `make check` is the developer's fast lane,
# `make test` runs every check (what CI runs).
# Both do all set-up on a fresh machine with Python 3.11 (uv is installed if missing).

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
# The user's own PATH, before ours: scripts/ensure-uv.sh makes uv reachable there too.
export SIMLAB_USER_PATH := $(PATH)
export PATH := $(HOME)/.local/bin:$(PATH)

UV ?= uv
# Extra arguments: make run UP_ARGS="--port 9000"; make test PYTEST_ARGS="-x -k login";
# make bench BENCH_ARGS=--quick (passed to every benchmark script)
UP_ARGS ?=
PYTEST_ARGS ?=
BENCH_ARGS ?=
export UV PYTEST_ARGS

# The fast lane leaves out what starts processes or runs long: worker, end-to-end,
# browser and slow tests (markers in pyproject.toml; make test runs them all).
FAST_MARKERS := not slow and not worker and not e2e and not browser

.PHONY: help uv sync run check test test-scaled lint format bench screenshots clean distclean

help:
	@echo "make run      set up and start SimLab on http://127.0.0.1:8000 (UP_ARGS=...)"
	@echo "make check    fast lane: lint, types, pytest on the embedded default without"
	@echo "              worker, end-to-end, browser and slow tests (a few minutes)"
	@echo "make test     lint, types, pytest on the embedded default (+ on PostgreSQL/Redis if up)"
	@echo "make lint     ruff check, ruff format --check, mypy"
	@echo "make format   ruff format and ruff check --fix"
	@echo "make bench    run every benchmarks/*.py script"
	@echo "make screenshots  every web page at 1280 and 390 px into docs/screenshots/"
	@echo "make clean    remove caches and build outputs (distclean: also var/ and .venv/)"

uv:
	@scripts/ensure-uv.sh >/dev/null

sync: uv
	$(UV) sync --frozen
	scripts/assets.sh

run: sync
	$(UV) run simlab up $(UP_ARGS)

check: lint
	env -u DATABASE_URL -u CELERY_BROKER_URL -u REDIS_URL SIMLAB_STACK=embedded \
		$(UV) run pytest -q -m "$(FAST_MARKERS)" $(PYTEST_ARGS)

test: sync
	scripts/test.sh

# The scaled-out run behind nginx (2 web, 2 compute, 2 workers, 1 beat; RabbitMQ, Redis)
# alone (make test runs it last): needs PostgreSQL, RabbitMQ, Redis and Debian's nginx.
test-scaled: sync
	SIMLAB_STACK=services $(UV) run pytest -m scaled $(PYTEST_ARGS)

lint: sync
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy src

screenshots: sync
	$(UV) run python scripts/screenshots.py

format: sync
	$(UV) run ruff format .
	$(UV) run ruff check --fix .

# Every benchmarks/*.py script (helpers named _*.py are skipped); new scripts are picked up.
bench: sync
	@scripts/ensure-wrk.sh
	@status=0; found=0; \
	for script in benchmarks/*.py; do \
		[ -e "$$script" ] || continue; \
		case "$$(basename "$$script")" in _*) continue;; esac; \
		found=1; echo "==> $$script"; \
		$(UV) run python "$$script" $(BENCH_ARGS) || { echo "FAILED: $$script"; status=1; }; \
	done; \
	[ "$$found" = 1 ] || echo "no benchmarks/*.py scripts yet"; \
	exit $$status

clean:
	rm -rf .mypy_cache .ruff_cache .pytest_cache dist build benchmarks/out
	find . -path ./.venv -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf var .venv
