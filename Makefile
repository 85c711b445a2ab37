# The README's commands. `make demo` sets everything up and runs the main job; `make test` runs
# the tests (also what CI runs).
.PHONY: setup demo test lint bench bench-scale airflow-up airflow-down clean

setup:
	./scripts/setup.sh

demo: setup
	.venv/bin/lakehouse demo

test: setup
	.venv/bin/ruff check spark_jobs dags tests bench
	.venv/bin/python -m pytest -q

lint: setup
	.venv/bin/ruff check spark_jobs dags tests bench
	.venv/bin/ruff format --check spark_jobs dags tests bench

bench: setup
	.venv/bin/python bench/benchmark.py

# the Online Retail year x SCALE (default 20: 10.8 million events) raw -> DWS against DuckDB
bench-scale: setup
	.venv/bin/python bench/scale.py --scale $(or $(SCALE),20)

clean:
	rm -rf lakehouse landing .pytest_cache

airflow-up: setup
	./scripts/airflow_up.sh

airflow-down:
	./scripts/airflow_down.sh
