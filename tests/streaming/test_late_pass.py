"""When a stateful query's late pass runs: the rule of :func:`spark_jobs.streaming.job.dropped_rows`
over Spark's progress JSON (the late records themselves are checked end to end, across a kill,
in test_stream_restart.py)."""

from __future__ import annotations

import json
from types import SimpleNamespace

from spark_jobs.streaming.job import dropped_rows


def _query(progress: dict | None) -> SimpleNamespace:
    """What the job holds of a running query: its ``lastProgress`` (an object with ``.json``)."""
    last = None if progress is None else SimpleNamespace(json=json.dumps(progress))
    return SimpleNamespace(lastProgress=last)


def test_dropped_rows_are_summed_over_the_operators_of_that_batch_only():
    # the session window and the tumbling window of a chained lab query: 3 + 1 rows dropped
    progress = {
        "batchId": 7,
        "numInputRows": 500,
        "stateOperators": [
            {"operatorName": "sessionWindowStateStoreSaveExec", "numRowsDroppedByWatermark": 3},
            {"operatorName": "stateStoreSave", "numRowsDroppedByWatermark": 1},
        ],
    }
    assert dropped_rows(_query(progress), 7) == 4
    # the progress is of another batch (not reported yet): unknown, so the pass runs
    assert dropped_rows(_query(progress), 6) is None


def test_no_progress_is_unknown_and_a_clean_batch_is_zero():
    assert dropped_rows(None, 3) is None  # no query handle yet
    assert dropped_rows(_query(None), 3) is None  # restarted: no batch run in this process
    clean = {"batchId": 3, "stateOperators": [{"numRowsDroppedByWatermark": 0}]}
    assert dropped_rows(_query(clean), 3) == 0
