"""The gate end to end: validate staged builds, publish only what passes; ODS rows of a run.

Published data is written with ``delta_io.replace_partitions``; a build is staged with
``stage=True``. With no manifest the plan's window for a run ``[D, D]`` is ``[D - 1, D]`` for the
session-dependent tables and ``[D, D]`` for ``dws_active_users_1d`` (see ``common/plan.py``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from spark_jobs import tables as T
from spark_jobs.common import delta_io
from spark_jobs.quality.validate import (
    data_docs_uri,
    main,
    manifest_with_recounts,
    rt_rows,
    run_object_rows,
    run_validate_command,
    store_backend_config,
    validate_table,
)
from spark_jobs.settings import Settings

from .conftest import D1, D2, OBJ1, OBJ2, OBJ3, W, ts

D3 = dt.date(2024, 3, 3)
OBJ4 = (
    "s3a://landing/2024/03/03/08/clicks-1-2024-03-03-08-05-00-"
    "16fd2706-8baf-433b-82eb-8c7fada847da.gz"
)


def _args(table: str, start: dt.date, end: dt.date, staged=False, publish=False):
    return argparse.Namespace(
        table=table, ds=None, start=start, end=end, staged=staged, publish=publish, landing=None
    )


def _rows(spark, settings, table: str, key: str, staged: bool = False) -> list:
    return sorted(
        delta_io.read_table(spark, settings, table, staged).collect(), key=lambda r: r[key]
    )


@pytest.fixture
def lake_env(settings, monkeypatch):
    """The CLI reads its settings from the environment: point it at the test's lake."""
    monkeypatch.setenv("LAKEHOUSE_ROOT", settings.lakehouse_root)
    return settings


@pytest.mark.spark
def test_corrupted_staged_events_fail_and_published_table_is_unchanged(
    spark, lake_env, good_rows, make_df, capsys
):
    settings = lake_env
    good = good_rows[T.DWD_EVENTS]
    delta_io.replace_partitions(make_df(T.DWD_EVENTS, good), settings, T.DWD_EVENTS, D1, D2)
    before = _rows(spark, settings, T.DWD_EVENTS, "event_id")

    bad = [dict(r) for r in good]
    bad[1]["event_id"] = "e1"  # duplicate event_id
    bad[2]["price"] = Decimal("-3.5000")  # negative price
    delta_io.replace_partitions(
        make_df(T.DWD_EVENTS, bad), settings, T.DWD_EVENTS, D1, D2, stage=True
    )

    code = run_validate_command(_args(T.DWD_EVENTS, D2, D2, staged=True, publish=True))

    out = capsys.readouterr().out
    assert code == 1
    assert _rows(spark, settings, T.DWD_EVENTS, "event_id") == before
    assert [r.event_id for r in before] == ["e1", "e2", "e3"]
    assert "FAIL dwd_clickstream_events_di (staged dt 2024-03-01..2024-03-02)" in out
    assert "expect_column_values_to_be_unique [event_id]: 2 unexpected" in out
    assert "expect_column_values_to_be_between [price]: 1 unexpected" in out
    assert "event_id='e3', dt='2024-03-02', price='-3.5000'" in out
    assert "NOT published" in out
    assert Path(settings.lakehouse_root, "data_docs", "index.html").is_file()


@pytest.mark.spark
def test_dau_above_mau_in_staged_build_fails_and_publishes_nothing(
    spark, lake_env, good_rows, make_df, capsys
):
    settings = lake_env
    good = good_rows[T.DWS_ACTIVE_USERS]
    delta_io.replace_partitions(
        make_df(T.DWS_ACTIVE_USERS, good), settings, T.DWS_ACTIVE_USERS, D1, D2
    )
    before = _rows(spark, settings, T.DWS_ACTIVE_USERS, "dt")
    bad = [dict(r) for r in good]
    bad[1].update(dau=12, mau=9, wau=9, events=20)  # dau > mau on 2024-03-02
    delta_io.replace_partitions(
        make_df(T.DWS_ACTIVE_USERS, bad), settings, T.DWS_ACTIVE_USERS, D1, D2, stage=True
    )

    code = run_validate_command(_args(T.DWS_ACTIVE_USERS, D1, D2, staged=True, publish=True))

    out = capsys.readouterr().out
    assert code == 1
    after = _rows(spark, settings, T.DWS_ACTIVE_USERS, "dt")
    assert after == before
    assert [(r.dt, r.dau, r.mau) for r in after] == [(D1, 5, 9), (D2, 2, 9)]
    assert "expect_column_pair_values_a_to_be_greater_than_b [wau, dau]: 1 unexpected" in out
    assert "app_id='shop', dt='2024-03-02', wau=9, dau=12" in out


