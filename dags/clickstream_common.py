"""Wiring shared by the clickstream DAGs: where things are, how a job is submitted, alerts.

Nothing here computes data. Everything is read from the environment *when a DAG file is parsed*
(through functions, never module-level constants, so a re-parse sees a changed environment) and
falls back to a safe local default; ``.env.example`` lists every variable:

- ``LAKEHOUSE_PROJECT_DIR``: the project checkout the jobs are submitted from (default: the
  checkout this file belongs to);
- ``LAKEHOUSE_LANDING``: landing URI the daily DAG ingests, a local folder or ``s3://bucket/prefix``
  (default ``<project>/landing/online_retail``, where ``lakehouse replay`` writes);
- ``LAKEHOUSE_LANDING_LAYOUT``: ``firehose`` (default) or ``kafka``; which object keys the
  landing sensor waits for;
- ``LAKEHOUSE_LANDING_WAIT_SEC``: how long the landing sensor waits for the first raw object of
  its day (default 6 h); after that the run's tasks are *skipped*, not failed;
- ``LAKEHOUSE_TASK_RETRIES`` / ``LAKEHOUSE_RETRY_DELAY_SEC``: retries of the Spark tasks
  (default 2, first delay 120 s, doubled each time, at most 30 min);
- ``LAKEHOUSE_START_DATE``: first data interval the DAGs know of (default 2010-12-01, the first
  day of the bundled Online Retail data; catch-up is off, backfills are explicit);
- ``SPARK_CONF_DIR``: Spark defaults for ``spark-submit`` (default ``<project>/.cache/spark-conf``,
  written by ``lakehouse setup``: Delta jars and extensions).

Connections (``AIRFLOW_CONN_*`` environment variables, never stored in the repo):
``spark_default`` (the Spark master, ``local[*]`` locally, ``spark://...``/``yarn``/``k8s://...``
on a cluster), ``fs_default`` (local landing sensor) and ``aws_default`` (S3 landing sensor).
The lakehouse jobs themselves read ``LAKEHOUSE_*`` from the worker's environment.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import logging
import os
from pathlib import Path
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import Asset, Param

from spark_jobs import settings as lakehouse_settings
from spark_jobs import tables as T
from spark_jobs.landing.layouts import FIREHOSE, LAYOUTS, date_prefixes

log = logging.getLogger(__name__)

OWNER = "data-platform"
SPARK_CONN_ID = "spark_default"
FS_CONN_ID = "fs_default"
AWS_CONN_ID = "aws_default"

VALIDATE_JOB = "spark_jobs/quality/validate.py"
CLI_JOB = "spark_jobs/cli.py"
MAINTENANCE_JOB = "spark_jobs/maintenance.py"

#: first and last day (inclusive, UTC) a run processes: the ``start``/``end`` run parameters when
#: given (a range run), else the run's data interval (one UTC day for the daily timetable)
RUN_START = "{{ params.start or data_interval_start | ds }}"
RUN_END = "{{ params.end or macros.ds_add(data_interval_end | ds, -1) }}"


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def project_dir() -> Path:
    """The project checkout the jobs are submitted from (``LAKEHOUSE_PROJECT_DIR``)."""
    return Path(_env("LAKEHOUSE_PROJECT_DIR", str(lakehouse_settings.PROJECT_DIR)))


def landing_uri() -> str:
    """The landing the daily DAG ingests (``LAKEHOUSE_LANDING``)."""
    return _env("LAKEHOUSE_LANDING", str(project_dir() / "landing" / "online_retail"))


def landing_layout() -> str:
    """Object key layout of the landing (``LAKEHOUSE_LANDING_LAYOUT``).

    Raises:
        ValueError: not one of :data:`spark_jobs.landing.layouts.LAYOUTS`.
    """
    layout = _env("LAKEHOUSE_LANDING_LAYOUT", FIREHOSE)
    if layout not in LAYOUTS:
        raise ValueError(f"LAKEHOUSE_LANDING_LAYOUT={layout!r}; expected one of {LAYOUTS}")
    return layout


def landing_wait_sec() -> int:
    """Seconds the landing sensor waits before skipping the run (``LAKEHOUSE_LANDING_WAIT_SEC``)."""
    return int(_env("LAKEHOUSE_LANDING_WAIT_SEC", str(6 * 3600)))


def start_date() -> dt.datetime:
    """First data interval the DAGs know of (``LAKEHOUSE_START_DATE``), midnight UTC."""
    day = dt.date.fromisoformat(_env("LAKEHOUSE_START_DATE", "2010-12-01"))
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def spark_conf_dir() -> str:
    """Folder of the ``spark-defaults.conf`` the jobs are submitted with (``SPARK_CONF_DIR``)."""
    return _env("SPARK_CONF_DIR", str(project_dir() / ".cache" / "spark-conf"))


def job_file(relative: str) -> str:
    """Absolute path of a job file given relative to the project root."""
    return str(project_dir() / relative)


def landing_glob_macro(landing: str, layout: str):
    """A ``landing_glob(day)`` template macro bound to one landing URI and key layout.

    ``landing_glob("YYYY-MM-DD")`` is the pattern of the raw objects that arrived on that UTC day:
    the same key layouts the ingest job lists (:func:`spark_jobs.landing.layouts.date_prefixes`),
    with ``s3a://`` given as ``s3://`` (what the S3 sensor expects). Binding the landing when the
    DAG is parsed keeps the sensor's kind, its pattern and the ingest's ``--landing`` consistent.
    """
    root = landing.rstrip("/")
    if root.startswith("s3a://"):
        root = "s3://" + root.removeprefix("s3a://")

    def landing_glob(day: str) -> str:
        (pattern,) = date_prefixes(layout, dt.date.fromisoformat(day))
        return f"{root}/{pattern}"

    return landing_glob


def async_s3_available() -> bool:
    """True when ``aiobotocore`` (the async S3 client deferred S3 sensors need) is installed."""
    return importlib.util.find_spec("aiobotocore") is not None


def date_range_params(start_help: str, end_help: str) -> dict[str, Param]:
    """The ``start``/``end`` params (UTC ``YYYY-MM-DD``, empty by default) of a DAG that can run
    over an explicit range of days; the descriptions say what empty means for that DAG."""
    return {
        "start": Param(None, type=["null", "string"], format="date", description=start_help),
        "end": Param(None, type=["null", "string"], format="date", description=end_help),
    }


def table_asset(table: str) -> Asset:
    """The Asset a table's check emits once the table's new partitions passed their suite.

    The URI is logical (``lakehouse://<layer>/<table>``), so it does not change with the lake's
    location; the name is the table name (one name everywhere).
    """
    spec = T.get_table(table)
    return Asset(
        name=spec.name,
        uri=f"lakehouse://{spec.layer}/{spec.name}",
        group="lakehouse",
        extra={"layer": spec.layer, "grain": spec.grain},
    )


def _days(context: dict[str, Any]) -> str:
    """The day (or range) a run processes, as text, from its params or data interval."""
    params = context.get("params") or {}
    start, end = params.get("start"), params.get("end")
    if not (start and end):
        interval_start = context.get("data_interval_start")
        interval_end = context.get("data_interval_end")
        if interval_start is None or interval_end is None:
            return "unknown day"
        start = interval_start.date().isoformat()
        end = (interval_end - dt.timedelta(days=1)).date().isoformat()
    return f"day {start}" if start == end else f"days {start}..{end}"


def table_of_task(task_id: str) -> str | None:
    """The table a task works on: the part after ``__`` (``build__T``, ``check__T``), if any."""
    _, sep, table = task_id.partition("__")
    return table if sep and table in T.BY_NAME else None


def task_failure_alert(context: dict[str, Any]) -> str:
    """Task ``on_failure_callback``: log which table and which day(s) failed, and why.

    Returns:
        The alert text (also logged at ERROR level, so it is in the task log and any log alert).
    """
    ti = context.get("task_instance") or context.get("ti")
    task_id = getattr(ti, "task_id", "?")
    table = table_of_task(task_id)
    run_id = getattr(context.get("dag_run"), "run_id", "?")
    what = f"table {table}" if table else f"task {task_id}"
    text = (
        f"{getattr(ti, 'dag_id', '?')}: {what} FAILED for {_days(context)} "
        f"(task {task_id}, try {getattr(ti, 'try_number', '?')}, run {run_id}): "
        f"{context.get('exception')}"
    )
    log.error(text)
    return text


def dag_failure_alert(context: dict[str, Any]) -> str:
    """DAG ``on_failure_callback``: log the failed run, its day(s) and the reason.

    Returns:
        The alert text (also logged at ERROR level).
    """
    dag_run = context.get("dag_run")
    days = _days(
        {
            "params": getattr(dag_run, "conf", None) or {},
            "data_interval_start": getattr(dag_run, "data_interval_start", None),
            "data_interval_end": getattr(dag_run, "data_interval_end", None),
        }
    )
    text = (
        f"{getattr(dag_run, 'dag_id', '?')}: run {getattr(dag_run, 'run_id', '?')} FAILED for "
        f"{days}: {context.get('reason', 'a task failed')}"
    )
    log.error(text)
    return text


def default_args() -> dict[str, Any]:
    """``default_args`` of the clickstream DAGs: owner, retries with back-off, failure alerts."""
    return {
        "owner": OWNER,
        "retries": int(_env("LAKEHOUSE_TASK_RETRIES", "2")),
        "retry_delay": dt.timedelta(seconds=int(_env("LAKEHOUSE_RETRY_DELAY_SEC", "120"))),
        "retry_exponential_backoff": True,
        "max_retry_delay": dt.timedelta(minutes=30),
        "execution_timeout": dt.timedelta(hours=3),
        "on_failure_callback": task_failure_alert,
    }


def spark_job(task_id: str, application: str, args: list[str], **kwargs: Any):
    """A ``spark-submit`` of a project job file (``application`` relative to the project root).

    The master comes from the ``spark_default`` connection, so the same DAG runs on ``local[*]``
    or a cluster; ``SPARK_CONF_DIR`` supplies the Delta jars and settings.
    """
    return SparkSubmitOperator(
        task_id=task_id,
        conn_id=SPARK_CONN_ID,
        application=job_file(application),
        application_args=args,
        name=f"lakehouse-{task_id}",
        env_vars={"SPARK_CONF_DIR": spark_conf_dir()},
        **kwargs,
    )


def publish_range(
    params: dict[str, Any] | None,
    source_runs: list[tuple[dt.datetime | None, dt.datetime | None, dict[str, Any] | None]],
    lookback_days: int,
) -> tuple[str, str]:
    """The UTC days ``(start, end)`` (``YYYY-MM-DD``) a ``clickstream_bi_publish`` run publishes.

    Explicit ``params`` start/end win. Otherwise the days of the daily runs whose DWS checks
    triggered the run, given as ``(data_interval_start, data_interval_end, conf)`` per source
    run: each run's days are its conf start/end, else its data interval (end exclusive, as in
    :data:`RUN_END`); the range spans all of them and reaches ``lookback_days`` before the first,
    because a daily run also rebuilds earlier days that received late events.

    Raises:
        ValueError: neither params nor any source run with dates.
    """
    params = params or {}
    if params.get("start"):
        return params["start"], params.get("end") or params["start"]
    firsts, lasts = [], []
    for interval_start, interval_end, conf in source_runs:
        conf = conf or {}
        if conf.get("start"):
            firsts.append(dt.date.fromisoformat(conf["start"]))
            lasts.append(dt.date.fromisoformat(conf.get("end") or conf["start"]))
        elif interval_start is not None and interval_end is not None:
            firsts.append(interval_start.date())
            lasts.append(max(interval_start.date(), interval_end.date() - dt.timedelta(days=1)))
    if not firsts:
        raise ValueError("no days to publish: give params start/end or trigger from the DWS assets")
    first = min(firsts) - dt.timedelta(days=lookback_days)
    return first.isoformat(), max(lasts).isoformat()
