"""Run one statement on Amazon Athena (through PyAthena) or Amazon Redshift (Redshift Data API).

Both functions take SQL already bound for their API (:func:`spark_jobs.serving.queries.prepare`)
and return ``(column_names, rows)``: a list of names and a list of tuples of Python values
(``int``, ``float``, ``Decimal``, ``str``, ``bool``, ``datetime.date``/``datetime``, ``None``).
The rows are held in memory: these are BI answers (a few hundred rows), not extracts.

Configuration comes from :class:`spark_jobs.settings.Settings` (``AWS_REGION``,
``LAKEHOUSE_AWS_ENDPOINT_URL``, ``LAKEHOUSE_ATHENA_*``, ``LAKEHOUSE_REDSHIFT_*``,
``LAKEHOUSE_QUERY_*``; see ``.env.example``). Credentials are boto3's usual chain.

Errors: :class:`QueryFailedError` (the engine failed, cancelled or rejected the statement; the
message carries the engine's error text), :class:`QueryTimeoutError` (still not done after
``LAKEHOUSE_QUERY_TIMEOUT_SEC``; the statement is cancelled), :class:`ServingConfigError`
(settings that cannot work, e.g. no Redshift cluster nor workgroup).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from spark_jobs.settings import Settings

log = logging.getLogger(__name__)

#: (column names, rows)
Result = tuple[list[str], list[tuple]]

#: Redshift Data API statement states that end a statement
REDSHIFT_DONE, REDSHIFT_FAILED = "FINISHED", ("FAILED", "ABORTED")


class QueryFailedError(RuntimeError):
    """A statement the engine failed, cancelled or rejected.

    Attributes: ``engine`` (``athena``/``redshift``), ``query_id`` (execution or statement id;
    None when it was rejected before it got one), ``state`` (e.g. ``FAILED``, ``CANCELLED``,
    ``ABORTED``; None for a rejected request), ``reason`` (the engine's error text, may be "").
    """

    def __init__(self, engine: str, query_id: str | None, state: str | None, reason: str):
        self.engine, self.query_id, self.state, self.reason = engine, query_id, state, reason
        what = f"{engine} query {query_id}" if query_id else f"{engine} request"
        super().__init__(f"{what} {state or 'rejected'}: {reason or 'no reason given'}")


class QueryTimeoutError(TimeoutError):
    """A statement still queued or running after the timeout; it was asked to cancel."""

    def __init__(self, engine: str, query_id: str, timeout_sec: float, state: str | None):
        self.engine, self.query_id, self.timeout_sec, self.state = (
            engine,
            query_id,
            timeout_sec,
            state,
        )
        super().__init__(
            f"{engine} query {query_id} still {state or 'running'} after {timeout_sec:g} s "
            "(LAKEHOUSE_QUERY_TIMEOUT_SEC); cancelled"
        )


class ServingConfigError(ValueError):
    """Settings with which a query cannot be sent (the message names the variables)."""


class _Deadline(Exception):
    """Raised inside PyAthena's poll loop to stop waiting."""


def run_athena(
    sql: str,
    params: list[str] | None,
    settings: Settings,
    on_submit: Callable[[str], None] | None = None,
) -> Result:
    """Run one Athena statement through PyAthena and return ``(column_names, rows)``.

    ``sql`` has positional ``?`` placeholders and ``params`` one Athena SQL literal string per
    ``?`` (``["'web'", "'2024-03-01'"]``; from :func:`~spark_jobs.serving.queries.render_athena`),
    sent as ``ExecutionParameters`` (Athena binds them; nothing is formatted client-side). It
    runs in ``settings.athena_workgroup`` and ``athena_database``, writing results to
    ``athena_output`` (or the workgroup's location when empty). Values are converted from the
    result's column types by PyAthena (``bigint`` -> int, ``decimal`` -> Decimal, ``date`` ->
    date, ...). ``on_submit`` is called with the query execution id once it is started.

    Raises:
        QueryFailedError: the query FAILED or was CANCELLED (with Athena's error message or
            state change reason), or Athena rejected the request (e.g. no such workgroup).
        QueryTimeoutError: not finished after ``settings.query_timeout_sec``; it is stopped.
    """
    from pyathena import connect
    from pyathena.error import Error as PyAthenaError
    from pyathena.model import AthenaQueryExecution

    kwargs: dict[str, Any] = {
        "work_group": settings.athena_workgroup,
        "schema_name": settings.athena_database,
        "s3_staging_dir": settings.athena_output,  # "" = the workgroup's result location
        "region_name": settings.aws_region or None,
        "poll_interval": settings.query_poll_sec,
    }
    if settings.aws_endpoint_url:
        kwargs["endpoint_url"] = settings.aws_endpoint_url
    deadline = time.monotonic() + settings.query_timeout_sec
    last: dict[str, AthenaQueryExecution] = {}

    def on_poll(execution) -> None:
        last["execution"] = execution
        terminal = execution.state in AthenaQueryExecution.TERMINAL_STATES
        if not terminal and time.monotonic() > deadline:
            raise _Deadline

    with connect(**kwargs) as connection, connection.cursor(on_poll=on_poll) as cursor:
        try:
            cursor.execute(
                sql, params or None, paramstyle="qmark", on_start_query_execution=on_submit
            )
        except _Deadline:
            state = last["execution"].state
            _cancel_quietly(lambda: cursor.cancel(), "athena", cursor.query_id)
            raise QueryTimeoutError(
                "athena", cursor.query_id, settings.query_timeout_sec, state
            ) from None
        except PyAthenaError as error:
            execution = last.get("execution")
            if execution is not None and execution.state in (
                AthenaQueryExecution.STATE_FAILED,
                AthenaQueryExecution.STATE_CANCELLED,
            ):
                reason = execution.error_message or execution.state_change_reason or ""
                raise QueryFailedError(
                    "athena", execution.query_id, execution.state, reason
                ) from error
            raise QueryFailedError("athena", cursor.query_id, None, str(error)) from error
        names = [column[0] for column in cursor.description or ()]
        rows = [tuple(row) for row in cursor.fetchall()] if names else []
    return names, rows


def redshift_client(settings: Settings):
    """A boto3 ``redshift-data`` client for the settings' region and endpoint override."""
    import boto3

    return boto3.client(
        "redshift-data",
        region_name=settings.aws_region or None,
        endpoint_url=settings.aws_endpoint_url or None,
    )


def run_redshift(
    sql: str,
    params: list[dict[str, str]] | None,
    settings: Settings,
    on_submit: Callable[[str], None] | None = None,
) -> Result:
    """Run one statement through the Redshift Data API and return ``(column_names, rows)``.

    ``sql`` keeps its ``:name`` placeholders and ``params`` is
    ``[{"name": "app_id", "value": "web"}, ...]`` (from
    :func:`~spark_jobs.serving.queries.render_redshift`), bound by Redshift. The statement goes
    to ``settings.redshift_cluster_id`` (with ``redshift_secret_arn``, else ``redshift_db_user``)
    or to the Serverless ``redshift_workgroup`` (with ``redshift_secret_arn`` if set), in
    ``redshift_database``. ``on_submit`` is called with the statement id once it is submitted.
    See :func:`wait_for_statement` and :func:`fetch_statement_result` for the rest.

    Raises:
        ServingConfigError: neither or both of cluster and workgroup are set.
        QueryFailedError: the statement FAILED or was ABORTED (with the statement's ``Error``),
            or the API rejected the request.
        QueryTimeoutError: not finished after ``settings.query_timeout_sec``; it is cancelled.
    """
    from botocore.exceptions import ClientError

    request = {"Sql": sql, "Database": settings.redshift_database, **redshift_target(settings)}
    if params:
        request["Parameters"] = params
    client = redshift_client(settings)
    try:
        statement_id = client.execute_statement(**request)["Id"]
    except ClientError as error:
        raise QueryFailedError("redshift", None, None, str(error)) from error
    log.info("redshift statement %s submitted", statement_id)
    if on_submit:
        on_submit(statement_id)
    description = wait_for_statement(client, statement_id, settings)
    if not description.get("HasResultSet"):
        return [], []
    return fetch_statement_result(client, statement_id)


def wait_for_statement(client, statement_id: str, settings: Settings) -> dict[str, Any]:
    """Poll ``describe_statement`` until the statement is FINISHED; return that description.

    Waits ``settings.query_poll_sec`` after the first poll, doubling each time up to
    ``query_poll_max_sec``, for at most ``query_timeout_sec`` in all.

    Raises:
        QueryFailedError: status FAILED or ABORTED; ``reason`` is the statement's ``Error``.
        QueryTimeoutError: still SUBMITTED/PICKED/STARTED at the deadline; the statement is
            cancelled (``cancel_statement``) before this is raised.
    """
    deadline = time.monotonic() + settings.query_timeout_sec
    delay = settings.query_poll_sec
    while True:
        description = client.describe_statement(Id=statement_id)
        status = description["Status"]
        if status == REDSHIFT_DONE:
            return description
        if status in REDSHIFT_FAILED:
            raise QueryFailedError("redshift", statement_id, status, description.get("Error", ""))
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            _cancel_quietly(
                lambda: client.cancel_statement(Id=statement_id), "redshift", statement_id
            )
            raise QueryTimeoutError("redshift", statement_id, settings.query_timeout_sec, status)
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, settings.query_poll_max_sec)


