"""clickstream_bi_publish: publish the validated DWS days to the BI engines.

Schedule: on the DWS Assets (``dws_active_users_1d``, ``dws_conversion_1d``,
``dws_category_1d``), which only the ``check__`` tasks of ``clickstream_daily`` emit, so a run
starts once every DWS table of a daily run has passed its suite, and never for data that failed.

Tasks:

- ``publish_range``: the days to publish. Params ``start``/``end`` when given (a manual
  re-publish, e.g. after a backfill of an old range); otherwise the days of the triggering daily
  runs, reaching ``LAKEHOUSE_LATE_DATA_LOOKBACK_DAYS`` back, because a daily run also rebuilds
  earlier days that received late events.
- ``bi_publish``: ``lakehouse bi-publish --start --end`` (spark-submit): the days' Parquet exports
  (``<root>/exports/<table>/dt=...``), each day replaced in the warehouse marts in one transaction,
  and the Thrift Server's catalog refreshed. Every step rewrites exactly those days, so a rerun
  changes nothing.

The local warehouse (``lakehouse warehouse start``) must be running; on AWS the same exports are
what Redshift's ``COPY`` loads (``sql/redshift/load/load_day.sql``).
"""

from __future__ import annotations

import clickstream_common as wiring
from airflow.sdk import DAG, get_current_context, task

from spark_jobs import tables as T
from spark_jobs.settings import load_settings

DAG_ID = "clickstream_bi_publish"
DWS_TABLES = [t.name for t in T.TABLES if t.layer == "dws"]

with DAG(
    dag_id=DAG_ID,
    description="Validated DWS days -> Parquet exports, warehouse marts, Thrift Server catalog",
    schedule=[wiring.table_asset(name) for name in DWS_TABLES],
    start_date=wiring.start_date(),
    catchup=False,
    max_active_runs=1,
    default_args=wiring.default_args(),
    on_failure_callback=wiring.dag_failure_alert,
    params=wiring.date_range_params(
        "First day to publish (UTC); empty = the triggering runs' days",
        "Last day to publish, inclusive",
    ),
    tags=["clickstream", "lakehouse", "bi"],
    doc_md=__doc__,
) as dag:

    @task(task_id="publish_range")
    def publish_range() -> list[str]:
        """``[start, end]`` of the days to publish (see the DAG doc)."""
        context = get_current_context()
        runs = []
        for events in (context.get("triggering_asset_events") or {}).values():
            for event in events:
                run = event.source_dag_run
                if run is not None:
                    runs.append((run.data_interval_start, run.data_interval_end, run.conf))
        lookback = load_settings().late_data_lookback_days
        return list(wiring.publish_range(context.get("params"), runs, lookback))

    days = publish_range()
    publish = wiring.spark_job(
        "bi_publish",
        wiring.CLI_JOB,
        [
            "bi-publish",
            "--start",
            "{{ ti.xcom_pull(task_ids='publish_range')[0] }}",
            "--end",
            "{{ ti.xcom_pull(task_ids='publish_range')[1] }}",
        ],
    )
    days >> publish
