"""Delta writes give files of a sensible size with parallelism: a big partition is several files
(several write tasks), a small one is one file (no small-files problem)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from urllib.parse import unquote

import pytest
from pyspark.sql import functions as F

from spark_jobs import tables as T
from spark_jobs.common import delta_io

pytestmark = pytest.mark.spark

BIG, SMALL = dt.date(2024, 1, 1), [dt.date(2024, 1, 2), dt.date(2024, 1, 3)]


def _files_per_day(spark, path: str) -> dict[dt.date, list[int]]:
    """Sizes (bytes) of the data files of each ``dt`` of a local Delta table's current version."""
    files = spark.read.format("delta").load(path).select(F.input_file_name().alias("f"), "dt")
    sizes: dict[dt.date, list[int]] = {}
    for row in files.distinct().collect():
        local = Path(unquote(row.f.removeprefix("file://").removeprefix("file:")))
        sizes.setdefault(row.dt, []).append(local.stat().st_size)
    return sizes


def test_a_big_partition_is_written_as_several_files_and_a_small_one_as_one(spark, settings):
    # 120k rows of incompressible text on one day (about 8 MB as Parquet), 50 rows on two more
    big = spark.range(120_000).select(
        F.lit("app").alias("app_id"),
        F.sha2(F.col("id").cast("string"), 256).alias("category"),
        *[F.col("id").alias(c) for c in ("product_views", "add_to_carts", "purchases")],
        F.lit(1).cast("decimal(38,4)").alias("revenue"),
        F.col("id").alias("sessions"),
        F.lit(BIG).alias("dt"),
    )
    small = [
        big.limit(50).withColumn("dt", F.lit(day)) for day in SMALL
    ]  # 8 input partitions each, so without binning: 8 files per day
    rows = (
        big.repartition(8).unionByName(small[0].repartition(8)).unionByName(small[1].repartition(8))
    )
    previous = spark.conf.get("spark.databricks.delta.optimizeWrite.binSize")
    spark.conf.set("spark.databricks.delta.optimizeWrite.binSize", "1")  # MiB
    try:
        written = delta_io.replace_partitions(rows, settings, T.DWS_CATEGORY, BIG, SMALL[-1])
    finally:
        spark.conf.set("spark.databricks.delta.optimizeWrite.binSize", previous)
    assert written == 120_100
    sizes = _files_per_day(spark, delta_io.table_path(settings, T.DWS_CATEGORY))
    assert [len(sizes[day]) for day in SMALL] == [1, 1]
    assert len(sizes[BIG]) >= 3  # about 8 MB in bins of 1 MiB
    assert max(sizes[BIG]) < 3 * min(sizes[BIG]) + 2**20  # bins of similar size
