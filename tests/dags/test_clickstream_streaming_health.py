"""``clickstream_streaming_health`` wiring, and its check on real checkpoint folders."""

from __future__ import annotations

import pytest

from spark_jobs.streaming.health import STREAM_QUERIES
from tests.dags.conftest import environment, load_dag

pytestmark = pytest.mark.airflow


@pytest.fixture(scope="module")
def dag():
    return load_dag("clickstream_streaming_health")


def test_one_check_every_five_minutes_that_never_retries(dag):
    from airflow.sdk import CronTriggerTimetable

    assert isinstance(dag.timetable, CronTriggerTimetable)
    assert (dag.timetable.expression, str(dag.timetable.timezone)) == ("*/5 * * * *", "UTC")
    assert [t.task_id for t in dag.tasks] == ["check__streaming_checkpoints"]
    assert dag.tasks[0].retries == 0


def test_check_fails_on_a_stale_query_and_passes_when_all_committed(dag, tmp_path):
    check = dag.get_task("check__streaming_checkpoints").python_callable
    for query in STREAM_QUERIES[:-1]:
        commits = tmp_path / "rt" / "_checkpoints" / query / "commits"
        commits.mkdir(parents=True)
        (commits / "0").write_text("v1\n{}\n")
    env = {"LAKEHOUSE_ROOT": str(tmp_path), "LAKEHOUSE_STREAM_MAX_COMMIT_AGE_SEC": "300"}
    with environment(env), pytest.raises(RuntimeError, match="raw_archive: no committed"):
        check()
    (tmp_path / "rt" / "_checkpoints" / "raw_archive" / "commits").mkdir(parents=True)
    (tmp_path / "rt" / "_checkpoints" / "raw_archive" / "commits" / "3").write_text("v1\n{}\n")
    with environment(env):
        assert check() == len(STREAM_QUERIES)
