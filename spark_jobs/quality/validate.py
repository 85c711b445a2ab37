"""Great Expectations gates: validate a table's new partitions, then (optionally) publish them.

One suite per table, stored as GX Core 1.x ``ExpectationSuite`` JSON in
``expectations/<table>.json`` (file name = suite name = table name). The JSON is the definition:
edit it there. Each suite is run on a Spark DataFrame handed over at run time (a Spark data
source, a DataFrame asset, a whole-DataFrame batch definition, a validation definition and a
checkpoint whose ``UpdateDataDocsAction`` renders Data Docs HTML under
``<LAKEHOUSE_ROOT>/data_docs/`` (``index.html`` there). The GX context is ephemeral (nothing is
written to the project directory); only its expectation-suite and validation-result stores are
files, under ``<LAKEHOUSE_ROOT>/data_docs/.gx/``, so the Data Docs index lists every run.

What every suite checks: the declared columns in order (``ExpectTableColumnsToMatchOrderedList``),
each column's existence and Spark type, non-null for the columns declared NOT NULL, uniqueness of
the registry key. Beyond that: ``event_type`` in ``schemas.EVENT_TYPES``, ``price >= 0`` and
``dt = to_date(event_ts)`` (ODS, DWD events); sessions: ``0 <= duration_sec <= session cap``,
end >= start, per-type counts adding up to ``event_cnt``, funnel flags implying earlier steps;
``new_users <= dau <= wau <= mau`` and ``dau <= events``; funnel counts non-increasing
(``sessions >= product_view_sessions >= add_to_cart_sessions >= purchase_sessions``),
``purchase_sessions <= sessions_with_purchase <= sessions``, rates in [0, 1]; counts and revenue
``>= 0``; retention: ``day_n`` in [0, 30], ``retained_users <= cohort_users`` (all of them on day
0), ``dt = activity_dt = cohort_dt + day_n``, ``retention_rate = retained_users / cohort_users``
(null when the cohort is empty); real-time tables: window bounds aligned (``[begin, end)`` of
10 s or 1 min, epoch ms), counts ``>= 1``, ``userSessionCountWithOrderCheckout <=
userSessionCount`` and the truncated ``percentSessionswithBuy``, ``deptList`` consistent with
``eventCount``, no ``N/A`` department, error markers in ``errorMsg``, ``warningCount >=`` the
alert threshold (``{"$PARAMETER": "warning_alert_threshold"}``), late records behind the
watermark (``latenessMs = watermarkMs - eventTime >= 1``). Row rules across columns that no
built-in expectation expresses are ``UnexpectedRowsExpectation`` Spark SQL queries
(``SELECT * FROM {batch} WHERE <broken>``).

Which rows a check sees (:func:`validate_table`, dates inclusive, UTC):

- DWD/DWS tables: the table's rewrite window for the run ``[start, end]``
  (:func:`spark_jobs.common.plan.plan_rebuild`), from the published table or, with
  ``staged=True``, from its staging twin (write-audit-publish);
- ODS events and rejected records: the rows of the raw objects whose manifest arrival date
  ``dt`` is in ``[start, end]`` (ODS partitions pruned to the manifest's ``event_dates``);
- real-time tables (``rt_*``, written by the streaming job, not partitioned): the rows whose
  ``time_column`` (the registry's; BIGINT epoch ms: a window's begin, an event's time) falls on
  a UTC date in ``[start, end]`` (:func:`rt_rows`: a filter over the whole table, helped by
  Delta's file statistics; ``--staged``, ``--publish`` and ``--landing`` do not apply);
- ``etl_ingest_manifest``: the rows of those objects, plus a ``recounted_records`` column (LongType)
  = the object's rows counted in the ODS table + its rows counted in the rejected table. The suite
  then expresses the reconciliation as ``ExpectColumnPairValuesToBeEqual(raw_records,
  recounted_records)`` (a per-row comparison whose failures list the objects), and the manifest's
  own arithmetic ``raw_records = ods_rows + rejected_rows`` as an ``UnexpectedRowsExpectation``
  (a Spark SQL query returning the rows that do not add up). Counting in the tables, not trusting
  the manifest's own columns, catches rows lost or doubled after the ingest wrote its manifest.

With ``--staged`` the ODS tables are validated on the ingest's staged batch (the whole staging
twin: the rows of the objects the last ``ingest --stage`` read; the manifest's recounts then count
the staged ODS and rejected rows). The batch is published by the manifest's check:
``--table etl_ingest_manifest --staged --publish`` publishes ODS, rejected, then the manifest
(:func:`spark_jobs.ods.ods_clickstream_events_di.publish_ingest`), pinned to the staged versions
it validated. ``--publish`` on the ODS events or rejected table is refused (exit code 2): their
rows are only ever published together with the manifest.

Suite parameters: ``duration_sec``'s upper bound in the sessions suite is
``{"$PARAMETER": "session_max_sec"}``, filled from :class:`~spark_jobs.settings.Settings` at run
time, so the session cap is defined once (``LAKEHOUSE_SESSION_MAX_SEC``, 24 h by default).

Type checks compare the Spark type class (``DecimalType``, ``MapType``...), not precision or
element types; ``meta.declared_type`` in the JSON records the declared type in full.

Command line (also ``lakehouse validate``)::

    spark-submit spark_jobs/quality/validate.py --table T --start D --end D [--staged] [--publish]

Exit codes: 0 all expectations passed (and, with ``--publish``, the staged partitions were
published); 1 an expectation failed (nothing published) or an error; 2 bad arguments.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import re
import sys
import threading
import uuid
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from spark_jobs import tables as T
from spark_jobs.common.jobframe import add_date_arguments, configure_logging, resolve_dates
from spark_jobs.settings import PROJECT_DIR, Settings, load_settings

log = logging.getLogger("lakehouse")

#: where the suites live: ``<project>/expectations/<table>.json``
EXPECTATIONS_DIR = PROJECT_DIR / "expectations"
#: the derived column the manifest suite reconciles ``raw_records`` against
RECOUNT_COLUMN = "recounted_records"
#: GX object names inside the (ephemeral) context
DATA_DOCS_SITE = "lakehouse_data_docs"
_DATASOURCE = "lakehouse"
#: how many unexpected values/rows a failure prints
SAMPLE_ROWS = 5
#: tables whose staged partitions a check validates (and publishes) by the plan's window
STAGED_TABLES: tuple[str, ...] = T.DOWNSTREAM_BUILD_ORDER


@dataclass(frozen=True)
class FailedExpectation:
    """One failed expectation of a validation run.

    Attributes:
        type: the expectation type, e.g. ``expect_column_values_to_be_unique``.
        columns: the column(s) it is about (empty for table-level expectations).
        description: the suite's description of the rule, if any.
        unexpected_count: rows that broke the rule (None when not a row-level rule).
        unexpected_percent: the same as a percent of the rows checked (None likewise).
        observed_value: what a table-level rule observed (column list, type name, row count).
        samples: up to :data:`SAMPLE_ROWS` unexpected rows (key columns and the columns involved)
            or unexpected values.
        error: the exception message when the expectation could not be evaluated.
    """

    type: str
    columns: tuple[str, ...]
    description: str | None
    unexpected_count: int | None
    unexpected_percent: float | None
    observed_value: Any
    samples: tuple[Any, ...]
    error: str | None = None
    severity: str = "critical"

    @property
    def blocking(self) -> bool:
        """A ``critical`` failure stops the run; ``warning``/``info`` ones are only reported."""
        return self.severity == "critical"

    def describe(self) -> str:
        """Multi-line text: the rule, how often it failed, sample rows."""
        head = self.type + (f" [{', '.join(self.columns)}]" if self.columns else "")
        if not self.blocking:
            head = f"{self.severity.upper()} (not blocking) {head}"
        facts = []
        if self.unexpected_count is not None:
            percent = f" ({self.unexpected_percent:.2f}%)" if self.unexpected_percent else ""
            facts.append(f"{self.unexpected_count} unexpected{percent}")
        elif self.observed_value is not None:
            facts.append(f"observed {_plain(self.observed_value)}")
        if self.error:
            facts.append(f"error: {self.error}")
        if self.description:
            facts.append(self.description)
        lines = [f"  - {head}: " + "; ".join(facts)]
        lines += [f"      sample: {_format_sample(s)}" for s in self.samples]
        return "\n".join(lines)


@dataclass(frozen=True)
class ValidationOutcome:
    """Result of running one table's suite on one DataFrame.

    Attributes:
        table: table = suite name.
        label: what was validated (published/staged, dates), also the Data Docs run name.
        success: no critical (blocking) expectation failed; warning-level failures are listed in
            ``failures`` but do not stop the run.
        evaluated: expectations evaluated.
        passed: expectations that passed.
        failures: the failed ones.
        docs_index: URL of the Data Docs ``index.html``.
        window: ``(first, last)`` dt validated for DWD/DWS tables (what ``--publish`` publishes).
        version: Delta version of the staging twin that was validated (what is published).
        apps: the apps validated (and published) for DWD/DWS tables; None: all.
        versions: for a staged ingest batch, the staging twins' versions read
            (``{table: version}``: what the manifest's ``--publish`` publishes).
    """

    table: str
    label: str
    success: bool
    evaluated: int
    passed: int
    failures: tuple[FailedExpectation, ...]
    docs_index: str
    window: tuple[dt.date, dt.date] | None = None
    version: int | None = None
    apps: tuple[str, ...] | None = None
    versions: dict[str, int] | None = None

    @property
    def failed_types(self) -> set[str]:
        """Types of the failed expectations (e.g. ``{"expect_column_values_to_be_unique"}``)."""
        return {f.type for f in self.failures}

    def report(self) -> str:
        """Text for stdout: one PASS line, or a FAIL line with every failed expectation."""
        status = "PASS" if self.success else "FAIL"
        if self.success and self.failures:
            status = f"PASS with {len(self.failures)} warning(s)"
        lines = [
            f"{status} {self.table} ({self.label}): "
            f"{self.passed}/{self.evaluated} expectations passed"
        ]
        lines += [f.describe() for f in self.failures]
        lines.append(f"data docs: {self.docs_index}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Suites and the GX context


def suite_path(table: str) -> Path:
    """``expectations/<table>.json``."""
    return EXPECTATIONS_DIR / f"{table}.json"


def load_suite(table: str):
    """The table's ``great_expectations.ExpectationSuite``, read from its JSON file.

    Raises:
        KeyError: unknown table.
        FileNotFoundError: the suite file is missing.
        ValueError: the file's suite name is not the table name.
    """
    gx = _import_gx()
    T.get_table(table)
    data = json.loads(suite_path(table).read_text())
    if data.get("name") != table:
        raise ValueError(f"{suite_path(table)}: suite name {data.get('name')!r} != {table!r}")
    return gx.ExpectationSuite(
        name=data["name"],
        expectations=data.get("expectations", []),
        meta=data.get("meta"),
        notes=data.get("notes"),
    )


def suite_parameters(settings: Settings) -> dict[str, Any]:
    """Values of the ``$PARAMETER`` references in the suites (named business constants): the
    session cap (settings) and the streaming job's warning-alert threshold."""
    from spark_jobs.streaming.transforms import WARNING_ALERT_THRESHOLD

    return {
        "session_max_sec": settings.session_max_sec,
        "warning_alert_threshold": WARNING_ALERT_THRESHOLD,
    }


def data_docs_uri(settings: Settings) -> str:
    """``<LAKEHOUSE_ROOT>/data_docs`` (the Data Docs site; index.html at its top)."""
    return f"{settings.lakehouse_root.rstrip('/')}/data_docs"


def store_backend_config(uri: str, settings: Settings) -> dict[str, Any]:
    """GX store-backend config for a folder: local filesystem, or S3 for ``s3://``/``s3a://``.

    Raises:
        ValueError: another URI scheme (GX stores support local folders and S3 here).
    """
    if uri.startswith(("s3a://", "s3://")):
        bucket, _, prefix = uri.split("://", 1)[1].partition("/")
        config: dict[str, Any] = {
            "class_name": "TupleS3StoreBackend",
            "bucket": bucket,
            "prefix": prefix.strip("/"),
        }
        if settings.s3_endpoint:
            config["boto3_options"] = {"endpoint_url": settings.s3_endpoint}
        return config
    if "://" in uri and not uri.startswith("file:"):
        raise ValueError(f"Data Docs need a local or S3 lakehouse root, got {uri!r}")
    path = uri.removeprefix("file://").removeprefix("file:")
    return {"class_name": "TupleFilesystemStoreBackend", "base_directory": path}


def _import_gx():
    # No usage statistics (tests and jobs must not need the network); set before GX is imported.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    return gx


def start_gx_import() -> threading.Thread:
    """Import Great Expectations in a background thread and return the thread; join it before
    the next import or use of GX.

    The import takes about as long as a Spark session takes to start (3.7 s and 4.5 s under
    ``spark-submit`` on 2 cores), and the session start mostly waits on the JVM, so the two
    overlap. An import that fails in the thread is left to fail again, with its traceback, when
    the validation imports GX itself.
    """
    # PySpark first, in the caller's thread: GX's import and the session start both import it
    import pyspark.sql  # noqa: F401

    def quietly() -> None:
        try:
            _import_gx()
        except Exception:  # noqa: BLE001 - raised again by the validation's own import
            pass

    thread = threading.Thread(target=quietly, name="gx-import", daemon=True)
    thread.start()
    return thread


def _context(settings: Settings):
    """Ephemeral GX context: suites and validation results as files under ``data_docs/.gx``,
    everything else in memory; one Data Docs site at ``data_docs/``; progress bars off."""
    gx = _import_gx()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    docs = data_docs_uri(settings)
    defaults = InMemoryStoreBackendDefaults(init_temp_docs_sites=False)
    stores = defaults.stores
    for name, folder in (
        (defaults.expectations_store_name, "expectations"),
        (defaults.validation_results_store_name, "validations"),
    ):
        stores[name]["store_backend"] = store_backend_config(f"{docs}/.gx/{folder}", settings)
    config = DataContextConfig(
        store_backend_defaults=defaults,
        stores=stores,
        data_docs_sites={
            DATA_DOCS_SITE: {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": store_backend_config(docs, settings),
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            }
        },
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


# ---------------------------------------------------------------------------------------------
# Running a suite on a DataFrame


def validate_dataframe(df, table: str, settings: Settings, label: str) -> ValidationOutcome:
    """Run ``table``'s suite on ``df`` and render Data Docs under ``<root>/data_docs/``.

    Args:
        df: the rows to check, with the table's declared columns (plus ``recounted_records``
            for ``etl_ingest_manifest``, see :func:`manifest_with_recounts`).
        table: table name = suite name.
        settings: lakehouse root (Data Docs) and the suite parameters.
        label: what is validated, e.g. ``"staged dt 2024-01-01..2024-01-03"``; the Data Docs
            run name is ``"<table> <label>"``.

    Returns:
        The outcome; failures carry up to :data:`SAMPLE_ROWS` unexpected rows identified by the
        table's keys (and ``dt``).

    Raises:
        KeyError: unknown table. FileNotFoundError: its suite file is missing.
    """
    gx = _import_gx()
    from great_expectations.core.run_identifier import RunIdentifier

    suite = load_suite(table)
    context = _context(settings)
    suite = context.suites.add_or_update(suite)
    batch_definition = (
        context.data_sources.add_spark(_DATASOURCE)
        .add_dataframe_asset(table)
        .add_batch_definition_whole_dataframe(table)
    )
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=table, data=batch_definition, suite=suite)
    )
    # columns that identify a sample row: the table's keys, and dt
    index_columns = list(
        dict.fromkeys(c for c in (*T.get_table(table).keys, "dt") if c in df.columns)
    )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=table,
            validation_definitions=[definition],
            actions=[
                gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=[DATA_DOCS_SITE])
            ],
            result_format={
                "result_format": "SUMMARY",
                "partial_unexpected_count": SAMPLE_ROWS,
                "unexpected_index_column_names": index_columns,
                "include_unexpected_rows": False,
            },
        )
    )
    run_id = RunIdentifier(run_name=f"{table} {label}", run_time=dt.datetime.now(dt.UTC))
    result = checkpoint.run(
        batch_parameters={"dataframe": df},
        expectation_parameters=suite_parameters(settings),
        run_id=run_id,
    )
    (validation,) = result.run_results.values()
    failures = tuple(_failure(r, df, index_columns) for r in validation.results if not r.success)
    stats = validation.statistics
    urls = context.get_docs_sites_urls(site_name=DATA_DOCS_SITE, only_if_exists=False)
    # GX's own success is all-or-nothing; the gate is the expectations' severity: only a
    # ``critical`` failure blocks, ``warning`` ones (implausible values) are reported
    return ValidationOutcome(
        table=table,
        label=label,
        success=not any(f.blocking for f in failures),
        evaluated=int(stats["evaluated_expectations"]),
        passed=int(stats["successful_expectations"]),
        failures=failures,
        docs_index=urls[0]["site_url"] if urls else data_docs_uri(settings) + "/index.html",
    )