@pytest.mark.spark
def test_good_staged_build_passes_and_is_published(spark, lake_env, good_rows, make_df, capsys):
    settings = lake_env
    old = good_rows[T.DWS_ACTIVE_USERS]
    delta_io.replace_partitions(
        make_df(T.DWS_ACTIVE_USERS, old), settings, T.DWS_ACTIVE_USERS, D1, D2
    )
    new = [dict(r) for r in old]
    new[1].update(events=4, dau=3, new_users=1, dau_mau_ratio=3 / 9)  # a late event on D2
    delta_io.replace_partitions(
        make_df(T.DWS_ACTIVE_USERS, new), settings, T.DWS_ACTIVE_USERS, D1, D2, stage=True
    )

    code = run_validate_command(_args(T.DWS_ACTIVE_USERS, D1, D2, staged=True, publish=True))

    out = capsys.readouterr().out
    assert code == 0, out
    published = _rows(spark, settings, T.DWS_ACTIVE_USERS, "dt")
    assert [(r.dt, r.events, r.dau, r.new_users) for r in published] == [
        (D1, 10, 5, 2),
        (D2, 4, 3, 1),
    ]
    assert "PASS dws_active_users_1d (staged dt 2024-03-01..2024-03-02): 35/35" in out
    assert "published dws_active_users_1d dt 2024-03-01..2024-03-02: 2 rows" in out
    index = Path(settings.lakehouse_root, "data_docs", "index.html")
    assert "dws_active_users_1d" in index.read_text()


def _write_ingest_tables(settings, good_rows, make_df):
    """The run of D1..D2 (OBJ1-3, consistent) plus OBJ4, arrived on D3, whose one ODS event is
    dated D1 (late) with a negative price, and whose manifest claims 2 records for 1 row."""
    ods = good_rows[T.ODS_EVENTS]
    late = dict(ods[0], event_id="e9", price=Decimal("-1.0000"), etl_source_object=OBJ4)
    late.update(etl_source_line=1, event_ts=ts(D1, 23, 59))
    manifest = good_rows[T.INGEST_MANIFEST]
    manifest.append(dict(manifest[1], etl_source_object=OBJ4, raw_records=2, ods_rows=2, dt=D3))
    manifest[-1]["event_dates"] = [D1]
    for table, rows in (
        (T.ODS_EVENTS, [*ods, late]),
        (T.ODS_REJECTED, good_rows[T.ODS_REJECTED]),
        (T.INGEST_MANIFEST, manifest),
    ):
        delta_io.replace_partitions(make_df(table, rows), settings, table, D1, D3)


@pytest.mark.spark
def test_ods_rows_of_a_run_are_those_of_its_objects(spark, settings, good_rows, make_df):
    _write_ingest_tables(settings, good_rows, make_df)

    ods = run_object_rows(spark, settings, T.ODS_EVENTS, D1, D2)
    assert sorted(r.event_id for r in ods.collect()) == ["e1", "e2", "e3"]
    # a run of D3 lists the folders of D1..D3 (arrival lookback 2 days); without the lookback
    # it is OBJ4's alone
    listed = run_object_rows(spark, settings, T.ODS_EVENTS, D3, D3)
    assert sorted(r.event_id for r in listed.collect()) == ["e1", "e2", "e3", "e9"]
    no_lookback = replace(settings, arrival_lookback_days=0)
    late = run_object_rows(spark, no_lookback, T.ODS_EVENTS, D3, D3)
    assert [r.event_id for r in late.collect()] == ["e9"]
    rejected = run_object_rows(spark, settings, T.ODS_REJECTED, D1, D2)
    assert sorted((r.etl_source_object, r.etl_source_line) for r in rejected.collect()) == [
        (OBJ1, 3),
        (OBJ3, None),
    ]
    recounts = manifest_with_recounts(spark, settings, D1, D3).collect()
    # by hand: OBJ1 2 ODS + 1 rejected, OBJ2 1 + 0, OBJ3 0 + 1, OBJ4 1 + 0
    assert {r.etl_source_object: r.recounted_records for r in recounts} == {
        OBJ1: 3,
        OBJ2: 1,
        OBJ3: 1,
        OBJ4: 1,
    }
    # OBJ4's bad event sits in partition D1 but belongs to the D3 run: the D1..D2 run passes
    outcome = validate_table(spark, settings, T.ODS_EVENTS, D1, D2)
    assert outcome.success, outcome.report()
    assert outcome.label == "objects arrived 2024-03-01..2024-03-02"


@pytest.mark.spark
def test_manifest_reconciliation_counts_the_tables(spark, lake_env, good_rows, make_df, capsys):
    settings = lake_env
    _write_ingest_tables(settings, good_rows, make_df)

    code = run_validate_command(_args(T.INGEST_MANIFEST, D3, D3))

    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL etl_ingest_manifest (objects arrived 2024-03-03..2024-03-03)" in out
    assert "expect_column_pair_values_to_be_equal [raw_records, recounted_records]" in out
    assert f"etl_source_object={OBJ4!r}, dt='2024-03-03', raw_records=2, recounted_records=1" in out
    assert "unexpected_rows_expectation" not in out  # 2 = 2 ODS + 0 rejected in the manifest


