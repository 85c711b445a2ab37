"""Spark defaults that fit the machine: the local driver's heap follows the machine's memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from spark_jobs.common.spark import spark_conf
from spark_jobs.settings import Settings, load_settings
from tests.conftest import TEST_DRIVER_MEMORY


def _meminfo_mib() -> int:
    """MemTotal from /proc/meminfo (a different source than the code's sysconf), in MiB."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise AssertionError("no MemTotal in /proc/meminfo")


def test_a_local_driver_gets_half_the_machine_memory_and_a_cluster_driver_its_own_conf():
    local = spark_conf(Settings(spark_master="local[2]"))
    heap_mib = int(local["spark.driver.memory"].removesuffix("m"))
    assert heap_mib == pytest.approx(_meminfo_mib() / 2, rel=0.02)
    assert "spark.driver.memory" not in spark_conf(Settings(spark_master="yarn"))


def test_driver_memory_is_configurable(monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_DRIVER_MEMORY", "3g")
    assert spark_conf(load_settings())["spark.driver.memory"] == "3g"


@pytest.mark.spark
def test_the_session_jvm_really_has_the_configured_heap(spark):
    # the test session asks for TEST_DRIVER_MEMORY (several test JVMs share the machine)
    runtime = spark.sparkContext._jvm.java.lang.Runtime.getRuntime()
    max_heap_mib = runtime.maxMemory() / (1024 * 1024)
    asked_mib = int(TEST_DRIVER_MEMORY.removesuffix("g")) * 1024
    # the JVM reports a little less than -Xmx (one survivor space is not counted)
    assert asked_mib * 0.85 < max_heap_mib <= asked_mib * 1.02


def test_shuffle_partitions_are_four_per_core_at_least_eight_and_configurable(monkeypatch):
    import subprocess

    cores = int(subprocess.run(["nproc"], capture_output=True, text=True).stdout)  # coreutils
    conf = spark_conf(load_settings())
    assert conf["spark.sql.shuffle.partitions"] == str(max(8, 4 * cores))
    assert conf["spark.default.parallelism"] == str(max(8, 4 * cores))
    monkeypatch.setenv("LAKEHOUSE_SHUFFLE_PARTITIONS", "3")
    assert spark_conf(load_settings())["spark.sql.shuffle.partitions"] == "3"


def test_delta_writes_are_optimized_writes_of_128_mib_files():
    conf = spark_conf(Settings(spark_master="local[2]"))
    assert conf["spark.databricks.delta.optimizeWrite.enabled"] == "true"
    assert conf["spark.databricks.delta.optimizeWrite.binSize"] == "128"