def _columns_of(config) -> tuple[str, ...]:
    """The column(s) an expectation configuration is about (empty for table-level rules)."""
    kwargs = dict(config.kwargs)
    columns = [
        kwargs[k] for k in ("column", "column_A", "column_B") if isinstance(kwargs.get(k), str)
    ]
    if config.type.startswith(("expect_compound", "expect_multicolumn", "expect_select")):
        columns += list(kwargs.get("column_list") or [])
    return tuple(columns)


def _failure(result, df, index_columns: list[str]) -> FailedExpectation:
    """A failed ``ExpectationValidationResult`` -> :class:`FailedExpectation` with samples
    (``df`` None: a stored result, whose query-based rules get no sample rows)."""
    config = result.expectation_config
    kwargs = dict(config.kwargs)
    columns = _columns_of(config)
    info = result.result or {}
    samples: list[Any] = list(
        info.get("partial_unexpected_index_list") or info.get("partial_unexpected_list") or []
    )[:SAMPLE_ROWS]
    error = _exception_message(result.exception_info)
    unexpected_count, observed = info.get("unexpected_count"), info.get("observed_value")
    if config.type == "unexpected_rows_expectation" and not error:
        # its observed value is the number of rows the query returned: fetch a few of them
        unexpected_count, observed = observed, None
        if df is not None:
            samples = _query_samples(df, kwargs["unexpected_rows_query"], index_columns)
    return FailedExpectation(
        type=config.type,
        columns=columns,
        description=config.description,
        unexpected_count=unexpected_count,
        unexpected_percent=info.get("unexpected_percent"),
        observed_value=observed,
        samples=tuple(samples),
        error=error,
        severity=str(getattr(config.severity, "value", config.severity) or "critical"),
    )


