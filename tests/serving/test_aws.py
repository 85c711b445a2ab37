"""Athena (PyAthena) and the Redshift Data API against a real moto server, and ``lakehouse sql``
on the AWS engines.

What moto 5.2.5's server does, read from its source (moto/athena, moto/redshiftdata):

- Athena: StartQueryExecution stores the query, context, result configuration, workgroup (it
  must exist) and ExecutionParameters, and GetQueryExecution returns them. An execution moves
  QUEUED -> RUNNING -> SUCCEEDED through moto's state manager (immediately by default;
  ``/moto-api/state-manager/set-transition`` can hold it). GetQueryResults returns the next
  canned result posted to ``/moto-api/static/athena/query-results`` (else no rows), without
  paging. It never FAILS a query and sets no StateChangeReason/AthenaError; the only failed end
  it has is CANCELLED, by StopQueryExecution.
- Redshift Data API: ExecuteStatement stores Sql, Parameters, ClusterIdentifier, Database,
  DbUser and SecretArn (not WorkgroupName), and DescribeStatement returns them. The status
  stays STARTED for ever (CancelStatement makes it ABORTED); no statement FINISHES or FAILS and
  none has an Error. GetStatementResult answers for any statement, whatever its status, with the
  same canned three rows (columns Number, Street, City: longValue/stringValue fields, no
  typeName), one page, and no way to post other results.

So here: the SQL and parameters are read back from the server; Athena results are canned rows
with Athena's column types; Athena and Redshift failures are cancellations by another client;
timeouts are real (moto holds Athena queries when told to and never finishes a Redshift one).
A Redshift statement can only reach FINISHED when the test sets its status inside the moto
server's backend (``finish_on_moto``: the ThreadedMotoServer runs in this process); the client
still does every call over HTTP. A FAILED statement with an Error text cannot be produced.
"""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from decimal import Decimal

import boto3
import pytest
import requests

from spark_jobs import cli
from spark_jobs.serving import queries as Q
from spark_jobs.serving.aws import (
    QueryFailedError,
    QueryTimeoutError,
    ServingConfigError,
    convert_redshift_field,
    run_athena,
    run_redshift,
)
from spark_jobs.settings import Settings

REGION = "us-east-1"
WORKGROUP = "bi"
OUTPUT = "s3://athena-results/lakehouse/"
RANGE = {"app_id": "web", "start_date": "2024-03-01", "end_date": "2024-03-31"}

# moto's canned Redshift result (moto/redshiftdata/models.py), converted
MOTO_REDSHIFT_RESULT = (
    ["Number", "Street", "City"],
    [(10, "Alpha st", "Vancouver"), (50, "Beta st", "Toronto"), (100, "Gamma av", "Seattle")],
)


