# orderwatch: the two commands a fresh machine needs, and the long-running extras.
#   make demo   set up .venv and run the whole system on embedded defaults (Ctrl-C stops it)
#   make test   set up .venv (and Chromium for the UI test) and run the whole test suite, four tests at a
#               time: most tests wait on servers, budgets and clocks on loopback (with two workers the suite
#               kept the two cores ~30 % busy), so four workers halve the wall time again (WORKERS=N to change)
#   make test-under-load   the same suite while two CPU-bound busy loops compete for the cores
#               (scripts/under_load.py stops them whatever the outcome): no test may need an idle machine
#   make docs   serve the documentation site (docs/, mkdocs.yml) on http://127.0.0.1:$(DOCS_PORT), rebuilt on edits

.PHONY: setup demo test test-under-load lint bench soak selection-soak docs

DOCS_PORT ?= 8000
WORKERS ?= 4
PYTEST = .venv/bin/python -m pytest -p no:cacheprovider -n $(WORKERS) $(PYTEST_ARGS)

setup:
	@scripts/bootstrap.sh

demo: setup
	@.venv/bin/python -m scripts.demo

test: setup
	@scripts/system_deps.sh
	$(PYTEST)

test-under-load: setup
	@scripts/system_deps.sh
	.venv/bin/python -m scripts.under_load --spinners 2 -- $(PYTEST)

docs: setup
	NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs serve -a 127.0.0.1:$(DOCS_PORT)

lint: setup
	.venv/bin/ruff check collector_service exchange_sim orderwatch_dagster tests benchmarks scripts
	.venv/bin/mypy collector_service exchange_sim orderwatch_dagster

bench: setup
	.venv/bin/python -m benchmarks $(BENCH_ARGS)

# The long soaks (tests/reliability/soak.py): SOAK_ARGS="--duration 600" for the WebSocket feeds under
# chaos; SOAK_ARGS="--source node --duration 600" for the node-file source (2,000 traders, 200 tracked,
# one run per layout). Add --help for the knobs; exits 1 on any loss, duplicate or wrong final status.
soak: setup
	.venv/bin/python -m tests.reliability.soak $(SOAK_ARGS)

# The selection acceptance run (tests/reliability/selection_soak.py, #21): the default rules select
# 500 trading traders from a 30k-row simulated leaderboard, one collector follows them from 5 source
# addresses (50 live, 450 polled), then the leaderboard changes; exits 1 on any failed check.
# SELECTION_SOAK_ARGS="--traders 50 --addresses 2" for a small run; --help for the knobs.
selection-soak: setup
	.venv/bin/python -m tests.reliability.selection_soak $(SELECTION_SOAK_ARGS)