def test_staged_and_publish_misuse_are_argument_errors(capsys):
    argv = ["--start", "2024-03-01", "--end", "2024-03-02"]
    assert main(["--table", T.ODS_EVENTS, "--staged", "--publish", *argv]) == 2
    assert "is published with its ingest batch" in capsys.readouterr().err
    assert main(["--table", T.DWD_EVENTS, "--publish", *argv]) == 2
    assert "--publish needs --staged" in capsys.readouterr().err
    for misuse in (["--staged"], ["--landing", "landing/x"]):
        assert main(["--table", T.RT_TRADE_ORDERS_1M, *misuse, *argv]) == 2
        assert "written by the streaming job" in capsys.readouterr().err


@pytest.mark.spark
def test_an_rt_table_is_validated_on_the_rows_whose_time_column_falls_on_the_dates(
    spark, settings, good_rows, make_df
):
    table = T.RT_TRADE_ORDERS_1M
    minute = 60_000
    # W = 2024-03-01T00:00Z; the rows of the two neighbouring days must be left out
    rows = [
        {"windowBeginTime": W + m * minute, "windowEndTime": W + (m + 1) * minute,
         "count_tno": 1, "sum_tnum": 2}
        for m in (-1, 0, 1, 24 * 60 - 1, 24 * 60)  # 02-29 23:59, 03-01 00:00, 00:01, 23:59, 03-02
    ]  # fmt: skip
    make_df(table, rows).write.format("delta").save(delta_io.table_path(settings, table))

    got = sorted(r["windowBeginTime"] for r in rt_rows(spark, settings, table, D1, D1).collect())

    assert got == [W, W + minute, W + (24 * 60 - 1) * minute]
    assert rt_rows(spark, settings, table, D1, D2).count() == 4
    with pytest.raises(FileNotFoundError, match="run `lakehouse stream` first"):
        rt_rows(spark, settings, T.RT_WARNING_ALERTS, D1, D1)


@pytest.mark.spark
def test_a_staged_ingest_batch_is_published_by_the_manifest_check_only_when_it_passes(
    spark, lake_env, good_rows, make_df, capsys
):
    settings = lake_env
    for table in T.INGEST_BATCH:
        delta_io.overwrite_table(make_df(table, good_rows[table]), settings, table, stage=True)
    # the staged manifest claims one more ODS row for OBJ2 than the staged ODS holds
    claims = [dict(r) for r in good_rows[T.INGEST_MANIFEST]]
    claims[1].update(raw_records=2, ods_rows=2)
    delta_io.overwrite_table(make_df(T.INGEST_MANIFEST, claims), settings, T.INGEST_MANIFEST, True)

    assert run_validate_command(_args(T.ODS_EVENTS, D1, D2, staged=True)) == 0
    code = run_validate_command(_args(T.INGEST_MANIFEST, D1, D2, staged=True, publish=True))

    out = capsys.readouterr().out
    assert "PASS ods_clickstream_events_di (staged ingest batch)" in out
    assert code == 1
    assert f"etl_source_object={OBJ2!r}, dt='2024-03-02', raw_records=2, recounted_records=1" in out
    assert "NOT published" in out
    assert all(delta_io.read_table(spark, settings, t).count() == 0 for t in T.INGEST_BATCH)

    delta_io.overwrite_table(
        make_df(T.INGEST_MANIFEST, good_rows[T.INGEST_MANIFEST]), settings, T.INGEST_MANIFEST, True
    )
    code = run_validate_command(_args(T.INGEST_MANIFEST, D1, D2, staged=True, publish=True))

    assert code == 0
    assert "published the ingest batch: 3 objects" in capsys.readouterr().out
    # by hand (conftest): 3 ODS rows, 2 rejected rows, 3 objects
    counts = [delta_io.read_table(spark, settings, t).count() for t in T.INGEST_BATCH]
    assert counts == [3, 2, 3]


@pytest.mark.spark
def test_validating_a_build_that_was_never_staged_is_an_error(spark, settings):
    with pytest.raises(FileNotFoundError, match="no staging twin"):
        validate_table(spark, settings, T.DWD_SESSIONS, D1, D2, staged=True)


def test_validate_py_runs_as_a_script_for_spark_submit():
    # the file spark-submit runs: argument errors exit 2 before any Spark or GX start
    script = Path(__file__).resolve().parents[2] / "spark_jobs" / "quality" / "validate.py"
    done = subprocess.run(
        [sys.executable, str(script), "--table", T.ODS_REJECTED, "--staged", "--publish"]
        + ["--ds", "2024-03-01"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "ods_clickstream_rejected_di is published with its ingest batch" in done.stderr


def test_data_docs_stores_follow_the_lakehouse_root():
    local = Settings(lakehouse_root="/data/lake")
    assert store_backend_config(data_docs_uri(local), local) == {
        "class_name": "TupleFilesystemStoreBackend",
        "base_directory": "/data/lake/data_docs",
    }
    s3 = Settings(lakehouse_root="s3a://acme-lake/prod", s3_endpoint="http://minio:9000")
    assert store_backend_config(data_docs_uri(s3), s3) == {
        "class_name": "TupleS3StoreBackend",
        "bucket": "acme-lake",
        "prefix": "prod/data_docs",
        "boto3_options": {"endpoint_url": "http://minio:9000"},
    }
    with pytest.raises(ValueError, match="local or S3"):
        store_backend_config("hdfs://nn/lake/data_docs", local)
