"""The live streaming benchmark's latency figures (bench/streaming.py ``--live``): window
latencies read from a Delta log, and the nearest-rank percentile, on hand-made inputs.

No Spark and no broker: the log is written here as the streaming job's appends write it (one
commit per micro-batch, a ``commitInfo`` with the commit's epoch-ms timestamp and ``add``
actions naming Parquet files).
"""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench.streaming import percentile, window_latencies


def _commit(table, version: int, timestamp_ms: int, files: dict[str, list[int]]) -> None:
    for name, ends in files.items():
        pq.write_table(pa.table({"windowEndTime": pa.array(ends, pa.int64())}), table / name)
    actions = [{"commitInfo": {"timestamp": timestamp_ms, "operation": "WRITE"}}]
    actions += [{"add": {"path": name, "dataChange": True}} for name in files]
    log = table / "_delta_log" / f"{version:020d}.json"
    log.write_text("\n".join(json.dumps(a) for a in actions) + "\n")


def test_each_window_row_gets_its_commits_time_minus_its_end(tmp_path):
    table = tmp_path / "rt_clickevents_userid_agg"
    (table / "_delta_log").mkdir(parents=True)
    _commit(table, 0, 1_000_000, {"a.parquet": []})  # the table's creation: no rows
    _commit(table, 1, 1_050_000, {"b.parquet": [1_010_000, 1_020_000]})
    _commit(table, 2, 1_090_500, {"c.parquet": [1_030_000], "d.parquet": [1_040_000]})

    # by hand: 1,050,000 - 1,010,000 = 40,000; - 1,020,000 = 30,000; 1,090,500 - 1,030,000 =
    # 60,500; - 1,040,000 = 50,500
    assert sorted(window_latencies(table)) == [
        (1_010_000, 40_000),
        (1_020_000, 30_000),
        (1_030_000, 60_500),
        (1_040_000, 50_500),
    ]


@pytest.mark.parametrize(
    ("q", "expected"),
    [(0.5, 3.0), (0.95, 5.0), (0.2, 1.0), (0.4, 2.0), (1.0, 5.0), (0.0, 1.0)],
)
def test_nearest_rank_percentile(q, expected):
    # nearest rank of n = 5 values: the ceil(q * 5)-th smallest (the first for q = 0)
    assert percentile([5.0, 1.0, 4.0, 2.0, 3.0], q) == expected
