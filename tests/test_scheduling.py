"""The xdist scheduling table of tests/conftest.py names groups that exist: a renamed or moved
test would otherwise lose its weight silently and be handed out last again."""

from __future__ import annotations

import ast

from spark_jobs.settings import PROJECT_DIR
from tests.conftest import GROUP_WEIGHTS, STANDALONE_FILES, scheduling_group


def _test_functions(path: str) -> set[str]:
    tree = ast.parse((PROJECT_DIR / path).read_text())
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


def test_every_weighted_group_is_a_group_of_existing_tests():
    for group in GROUP_WEIGHTS:
        if group == "airflow-standalone":
            assert all((PROJECT_DIR / path).is_file() for path in STANDALONE_FILES)
            continue
        path, _, test = group.partition("::")
        assert (PROJECT_DIR / path).exists(), group
        if test:
            assert test in _test_functions(path), group
            assert scheduling_group(group) == group  # a test of a split file is its own group
        elif path.endswith(".py"):
            assert scheduling_group(f"{path}::test_any") == group
        else:  # a folder whose tests share a fixture
            assert scheduling_group(f"{path}/test_any.py::test_any") == group


def test_tests_sharing_a_fixture_stay_in_one_group():
    # hand-picked node ids: the two Airflow files share the local-Airflow run, the serving
    # tests share the BI lake, parametrised cases of a split file stay together
    assert {
        scheduling_group("tests/dags/test_airflow_ui.py::test_a"),
        scheduling_group("tests/dags/test_clickstream_daily_e2e.py::test_b"),
    } == {"airflow-standalone"}
    assert scheduling_group("tests/serving/test_aws.py::test_c") == "tests/serving"
    assert scheduling_group("tests/serving/test_endpoints.py::test_d[x]") == "tests/serving"
    days = (
        "tests/test_pipeline_e2e.py::"
        "test_online_retail_day_by_day_equals_one_range_run_and_the_reference"
    )
    assert scheduling_group(f"{days}[8-days-across-dst]") == days
    assert scheduling_group("tests/quality/test_suites.py::test_e[a]") == (
        "tests/quality/test_suites.py"
    )
