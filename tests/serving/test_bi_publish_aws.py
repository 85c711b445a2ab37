"""bi-publish --target aws: the statements for Glue (through Athena) and the Redshift day load.

Athena runs against a real moto server: the registration DDL of every table reaches it (read
back with boto3's get_query_execution). moto 5.2.5 has no ``BatchExecuteStatement`` for the
Redshift Data API, so the day load is checked as the statements it sends: each parses as
Redshift SQL, and together they replace exactly one day from that day's export folder. The
same load runs for real on the local warehouse (tests/serving/test_endpoints.py).
"""

from __future__ import annotations

import datetime as dt

import boto3
import pytest
import sqlglot
from sqlglot import exp

from spark_jobs import tables as T
from spark_jobs.serving import bi_publish
from spark_jobs.settings import Settings

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/redshift-copy"
DAY = dt.date(2024, 3, 1)


@pytest.fixture
def aws_settings(moto_endpoint) -> Settings:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="athena-results")
    boto3.client("athena", region_name=REGION).create_work_group(
        Name="bi", Configuration={"ResultConfiguration": {"OutputLocation": "s3://athena-results/"}}
    )
    return Settings(
        lakehouse_root="s3a://lake-bucket/lake",
        aws_region=REGION,
        aws_endpoint_url=moto_endpoint,
        athena_workgroup="bi",
        athena_output="s3://athena-results/bi/",
        athena_database="clickstream",
        redshift_cluster_id="bi-cluster",
        redshift_db_user="loader",
        redshift_copy_role=ROLE,
        query_timeout_sec=5,
        query_poll_sec=0.02,
    )


def test_every_table_is_registered_in_athena_as_a_delta_table_if_missing(aws_settings):
    ids = bi_publish.register_athena(aws_settings)

    athena = boto3.client("athena", region_name=REGION)
    sent = {}
    for query_id in ids:
        execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        assert execution["QueryExecutionContext"]["Database"] == "clickstream"
        assert execution["WorkGroup"] == "bi"
        create = sqlglot.parse_one(execution["Query"], read="athena")
        sent[create.this.name] = create
    assert set(sent) == {t.name for t in T.TABLES}
    for table in T.TABLES:
        create = sent[table.name]
        assert create.args["exists"] is True  # IF NOT EXISTS: a rerun changes nothing
        [location] = create.find_all(exp.LocationProperty)
        assert location.this.name == f"s3://lake-bucket/lake/{table.layer}/{table.name}/"


@pytest.mark.parametrize("table", [t.name for t in T.TABLES if t.layer == "dws"])
def test_the_redshift_day_load_replaces_one_day_from_its_export(table):
    settings = Settings(lakehouse_root="s3a://lake-bucket/lake", redshift_copy_role=ROLE)

    statements = bi_publish.redshift_load_statements(settings, table, DAY)
    parsed = [sqlglot.parse_one(s, read="redshift") for s in statements]

    assert not any(s.upper().startswith(("BEGIN", "COMMIT")) for s in statements)  # the batch is
    copy = next(s for s in statements if s.startswith("COPY"))  # one transaction itself
    assert f"FROM 's3://lake-bucket/lake/exports/{table}/dt=2024-03-01/'" in copy
    assert f"IAM_ROLE '{ROLE}'" in copy and copy.endswith("FORMAT AS PARQUET")
    [delete] = [p for p in parsed if isinstance(p, exp.Delete)]
    assert delete.this.sql() == f"clickstream.{table}"
    assert delete.args["where"].this.sql() == "dt = '2024-03-01'"
    [insert] = [p for p in parsed if isinstance(p, exp.Insert)]
    assert insert.this.sql() == f"clickstream.{table}"
    # the staging table is filled before the day is deleted, and inserted from after
    order = [type(p).__name__ for p in parsed]
    assert order.index("Delete") < order.index("Insert")
    assert statements.index(copy) < order.index("Delete")


def test_aws_target_needs_an_s3_root_and_a_copy_role():
    with pytest.raises(ValueError, match="s3:// or s3a://"):
        bi_publish.lake_bucket(Settings(lakehouse_root="/tmp/lake"))
    with pytest.raises(ValueError, match="LAKEHOUSE_REDSHIFT_COPY_ROLE"):
        bi_publish.redshift_load_statements(
            Settings(lakehouse_root="s3a://b/lake"), T.DWS_CATEGORY, DAY
        )
