# The README's commands. `make demo` sets everything up and runs the main job; `make test` runs
# the tests (also what CI runs).
# pytest-xdist workers for `make test`: `auto` = one per core, at most 4 (what CI runs); 0 = one process
TEST_WORKERS ?= auto

.PHONY: setup demo test lint test-slow bench bench-stream bench-scale airflow-up airflow-down clean

setup:
	./scripts/setup.sh

demo: setup
	.venv/bin/lakehouse demo

test: setup
	.venv/bin/ruff check spark_jobs dags tests bench
	.venv/bin/python -m pytest -q -n $(TEST_WORKERS)

# the long real-data checks (45 days of Online Retail run day by day against one range run)
test-slow: setup
	.venv/bin/python -m pytest -q -m slow

lint: setup
	.venv/bin/ruff check spark_jobs dags tests bench
	.venv/bin/ruff format --check spark_jobs dags tests bench

bench: setup
	.venv/bin/python bench/benchmark.py

# the streaming job on a local broker (needs `lakehouse setup --with-kafka`, i.e. mvn once)
bench-stream: setup
	.venv/bin/lakehouse setup --with-kafka
	.venv/bin/python bench/streaming.py

# the Online Retail year x SCALE (default 20: 10.8 million events) raw -> DWS against DuckDB
bench-scale: setup
	.venv/bin/python bench/scale.py --scale $(or $(SCALE),20)

clean:
	rm -rf lakehouse landing .pytest_cache

airflow-up: setup
	./scripts/airflow_up.sh

airflow-down:
	./scripts/airflow_down.sh