@dataclass(frozen=True)
class StoredCheck:
    """The newest run of one table's suite in the validation-results store (what Data Docs
    shows for it).

    Attributes:
        table: table = suite name.
        label: what was validated (e.g. ``staged dt 2010-12-21..2010-12-22``).
        run_time: when the check ran (UTC).
        failures: its failed expectations, critical and warning-level (sample rows as stored).
    """

    table: str
    label: str
    run_time: dt.datetime
    failures: tuple[FailedExpectation, ...]

    @property
    def success(self) -> bool:
        """No critical (blocking) expectation failed."""
        return not any(f.blocking for f in self.failures)

    @property
    def warnings(self) -> tuple[FailedExpectation, ...]:
        """The failed expectations that did not block (``warning``/``info`` severity)."""
        return tuple(f for f in self.failures if not f.blocking)


def latest_checks(settings: Settings) -> list[StoredCheck]:
    """The newest stored validation run of every suite under ``<root>/data_docs/.gx``, by table.

    Read through GX's validation-results store (the files Data Docs is rendered from), so every
    check that ran (``lakehouse validate``, the DAGs' ``check__*`` tasks) counts. Empty when no
    check has run on this lakehouse root yet.

    Raises:
        ValueError: a lakehouse root that is neither local nor S3.
    """
    folder = f"{data_docs_uri(settings)}/.gx/validations"
    if "://" not in folder or folder.startswith("file:"):
        if not Path(folder.removeprefix("file://").removeprefix("file:")).is_dir():
            return []
    store = _context(settings).validation_results_store
    newest: dict[str, Any] = {}
    for key in store.list_keys():
        table = key.expectation_suite_identifier.name
        if table not in newest or _run_time(key) > _run_time(newest[table]):
            newest[table] = key
    checks = []
    for table, key in sorted(newest.items()):
        result = store.get(key)
        failures = tuple(_failure(r, None, []) for r in result.results if not r.success)
        run_name = key.run_id.run_name or table
        label = run_name.removeprefix(f"{table} ")
        checks.append(StoredCheck(table, label, _run_time(key), failures))
    return checks


