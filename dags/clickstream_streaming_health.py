"""clickstream_streaming_health: fail when a streaming query has stopped committing micro-batches.

Schedule: every 5 minutes (a cron *trigger* timetable: no data interval). One task,
``check__streaming_checkpoints``, reads each ``lakehouse stream`` query's checkpoint
(``<root>/rt/_checkpoints/<query>/commits``) and fails, naming the queries, when a query's last
committed micro-batch is older than ``LAKEHOUSE_STREAM_MAX_COMMIT_AGE_SEC`` (default 300 s) or it
has none (spark_jobs/streaming/health.py, pure Python: no Spark). The DAG's failure callback
alerts; the check never retries (the next run 5 minutes later is the retry).
"""

from __future__ import annotations

import datetime as dt

import clickstream_common as wiring
from airflow.sdk import DAG, CronTriggerTimetable, task

DAG_ID = "clickstream_streaming_health"

with DAG(
    dag_id=DAG_ID,
    description="Fails when a streaming query's checkpoint has not advanced for too long",
    schedule=CronTriggerTimetable("*/5 * * * *", timezone="UTC"),
    start_date=wiring.start_date(),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(minutes=5),
    default_args=wiring.default_args(),
    on_failure_callback=wiring.dag_failure_alert,
    tags=["clickstream", "lakehouse", "streaming"],
    doc_md=__doc__,
) as dag:

    @task(task_id="check__streaming_checkpoints", retries=0)
    def check_streaming_checkpoints() -> int:
        """Raise when a query is stale; return the number of healthy queries."""
        from spark_jobs.settings import load_settings
        from spark_jobs.streaming.health import STREAM_QUERIES, stale_queries

        settings = load_settings()
        problems = stale_queries(settings, settings.stream_max_commit_age_sec)
        if problems:
            raise RuntimeError("stale streaming queries: " + "; ".join(problems))
        return len(STREAM_QUERIES)

    check_streaming_checkpoints()
