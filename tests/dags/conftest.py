"""Airflow test environment for the DAG tests.

A private ``AIRFLOW_HOME`` (SQLite metadata DB in a temporary folder, this project's ``dags/`` as
the DAG folder, no example DAGs) is configured *before* Airflow is imported anywhere in the test
process. Fixtures here give a migrated metadata DB, Spark defaults for the submitted jobs
(``local[2]``, 2 shuffle partitions, C1-only JIT for the short task JVMs) and helpers to parse
the DAGs under a given environment.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from spark_jobs.settings import PROJECT_DIR, Settings
from tests.conftest import TEST_DRIVER_MEMORY, TEST_GC

DAGS_DIR = PROJECT_DIR / "dags"
VENV_BIN = Path(sys.executable).parent

_AIRFLOW_HOME = tempfile.mkdtemp(prefix="lakehouse-airflow-tests-")
atexit.register(shutil.rmtree, _AIRFLOW_HOME, True)
os.environ.update(
    {
        "AIRFLOW_HOME": _AIRFLOW_HOME,
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME}/airflow.db",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
    }
)

#: the connections the DAGs use, as a deployment provides them (environment variables)
CONNECTIONS = {
    "AIRFLOW_CONN_SPARK_DEFAULT": '{"conn_type": "spark", "host": "local[2]"}',
    "AIRFLOW_CONN_FS_DEFAULT": '{"conn_type": "fs"}',
}


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """A migrated SQLite metadata DB in the private AIRFLOW_HOME; returns AIRFLOW_HOME."""
    subprocess.run(
        [str(VENV_BIN / "airflow"), "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
        timeout=600,
    )
    return _AIRFLOW_HOME


@pytest.fixture(scope="session")
def spark_conf_dir(tmp_path_factory) -> str:
    """``SPARK_CONF_DIR`` for the submitted jobs: the project's Spark defaults, test-sized."""
    from spark_jobs.common.spark import write_spark_defaults

    folder = tmp_path_factory.mktemp("spark-conf")
    # every task is a short JVM on tiny data: the C1 JIT alone halves its CPU time (measured);
    # the Serial GC saves a few CPU-seconds more (tests/conftest.py)
    quick = f"-XX:TieredStopAtLevel=1 {TEST_GC}"
    settings = Settings(
        spark_master="local[2]",
        shuffle_partitions=2,
        driver_java_options=quick,
        driver_memory=TEST_DRIVER_MEMORY,
    )
    write_spark_defaults(folder, settings)
    return str(folder)


#: the Online Retail day the end-to-end DAG tests run (a Wednesday with 291 invoice lines)
E2E_DAY = dt.date(2010, 12, 22)


@pytest.fixture(scope="session")
def standalone_run(tmp_path_factory, spark_conf_dir):
    """One ``clickstream_daily`` run of :data:`E2E_DAY` in the local Airflow started by the
    README's script (REST API trigger, every task a real ``spark-submit``), Airflow stopped
    afterwards: a :class:`tests.dags.standalone.StandaloneRun`. The UI test checks the run and
    the shutdown; the end-to-end tests continue on its lake with ``dag.test()`` reruns."""
    from tests.dags.standalone import run_day_in_standalone_airflow

    root = tmp_path_factory.mktemp("standalone")
    return run_day_in_standalone_airflow(root, E2E_DAY, spark_conf_dir)


def job_environment(lake: Path, landing: Path, spark_conf: str) -> dict[str, str]:
    """Environment of a deployment running the DAGs on a local lake and landing."""
    return {
        **CONNECTIONS,
        "LAKEHOUSE_ROOT": str(lake),
        "LAKEHOUSE_LANDING": str(landing),
        "LAKEHOUSE_LANDING_WAIT_SEC": "60",
        "SPARK_CONF_DIR": spark_conf,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }


@contextlib.contextmanager
def environment(values: dict[str, str | None]):
    """Temporarily set (or, for None, remove) environment variables."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in values.items():
            if value is None:
                patch.delenv(name, raising=False)
            else:
                patch.setenv(name, value)
        yield


def parse_dags():
    """Parse ``dags/`` as the DAG processor does; returns the ``BundleDagBag``."""
    from airflow.dag_processing.dagbag import BundleDagBag

    return BundleDagBag(dag_folder=DAGS_DIR, bundle_path=DAGS_DIR, bundle_name="dags-folder")


def load_dag(dag_id: str):
    """Parse ``dags/`` under the current environment and return one DAG.

    Raises:
        AssertionError: the folder has import errors.
    """
    bag = parse_dags()
    assert not bag.import_errors, bag.import_errors
    return bag.dags[dag_id]


@pytest.fixture
def wiring(monkeypatch):
    """The DAGs' shared wiring module (``dags/clickstream_common.py``)."""
    import importlib

    monkeypatch.syspath_prepend(str(DAGS_DIR))
    return importlib.import_module("clickstream_common")