def _run_time(key) -> dt.datetime:
    run_time = key.run_id.run_time
    return run_time if run_time.tzinfo else run_time.replace(tzinfo=dt.UTC)


def _exception_message(info: Any) -> str | None:
    if not isinstance(info, dict):
        return None
    if "raised_exception" in info:
        return str(info.get("exception_message")) if info.get("raised_exception") else None
    messages = [_exception_message(v) for v in info.values()]
    return "; ".join(m for m in messages if m) or None


def _query_samples(df, query: str, index_columns: list[str]) -> list[dict[str, Any]]:
    """Up to :data:`SAMPLE_ROWS` rows returned by an ``UnexpectedRowsExpectation`` query,
    reduced to the key columns and the columns the query names."""
    view = f"lakehouse_check_{uuid.uuid4().hex}"
    df.createOrReplaceTempView(view)
    try:
        rows = df.sparkSession.sql(query.replace("{batch}", view)).limit(SAMPLE_ROWS).collect()
    finally:
        df.sparkSession.catalog.dropTempView(view)
    words = set(re.findall(r"\w+", query))
    named = [c for c in df.columns if c in words]
    keep = list(dict.fromkeys([*index_columns, *named]))
    return [{c: row[c] for c in keep if c in row.asDict()} for row in rows]


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _format_sample(sample: Any) -> str:
    if isinstance(sample, dict):
        return ", ".join(f"{k}={_plain(v)!r}" for k, v in sample.items())
    return repr(_plain(sample))


