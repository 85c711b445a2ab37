"""One real-data lake published to both local BI endpoints, shared by the serving tests.

The lake holds an Online Retail slice (Firehose layout), the REES46 slice and the OTTO sample
(Kafka sink layout), run raw -> DWS by the pipeline. The PostgreSQL warehouse and the Spark Thrift
Server are real servers on free ports, started once for the session and stopped by PID at the
end. Their state lives in a folder under /tmp that the ``postgres`` user can reach (PostgreSQL
refuses to run as root, and pytest's own temporary folders are private to their owner).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from spark_jobs import tables as T
from spark_jobs.landing.replay import replay
from spark_jobs.pipeline import run_pipeline
from spark_jobs.serving import bi_publish, thrift_server, warehouse
from spark_jobs.settings import Settings
from tests.conftest import DATA_DIR, TEST_DRIVER_MEMORY
from tests.ports import free_port

OR_START, OR_END = dt.date(2010, 12, 1), dt.date(2010, 12, 8)


@dataclass(frozen=True)
class BiLake:
    settings: Settings
    ranges: dict[str, tuple[dt.date, dt.date]]  # app_id -> published DWS date range


@pytest.fixture(scope="session")
def serving_state():
    """A world-traversable state folder for the endpoints (removed at the end)."""
    path = Path(tempfile.mkdtemp(prefix="lakehouse-serving-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def bi_lake(spark, serving_state, tmp_path_factory) -> BiLake:
    """The three datasets run raw -> DWS, the warehouse started and every day published."""
    root = tmp_path_factory.mktemp("bi")
    settings = replace(
        Settings(spark_master="local[2]", shuffle_partitions=2, driver_memory=TEST_DRIVER_MEMORY),
        lakehouse_root=str(root / "lake"),
        data_dir=str(DATA_DIR),
        thrift_port=free_port(),
        pg_port=free_port(),
        serving_state_dir=str(serving_state),
    )
    ranges = {}
    for dataset, layout, start, end in (
        ("online_retail", "firehose", OR_START, OR_END),
        ("rees46", "kafka", None, None),
        ("otto", "kafka", None, None),
    ):
        landing = str(root / "landing" / dataset)
        summary = replay(dataset, landing, layout, start, end, DATA_DIR)
        first = start or summary.first_event_date
        run_pipeline(spark, settings, landing, first, summary.last_arrival_date)
        ranges[dataset] = (first, summary.last_arrival_date)
    _stream_minutes(spark, settings)
    warehouse.start(settings)
    for first, last in ranges.values():
        bi_publish.publish_days(spark, settings, first, last)
    yield BiLake(settings, ranges)
    assert warehouse.stop(settings) is True
    assert warehouse.status(settings) is None


#: what the streaming job appended to rt_trade_orders_1m in this lake: two micro-batches of
#: (window begin, window end, orders, quantity), epoch ms
RT_MINUTES = [
    [(1_700_000_040_000, 1_700_000_100_000, 3, 7)],
    [(1_700_000_100_000, 1_700_000_160_000, 1, 2)],
]


def _stream_minutes(spark, settings) -> None:
    """Append :data:`RT_MINUTES` to ``rt_trade_orders_1m``, one commit per micro-batch, with
    the streaming job's own idempotent append."""
    from spark_jobs.common.delta_io import append_once, table_path
    from spark_jobs.common.schemas import SCHEMAS

    schema = SCHEMAS[T.RT_TRADE_ORDERS_1M]
    for batch_id, rows in enumerate(RT_MINUTES):
        frame = spark.createDataFrame(rows, schema)
        append_once(frame, table_path(settings, T.RT_TRADE_ORDERS_1M), "bi-lake", batch_id)


@pytest.fixture(scope="session")
def thrift(bi_lake):
    """The Spark Thrift Server over the lake, tables and views registered."""
    pid = thrift_server.start(bi_lake.settings)
    yield pid
    assert thrift_server.stop(bi_lake.settings) is True
    assert thrift_server.status(bi_lake.settings) is None