@pytest.fixture
def aws(moto_endpoint, monkeypatch):
    """Settings for the moto server: an Athena workgroup and result bucket, a Redshift
    cluster with a db user; short poll intervals and a 0.5 s timeout. The same settings are
    also exported as the environment `lakehouse sql` reads."""
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="athena-results")
    boto3.client("athena", region_name=REGION).create_work_group(
        Name=WORKGROUP, Configuration={"ResultConfiguration": {"OutputLocation": OUTPUT}}
    )
    settings = Settings(
        aws_region=REGION,
        aws_endpoint_url=moto_endpoint,
        athena_workgroup=WORKGROUP,
        athena_output=OUTPUT,
        athena_database="clickstream",
        redshift_cluster_id="bi-cluster",
        redshift_database="analytics",
        redshift_db_user="bi_reader",
        query_timeout_sec=0.5,
        query_poll_sec=0.02,
        query_poll_max_sec=0.1,
    )
    env = {
        "AWS_REGION": REGION,
        "LAKEHOUSE_AWS_ENDPOINT_URL": moto_endpoint,
        "LAKEHOUSE_ATHENA_WORKGROUP": WORKGROUP,
        "LAKEHOUSE_ATHENA_OUTPUT": OUTPUT,
        "LAKEHOUSE_ATHENA_DATABASE": "clickstream",
        "LAKEHOUSE_REDSHIFT_CLUSTER_ID": "bi-cluster",
        "LAKEHOUSE_REDSHIFT_DATABASE": "analytics",
        "LAKEHOUSE_REDSHIFT_DB_USER": "bi_reader",
        "LAKEHOUSE_QUERY_TIMEOUT_SEC": "0.5",
        "LAKEHOUSE_QUERY_POLL_SEC": "0.02",
        "LAKEHOUSE_QUERY_POLL_MAX_SEC": "0.1",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return settings


def athena() -> boto3.client:
    return boto3.client("athena", region_name=REGION)


def redshift_data() -> boto3.client:
    return boto3.client("redshift-data", region_name=REGION)


# (Precision, Scale) Athena reports per type (DECIMAL(38,4) for revenue); PyAthena reads them
ATHENA_PRECISION = {
    "bigint": (19, 0),
    "integer": (10, 0),
    "double": (17, 0),
    "decimal": (38, 4),
    "varchar": (2147483647, 0),
    "date": (0, 0),
}


def post_athena_result(endpoint: str, columns: list[tuple[str, str]], rows: list[list]) -> None:
    """Queue one canned GetQueryResults answer on the moto server, shaped like Athena's for a
    SELECT: a header row of column names first, every value as VarCharValue, NULL absent."""
    header = {"Data": [{"VarCharValue": name} for name, _ in columns]}
    data = [{"Data": [{} if v is None else {"VarCharValue": str(v)} for v in row]} for row in rows]
    body = {
        "region": REGION,
        "results": [
            {
                "rows": [header, *data],
                "column_info": [
                    {
                        "CatalogName": "hive",
                        "SchemaName": "",
                        "TableName": "",
                        "Name": name,
                        "Label": name,
                        "Type": kind,
                        "Precision": ATHENA_PRECISION[kind][0],
                        "Scale": ATHENA_PRECISION[kind][1],
                        "Nullable": "UNKNOWN",
                        "CaseSensitive": kind == "varchar",
                    }
                    for name, kind in columns
                ],
            }
        ],
    }
    response = requests.post(f"{endpoint}/moto-api/static/athena/query-results", json=body)
    response.raise_for_status()


@pytest.fixture
def athena_held(moto_endpoint):
    """moto keeps every new Athena execution QUEUED (until described a billion times)."""
    transition = {"progression": "manual", "times": 10**9}
    url = f"{moto_endpoint}/moto-api/state-manager"
    body = {"model_name": "athena::execution", "transition": transition}
    requests.post(f"{url}/set-transition", json=body).raise_for_status()
    yield
    # the state manager is process-wide and not cleared by /moto-api/reset
    requests.post(f"{url}/unset-transition", json={"model_name": "athena::execution"})


def finish_on_moto(statement_id: str) -> None:
    """Mark a Redshift Data API statement FINISHED with a result set, inside the moto server.

    moto 5.2.5 has no API for it (statements stay STARTED): this sets the state of the
    ThreadedMotoServer's backend, which runs in this process. It is the only server behaviour
    the tests supply themselves.
    """
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.redshiftdata.models import redshiftdata_backends

    statement = redshiftdata_backends[DEFAULT_ACCOUNT_ID][REGION].statements[statement_id]
    statement.status, statement.has_result_set, statement.result_rows = "FINISHED", True, 3


CATEGORY_COLUMNS = [
    ("revenue_rank", "bigint"),
    ("category", "varchar"),
    ("revenue", "decimal"),
    ("revenue_share", "double"),
    ("product_views", "bigint"),
    ("add_to_carts", "bigint"),
    ("purchases", "bigint"),
]
CATEGORY_ROWS = [[1, "toys", "35.0000", 0.5, 10, 4, 4], [2, "home", "30.0000", None, 5, 2, 2]]
CATEGORY_CONVERTED = [
    (1, "toys", Decimal("35.0000"), 0.5, 10, 4, 4),
    (2, "home", Decimal("30.0000"), None, 5, 2, 2),
]

# ----------------------------------------------------------------------------------------- Athena


def test_athena_gets_positional_sql_and_execution_parameters(aws, moto_endpoint):
    statement = Q.load_query_file("category_top")
    sql, values = Q.render_athena(statement, {**RANGE, "top_n": "2"})
    post_athena_result(moto_endpoint, CATEGORY_COLUMNS, CATEGORY_ROWS)
    started = []

    names, rows = run_athena(sql, values, aws, on_submit=started.append)

    [query_id] = started
    execution = athena().get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
    assert execution["Query"] == sql and sql.count("?") == 4 and ":" not in sql
    assert execution["ExecutionParameters"] == ["'web'", "'2024-03-01'", "'2024-03-31'", "'2'"]
    assert execution["WorkGroup"] == WORKGROUP
    assert execution["QueryExecutionContext"]["Database"] == "clickstream"
    assert execution["ResultConfiguration"]["OutputLocation"].startswith(OUTPUT)
    # the header row is not data; values are typed by the result's column types
    assert names == [name for name, _ in CATEGORY_COLUMNS]
    assert rows == CATEGORY_CONVERTED


def test_athena_without_parameters_sends_no_execution_parameters(aws, moto_endpoint):
    post_athena_result(moto_endpoint, [("n", "integer"), ("d", "date")], [[3, "2024-03-01"]])
    started = []

    names, rows = run_athena("SELECT 3 AS n, DATE '2024-03-01' AS d", [], aws, started.append)

    execution = athena().get_query_execution(QueryExecutionId=started[0])["QueryExecution"]
    assert "ExecutionParameters" not in execution  # the API rejects an empty list
    import datetime as dt

    assert (names, rows) == (["n", "d"], [(3, dt.date(2024, 3, 1))])


def test_athena_cancelled_query_raises_a_clear_error(aws):
    # moto cannot FAIL a query; a stop by another client is the failed end it has
    stop = lambda query_id: athena().stop_query_execution(QueryExecutionId=query_id)  # noqa: E731

    with pytest.raises(QueryFailedError) as caught:
        run_athena("SELECT 1", None, aws, on_submit=stop)

    assert caught.value.state == "CANCELLED" and caught.value.query_id
    assert f"athena query {caught.value.query_id} CANCELLED" in str(caught.value)


def test_athena_rejected_request_carries_the_api_error(aws):
    with pytest.raises(QueryFailedError, match="WorkGroup does not exist"):
        run_athena("SELECT 1", None, replace(aws, athena_workgroup="nope"))


def test_athena_timeout_stops_the_query(aws, athena_held):
    started = []

    with pytest.raises(QueryTimeoutError, match="still QUEUED after 0.5 s") as caught:
        run_athena("SELECT 1", None, aws, on_submit=started.append)

    assert caught.value.query_id == started[0]
    execution = athena().get_query_execution(QueryExecutionId=started[0])["QueryExecution"]
    assert execution["Status"]["State"] == "CANCELLED"  # StopQueryExecution reached moto


# --------------------------------------------------------------------------------------- Redshift


def test_redshift_gets_named_sql_and_parameters_and_converts_the_result(aws):
    sql, params = Q.render_redshift(Q.load_query_file("category_top"), {**RANGE, "top_n": "2"})
    submitted = []

    def on_submit(statement_id):
        submitted.append(statement_id)
        finish_on_moto(statement_id)

    result = run_redshift(sql, params, aws, on_submit=on_submit)

    described = redshift_data().describe_statement(Id=submitted[0])
    assert described["QueryString"] == sql and ":top_n" in sql
    assert described["QueryParameters"] == [
        {"name": "app_id", "value": "web"},
        {"name": "start_date", "value": "2024-03-01"},
        {"name": "end_date", "value": "2024-03-31"},
        {"name": "top_n", "value": "2"},
    ]
    assert described["ClusterIdentifier"] == "bi-cluster"
    assert (described["Database"], described["DbUser"]) == ("analytics", "bi_reader")
    assert "SecretArn" not in described
    assert result == MOTO_REDSHIFT_RESULT


def test_redshift_serverless_workgroup_with_a_secret(aws):
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:bi-AbCdEf"
    settings = replace(
        aws, redshift_cluster_id="", redshift_workgroup="bi-wg", redshift_secret_arn=arn
    )
    submitted = []

    def on_submit(statement_id):
        submitted.append(statement_id)
        finish_on_moto(statement_id)

    run_redshift("SELECT 1", None, settings, on_submit=on_submit)

    described = redshift_data().describe_statement(Id=submitted[0])
    assert described["SecretArn"] == arn and described["Database"] == "analytics"
    # moto does not keep WorkgroupName; it accepted the request, which needs a cluster or one
    assert "ClusterIdentifier" not in described and "DbUser" not in described
    assert "QueryParameters" not in described or not described["QueryParameters"]


def test_redshift_aborted_statement_raises_a_clear_error(aws):
    # moto cannot FAIL a statement or give it an Error; a cancel by another client ABORTS it
    cancel = lambda statement_id: redshift_data().cancel_statement(Id=statement_id)  # noqa: E731

    with pytest.raises(QueryFailedError) as caught:
        run_redshift("SELECT 1", None, aws, on_submit=cancel)

    assert caught.value.state == "ABORTED"
    assert str(caught.value) == f"redshift query {caught.value.query_id} ABORTED: no reason given"


def test_a_failed_statement_error_text_is_in_the_message():
    # the FAILED path itself cannot be reached on moto (see the module docstring)
    error = QueryFailedError("redshift", "1f2e", "FAILED", 'relation "rpt_funnel" does not exist')

    assert str(error) == 'redshift query 1f2e FAILED: relation "rpt_funnel" does not exist'


def test_redshift_timeout_cancels_the_statement(aws):
    submitted = []

    with pytest.raises(QueryTimeoutError, match="still STARTED after 0.5 s"):
        run_redshift("SELECT 1", None, aws, on_submit=submitted.append)

    assert redshift_data().describe_statement(Id=submitted[0])["Status"] == "ABORTED"


def test_redshift_needs_exactly_one_of_cluster_and_workgroup(aws):
    for settings in (
        replace(aws, redshift_cluster_id=""),
        replace(aws, redshift_workgroup="bi-wg"),
    ):
        with pytest.raises(ServingConfigError, match="LAKEHOUSE_REDSHIFT_CLUSTER_ID"):
            run_redshift("SELECT 1", None, settings)


def test_redshift_fields_are_converted_by_their_type():
    # Field / ColumnMetadata shapes of the Data API (moto's canned rows have no typeName)
    import datetime as dt

    cases = [
        ({"longValue": 7}, {"typeName": "int8"}, 7),
        ({"doubleValue": 0.25}, {"typeName": "float8"}, 0.25),
        ({"booleanValue": False}, {"typeName": "bool"}, False),
        ({"isNull": True}, {"typeName": "numeric"}, None),
        ({"stringValue": "30.5000"}, {"typeName": "numeric"}, Decimal("30.5000")),
        ({"stringValue": "2024-03-01"}, {"typeName": "date"}, dt.date(2024, 3, 1)),
        (
            {"stringValue": "2024-03-01 10:00:00"},
            {"typeName": "timestamp"},
            dt.datetime(2024, 3, 1, 10),
        ),
        (
            {"stringValue": "2024-03-01 10:00:00+00"},
            {"typeName": "timestamptz"},
            dt.datetime(2024, 3, 1, 10, tzinfo=dt.UTC),
        ),
        ({"stringValue": "web"}, {"typeName": "varchar"}, "web"),
        ({"stringValue": "web"}, {}, "web"),
    ]
    for field, column, expected in cases:
        assert convert_redshift_field(field, column) == expected, field


# -------------------------------------------------------------------------------- lakehouse sql

CATEGORY_ARGS = [
    "--file",
    "sql/queries/category_top.sql",
    *("--param", "app_id=web", "--param", "start_date=2024-03-01"),
    *("--param", "end_date=2024-03-31", "--param", "top_n=2"),
]


@pytest.fixture
def in_project(monkeypatch):
    from spark_jobs.settings import PROJECT_DIR

    monkeypatch.chdir(PROJECT_DIR)


def test_cli_athena_prints_an_aligned_table(aws, moto_endpoint, in_project, capsys):
    post_athena_result(moto_endpoint, CATEGORY_COLUMNS, CATEGORY_ROWS)

    code = cli.main(["-q", "sql", "--engine", "athena", *CATEGORY_ARGS])

    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines() == [
        "revenue_rank  category  revenue  revenue_share  product_views  add_to_carts  purchases",
        "------------  --------  -------  -------------  -------------  ------------  ---------",
        "           1  toys      35.0000            0.5             10             4          4",
        "           2  home      30.0000           NULL              5             2          2",
        "(2 rows)",
    ]
    [query_id] = athena().list_query_executions(WorkGroup=WORKGROUP)["QueryExecutionIds"]
    execution = athena().get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
    assert execution["ExecutionParameters"] == ["'web'", "'2024-03-01'", "'2024-03-31'", "'2'"]


def test_cli_athena_csv(aws, moto_endpoint, in_project, capsys):
    post_athena_result(moto_endpoint, CATEGORY_COLUMNS, CATEGORY_ROWS)

    code = cli.main(["-q", "sql", "--engine", "athena", "--csv", *CATEGORY_ARGS])

    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert code == 0
    assert rows == [
        [name for name, _ in CATEGORY_COLUMNS],
        ["1", "toys", "35.0000", "0.5", "10", "4", "4"],
        ["2", "home", "30.0000", "", "5", "2", "2"],
    ]


def test_cli_missing_parameter_is_a_usage_error_and_sends_nothing(aws, in_project, capsys):
    code = cli.main(["-q", "sql", "--engine", "athena", *CATEGORY_ARGS[:-2]])

    assert code == 2
    assert "missing :top_n" in capsys.readouterr().err
    assert athena().list_query_executions()["QueryExecutionIds"] == []


def test_cli_unknown_view_and_bad_param_are_usage_errors(aws, capsys):
    assert cli.main(["-q", "sql", "--engine", "athena", "--view", "rpt_nope"]) == 2
    assert "rpt_funnel" in capsys.readouterr().err
    assert cli.main(["-q", "sql", "--engine", "athena", "--query", "SELECT 1", "--param", "x"]) == 2
    assert "NAME=VALUE" in capsys.readouterr().err
    with pytest.raises(SystemExit) as caught:  # argparse: one of --view/--file/--query
        cli.main(["sql", "--engine", "athena", "--view", "rpt_funnel", "--query", "SELECT 1"])
    assert caught.value.code == 2


def test_cli_athena_failed_query_exits_1(aws, monkeypatch, capsys):
    monkeypatch.setenv("LAKEHOUSE_ATHENA_WORKGROUP", "nope")

    code = cli.main(["-q", "sql", "--engine", "athena", "--query", "SELECT 1"])

    assert code == 1
    assert "WorkGroup does not exist" in capsys.readouterr().err


def test_cli_redshift_view_runs_through_the_data_api(aws, capsys, monkeypatch):
    # `lakehouse sql` has no hook into the statement id: a helper thread finishes (on moto)
    # whatever statement appears, the same server-side step as finish_on_moto
    import threading

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.redshiftdata.models import redshiftdata_backends

    statements = redshiftdata_backends[DEFAULT_ACCOUNT_ID][REGION].statements
    monkeypatch.setenv("LAKEHOUSE_QUERY_TIMEOUT_SEC", "10")
    stop = threading.Event()

    def finisher():
        while not stop.is_set():
            for statement_id in list(statements):
                if statements[statement_id].status == "STARTED":
                    finish_on_moto(statement_id)
            stop.wait(0.01)

    thread = threading.Thread(target=finisher, daemon=True)
    thread.start()
    try:
        code = cli.main(["-q", "sql", "--engine", "redshift", "--view", "rpt_funnel"])
    finally:
        stop.set()
        thread.join()

    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines()[0].split() == ["Number", "Street", "City"]
    assert out.splitlines()[2] == "    10  Alpha st  Vancouver"
    [statement_id] = statements  # moto has no ListStatements: the id from its backend
    sent = redshift_data().describe_statement(Id=statement_id)["QueryString"]
    assert sent == Q.load_view("rpt_funnel", "redshift").sql("redshift")
    assert sent.startswith("WITH steps AS (SELECT") and "clickstream.dws_conversion_1d" in sent


def test_cli_redshift_timeout_exits_1(aws, capsys):
    code = cli.main(["-q", "sql", "--engine", "redshift", "--view", "rpt_active_users"])

    assert code == 1
    assert "still STARTED after 0.5 s" in capsys.readouterr().err


def test_cli_redshift_without_a_cluster_or_workgroup_exits_2(aws, monkeypatch, capsys):
    monkeypatch.setenv("LAKEHOUSE_REDSHIFT_CLUSTER_ID", "")

    code = cli.main(["-q", "sql", "--engine", "redshift", "--view", "rpt_active_users"])

    assert code == 2
    assert "LAKEHOUSE_REDSHIFT_WORKGROUP" in capsys.readouterr().err