# ---------------------------------------------------------------------------------------------
# Which rows a run validates


def _staged_batch(spark, settings: Settings, table: str, versions: dict[str, int]):
    """The whole staging twin of an ingest batch table, at its current version (recorded in
    ``versions``).

    Raises:
        FileNotFoundError: nothing was staged (no ``ingest --stage`` ran).
    """
    from spark_jobs.common import delta_io

    if not delta_io.table_exists(spark, settings, table, staged=True):
        raise FileNotFoundError(f"no staged batch for {table}: run the ingest with --stage first")
    versions[table] = delta_io.table_version(spark, settings, table, staged=True)
    return delta_io.read_table(spark, settings, table, staged=True, version=versions[table])


def run_manifest(
    spark, settings: Settings, start: dt.date, end: dt.date, versions: dict[str, int] | None = None
):
    """Manifest rows of the objects in the folders a run over ``[start, end]`` lists: manifest
    ``dt`` (arrival date) in ``[start - ARRIVAL_LOOKBACK_DAYS, end]``; with ``versions`` (a dict
    to fill) the staged batch's manifest instead."""
    from spark_jobs.common import delta_io

    if versions is not None:
        return _staged_batch(spark, settings, T.INGEST_MANIFEST, versions)
    first = settings.first_listed_date(start)
    return delta_io.read_partitions(spark, settings, T.INGEST_MANIFEST, first, end)


