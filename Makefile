# orderwatch: the two commands a fresh machine needs, and the long-running extras.
#   make demo   set up .venv and run the whole system on embedded defaults (Ctrl-C stops it)
#   make test   set up .venv (and Chromium for the UI test) and run the whole test suite

.PHONY: setup demo test lint bench soak

setup:
	@scripts/bootstrap.sh

demo: setup
	@.venv/bin/python -m scripts.demo

test: setup
	@scripts/system_deps.sh
	.venv/bin/python -m pytest -p no:cacheprovider $(PYTEST_ARGS)

lint: setup
	.venv/bin/ruff check collector_service exchange_sim orderwatch_dagster tests benchmarks scripts
	.venv/bin/mypy collector_service exchange_sim orderwatch_dagster

bench: setup
	.venv/bin/python -m benchmarks $(BENCH_ARGS)

soak: setup
	.venv/bin/python -m tests.reliability.soak $(SOAK_ARGS)