def fetch_statement_result(client, statement_id: str) -> Result:
    """Read every page of ``get_statement_result`` and convert the typed fields.

    Column names come from ``ColumnMetadata[].name``; each field is converted by
    :func:`convert_redshift_field` with its column's metadata.
    """
    names: list[str] = []
    rows: list[tuple] = []
    columns: list[dict[str, Any]] = []
    request = {"Id": statement_id}
    while True:
        page = client.get_statement_result(**request)
        if not columns:
            columns = page.get("ColumnMetadata", [])
            names = [column.get("name") or column.get("label", "") for column in columns]
        for record in page.get("Records", []):
            rows.append(
                tuple(
                    convert_redshift_field(field, column)
                    for field, column in zip(record, columns, strict=True)
                )
            )
        if not page.get("NextToken"):
            return names, rows
        request["NextToken"] = page["NextToken"]


def convert_redshift_field(field: dict[str, Any], column: dict[str, Any]) -> Any:
    """One Data API ``Field`` (``{"longValue": 3}``, ``{"isNull": true}``, ...) as a Python value.

    ``longValue`` -> int, ``doubleValue`` -> float, ``booleanValue`` -> bool, ``blobValue`` ->
    bytes, ``isNull`` -> None. ``stringValue`` is read by the column's ``typeName``: ``numeric``
    -> Decimal, ``date`` -> date, ``timestamp``/``timestamptz`` -> datetime (the Data API sends
    these as text); other types, or no ``typeName``, stay str. Text that does not parse as its
    type is returned unchanged.
    """
    if field.get("isNull"):
        return None
    for key in ("longValue", "doubleValue", "booleanValue", "blobValue"):
        if key in field:
            return field[key]
    text = field.get("stringValue")
    if text is None:
        return None
    type_name = (column.get("typeName") or "").lower()
    try:
        if type_name in ("numeric", "decimal"):
            return Decimal(text)
        if type_name == "date":
            return dt.date.fromisoformat(text)
        if type_name in ("timestamp", "timestamptz"):
            return dt.datetime.fromisoformat(text)
    except ValueError:
        return text
    return text


def redshift_target(settings: Settings) -> dict[str, str]:
    """The cluster/workgroup and credential fields of ``execute_statement``."""
    cluster, workgroup = settings.redshift_cluster_id, settings.redshift_workgroup
    if bool(cluster) == bool(workgroup):
        raise ServingConfigError(
            "set exactly one of LAKEHOUSE_REDSHIFT_CLUSTER_ID (provisioned cluster) and "
            "LAKEHOUSE_REDSHIFT_WORKGROUP (Serverless); "
            + ("both are set" if cluster else "neither is set")
        )
    target = {"ClusterIdentifier": cluster} if cluster else {"WorkgroupName": workgroup}
    if settings.redshift_secret_arn:
        target["SecretArn"] = settings.redshift_secret_arn
    elif cluster and settings.redshift_db_user:
        target["DbUser"] = settings.redshift_db_user
    return target


def _cancel_quietly(cancel: Callable[[], object], engine: str, query_id: str | None) -> None:
    """Ask the engine to cancel a timed-out query; a failure to cancel is logged, not raised."""
    try:
        cancel()
    except Exception:
        log.warning("could not cancel %s query %s", engine, query_id, exc_info=True)