def run_object_rows(
    spark,
    settings: Settings,
    table: str,
    start: dt.date,
    end: dt.date,
    versions: dict[str, int] | None = None,
):
    """Rows of an ODS table (events or rejected) that belong to the run's objects.

    ODS events are pruned to the ``dt`` partitions the run's objects wrote to (the manifest's
    ``event_dates``); rejected rows carry the object's arrival date as ``dt``, so they are read
    from the listed folders' dates. Both are then restricted to the run's objects (left-semi
    join). With ``versions`` (a dict to fill with the versions read): the staged batch's rows.

    Raises:
        ValueError: ``table`` is not an ODS table.
        FileNotFoundError: ``versions`` given and nothing was staged.
    """
    from pyspark.sql import functions as F

    from spark_jobs.common import delta_io

    if table not in (T.ODS_EVENTS, T.ODS_REJECTED):
        raise ValueError(f"{table} is not an ODS table")
    if versions is not None:
        return _staged_batch(spark, settings, table, versions)
    manifest = run_manifest(spark, settings, start, end)
    objects = F.broadcast(manifest.select("etl_source_object"))
    if table == T.ODS_EVENTS:
        dates = sorted(r[0] for r in manifest.select(F.explode("event_dates")).distinct().collect())
        rows = delta_io.read_table(spark, settings, table)
        rows = rows.where(F.col("dt").isin(dates)) if dates else rows.limit(0)
    else:
        rows = delta_io.read_partitions(
            spark, settings, table, settings.first_listed_date(start), end
        )
    return rows.join(objects, "etl_source_object", "left_semi").select(*rows.columns)


