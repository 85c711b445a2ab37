"""The command line and the spark-submit entry points, run as a user would (subprocesses)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from spark_jobs.settings import PROJECT_DIR
from tests.conftest import DATA_DIR, TEST_DRIVER_MEMORY

BIN = Path(sys.executable).parent


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=900, check=False
    )


def test_replay_cli_writes_kafka_sink_objects(tmp_path):
    result = _run(
        [str(BIN / "lakehouse"), "replay", "rees46", "--to", str(tmp_path), "--layout", "kafka"],
        {**os.environ, "LAKEHOUSE_DATA_DIR": str(DATA_DIR)},
    )
    assert result.returncode == 0, result.stderr
    assert "17434 records" in result.stdout
    objects = list((tmp_path / "topics" / "rees46").rglob("rees46+*+*.json.gz"))
    assert len(objects) == int(result.stdout.split(" in ")[1].split()[0])


def test_bad_arguments_exit_with_code_2():
    result = _run([str(BIN / "lakehouse"), "run", "--landing", "x"], dict(os.environ))
    assert result.returncode == 2
    assert "--ds" in result.stderr


@pytest.mark.spark
def test_jobs_run_under_spark_submit(tmp_path):
    """ODS ingest then DWD events as two spark-submit applications with the generated defaults."""
    from spark_jobs.common.spark import write_spark_defaults
    from spark_jobs.settings import Settings

    conf_dir = tmp_path / "spark-conf"
    small = Settings(
        spark_master="local[2]", shuffle_partitions=2, driver_memory=TEST_DRIVER_MEMORY
    )
    write_spark_defaults(conf_dir, small)
    lake, landing = tmp_path / "lake", tmp_path / "landing"
    env = {
        **os.environ,
        "SPARK_CONF_DIR": str(conf_dir),
        "LAKEHOUSE_ROOT": str(lake),
        "LAKEHOUSE_DATA_DIR": str(DATA_DIR),
        "PYSPARK_PYTHON": sys.executable,
    }
    assert (
        _run([str(BIN / "lakehouse"), "replay", "rees46", "--to", str(landing)], env).returncode
        == 0
    )
    submit = str(BIN / "spark-submit")
    ods = _run(
        [
            submit,
            "spark_jobs/ods/ods_clickstream_events_di.py",
            "--landing",
            str(landing),
            "--ds",
            "2019-10-01",
        ],
        env,
    )
    assert ods.returncode == 0, ods.stderr[-3000:]
    assert "raw records 17434 = ODS 17434 + rejected 0" in ods.stdout + ods.stderr
    dwd = _run([submit, "spark_jobs/dwd/dwd_clickstream_events_di.py", "--ds", "2019-10-01"], env)
    assert dwd.returncode == 0, dwd.stderr[-3000:]
    output = dwd.stdout + dwd.stderr
    assert "dwd_clickstream_events_di    dt 2019-09-30..2019-10-01 done rows=17434" in output
    # Spark's own logging stays quiet: every line is ours or the JVM's one start-up notice
    assert all(
        " lakehouse " in line or line.startswith("WARNING: Using incubator modules")
        for line in output.splitlines()
    ), output
