"""The lab query's session state (``<root>/rt/_state/clickstream_sessions``): its periodic trim
keeps exactly the sessions a later batch can still read, on a small Delta table written here."""

from __future__ import annotations

from spark_jobs.streaming import transforms as X
from spark_jobs.streaming.job import trim_session_state

BASE = 1_709_251_200_000  # 2024-03-01T00:00:00Z in epoch ms


def test_trim_keeps_the_sessions_of_windows_not_closed_before_the_batch(spark, tmp_path):
    state = str(tmp_path / "clickstream_sessions")
    ends = [9_999, 10_000, 10_001, 19_000, 25_000]  # ms after BASE
    rows = [
        (f"u{i}", 1, 0, False, ["cameras"], BASE + e - 500, BASE + e) for i, e in enumerate(ends)
    ]
    schema = (
        "userId string, eventCount bigint, orderCheckoutEventCount bigint, "
        "hasOrderCheckout boolean, deptList array<string>, windowBeginTime bigint, "
        "windowEndTime bigint"
    )
    spark.createDataFrame(rows, schema).write.format("delta").save(state)
    # a batch with watermarks 12 s then 21 s closes [10 s, 20 s): low = 10 s; the window
    # [0, 10 s) (sessions ending at 9.999 s and 10 s) was written by an earlier batch
    low, high = X.closed_session_ends(BASE + 12_000, BASE + 21_000, 10)
    assert (low, high) == (BASE + 10_000, BASE + 20_000)

    trim_session_state(spark, state, low)

    kept = spark.read.format("delta").load(state)
    assert sorted(r.windowEndTime - BASE for r in kept.collect()) == [10_001, 19_000, 25_000]