def manifest_with_recounts(
    spark, settings: Settings, start: dt.date, end: dt.date, versions: dict[str, int] | None = None
):
    """The run's manifest rows plus ``recounted_records`` (LongType, never null): the object's
    rows in the ODS events table + its rows in the rejected table, counted now (with
    ``versions``: the staged batch, counted in the staging twins)."""
    from pyspark.sql import functions as F

    manifest = run_manifest(spark, settings, start, end, versions)
    counts = [
        run_object_rows(spark, settings, name, start, end, versions)
        .groupBy("etl_source_object")
        .agg(F.count("*").alias(alias))
        for name, alias in ((T.ODS_EVENTS, "_ods"), (T.ODS_REJECTED, "_rejected"))
    ]
    joined = manifest.join(counts[0], "etl_source_object", "left").join(
        counts[1], "etl_source_object", "left"
    )
    recount = (F.coalesce("_ods", F.lit(0)) + F.coalesce("_rejected", F.lit(0))).cast("long")
    return joined.select(*manifest.columns, recount.alias(RECOUNT_COLUMN))


def rt_rows(spark, settings: Settings, table: str, start: dt.date, end: dt.date):
    """Rows of a real-time (``rt``) table whose ``time_column`` (BIGINT epoch ms) falls on a UTC
    date in ``[start, end]``.

    The rt tables are not partitioned: this is a filter over the whole table, written as a range
    on the time column (``start 00:00 <= t < end + 1 day 00:00``, in epoch ms) so that Delta's
    per-file min/max statistics skip the files outside it.

    Raises:
        ValueError: ``table`` is not an rt table.
        FileNotFoundError: the table does not exist yet (the streaming job has not written it).
    """
    from pyspark.sql import functions as F

    from spark_jobs.common import delta_io

    spec = T.get_table(table)
    if spec.time_column is None:
        raise ValueError(f"{table} is not an unpartitioned rt table")
    if not delta_io.table_exists(spark, settings, table):
        raise FileNotFoundError(f"no table for {table}: run `lakehouse stream` first")
    epoch = dt.datetime(1970, 1, 1)
    first = int((dt.datetime.combine(start, dt.time()) - epoch).total_seconds()) * 1000
    after = int((dt.datetime.combine(end, dt.time()) - epoch).total_seconds() + 86400) * 1000
    time = F.col(spec.time_column)
    return delta_io.read_table(spark, settings, table).where((time >= first) & (time < after))


def validate_table(
    spark,
    settings: Settings,
    table: str,
    start: dt.date,
    end: dt.date,
    staged: bool = False,
    landing_uri: str | None = None,
) -> ValidationOutcome:
    """Validate the partitions a run over ``[start, end]`` wrote to ``table`` (see module doc).

    ``landing_uri`` scopes DWD/DWS tables to the landing's apps (the rows the run rewrote).
    With ``staged``, ODS tables are validated on the staged ingest batch.

    Returns:
        The outcome; ``window`` is set for DWD/DWS tables (the plan's rewrite window),
        ``versions`` for a staged ingest batch.

    Raises:
        KeyError: unknown table.
        FileNotFoundError: a DWD/DWS table (or its staging twin) does not exist: nothing built;
            ``staged`` on an ODS table and no batch was staged; an rt table not written yet.
    """
    from spark_jobs.common import delta_io
    from spark_jobs.common.plan import plan_rebuild

    spec = T.get_table(table)
    if spec.layer == "rt":
        df = rt_rows(spark, settings, table, start, end)
        label = f"{spec.time_column} on {start}..{end}"
        return _validate_persisted(df, table, settings, label)
    if table in STAGED_TABLES:
        if not delta_io.table_exists(spark, settings, table, staged=staged):
            where = "staging twin" if staged else "table"
            raise FileNotFoundError(f"no {where} for {table}: run its build first")
        plan = plan_rebuild(spark, settings, start, end, landing_uri)
        first, last = plan.window(table)
        version = delta_io.table_version(spark, settings, table, staged=staged)
        df = delta_io.read_partitions(
            spark, settings, table, first, last, staged, version, plan.apps
        )
        label = f"{'staged' if staged else 'published'} dt {first}..{last}"
        outcome = _validate_persisted(df, table, settings, label)
        return replace(outcome, window=(first, last), version=version, apps=plan.apps)
    versions: dict[str, int] | None = {} if staged else None
    if table == T.INGEST_MANIFEST:
        df = manifest_with_recounts(spark, settings, start, end, versions)
    else:
        df = run_object_rows(spark, settings, table, start, end, versions)
    label = "staged ingest batch" if staged else f"objects arrived {start}..{end}"
    return replace(_validate_persisted(df, table, settings, label), versions=versions)


def _validate_persisted(df, table: str, settings: Settings, label: str) -> ValidationOutcome:
    """:func:`validate_dataframe` on ``df`` cached for the run (a suite runs many Spark jobs)."""
    df = df.persist()
    try:
        return validate_dataframe(df, table, settings, label)
    finally:
        df.unpersist()


# ---------------------------------------------------------------------------------------------
# Command line


def run_validate_command(args: argparse.Namespace) -> int:
    """``lakehouse validate``: validate, print the outcome, publish on success with --publish.

    ``args`` has ``table``, ``ds``/``start``/``end``, ``staged``, ``publish`` and ``landing``.
    Prints the outcome (failed expectations with sample rows) and the Data Docs index to stdout.

    Returns:
        0 passed (and published with ``--publish``); 1 failed (nothing published); 2 bad
        arguments (``--publish`` without ``--staged``, ``--publish`` on ODS events/rejected,
        ``--staged``/``--publish``/``--landing`` on an rt table).
    """
    from spark_jobs.common.delta_io import publish_partitions
    from spark_jobs.common.spark import get_spark

    start, end = resolve_dates(args)
    table = T.get_table(args.table).name
    if T.get_table(table).layer == "rt" and (args.staged or args.publish or args.landing):
        print(
            f"error: {table} is written by the streaming job (no staging twin, no apps): "
            "--staged, --publish and --landing do not apply",
            file=sys.stderr,
        )
        return 2
    if args.publish and not args.staged:
        print("error: --publish needs --staged (it publishes the staged build)", file=sys.stderr)
        return 2
    if args.publish and table in T.INGEST_BATCH and table != T.INGEST_MANIFEST:
        print(
            f"error: {table} is published with its ingest batch: --table {T.INGEST_MANIFEST} "
            "--staged --publish",
            file=sys.stderr,
        )
        return 2
    settings = load_settings()
    gx_import = start_gx_import()
    spark = get_spark(f"lakehouse:validate {table}", settings)
    gx_import.join()  # nothing else imports while GX does: no import-lock cycles between threads
    outcome = validate_table(spark, settings, table, start, end, args.staged, args.landing)
    print(outcome.report(), flush=True)
    if not outcome.success:
        if args.publish:
            print(f"NOT published: {table} keeps its previously published data", flush=True)
        return 1
    if args.publish and outcome.versions is not None:
        from spark_jobs.ods.ods_clickstream_events_di import publish_ingest

        objects = publish_ingest(spark, settings, outcome.versions)
        print(f"published the ingest batch: {objects} objects (ODS, rejected, manifest)")
    elif args.publish and outcome.window:
        first, last = outcome.window
        rows = publish_partitions(
            spark, settings, table, first, last, version=outcome.version, apps=outcome.apps
        )
        print(f"published {table} dt {first}..{last}: {rows} rows", flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``spark-submit spark_jobs/quality/validate.py`` (as ``lakehouse validate``)."""
    parser = argparse.ArgumentParser(
        prog="validate.py", description="Run a table's Great Expectations suite."
    )
    parser.add_argument("--table", required=True, choices=[t.name for t in T.ALL_TABLES])
    parser.add_argument(
        "--staged", action="store_true", help="validate the staging twin (ODS: staged batch)"
    )
    parser.add_argument(
        "--publish", action="store_true", help="publish the staged partitions if they pass"
    )
    parser.add_argument("--landing", help="validate/publish only the apps of this landing (URI)")
    add_date_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """spark-submit entry point. Returns the exit code (errors are logged with a traceback)."""
    args = build_parser().parse_args(argv)
    configure_logging()
    try:
        return run_validate_command(args)
    except Exception:
        log.exception("validate %s failed", args.table)
        return 1


if __name__ == "__main__":
    sys.exit(main())
