"""The BI SQL under sql/: parses in its dialect, covers the registry, lints, and computes right.

- every file parses with sqlglot in its dialect (athena, redshift) into one CREATE statement;
- every registry table, batch and real-time (``rt_*``), has an Athena and a Redshift DDL file
  (and no file names a table that is not in the registry); Athena DDL is a native Delta
  registration, Redshift DDL a Spectrum table over the symlink manifest whose columns match the
  declared schema, partitioned by dt exactly when the registry says so;
- sqlfluff, configured by sql/<dialect>/.sqlfluff, reports nothing on the views and Athena DDL;
- the views run on DuckDB (transpiled by sqlglot) over tiny tables made here, and return
  numbers worked out by hand in the comments;
- the ad-hoc queries of sql/queries/ parse as one SELECT in their dialect (athena, see
  spark_jobs.serving.queries.QUERY_DIALECT), document what they answer, their parameters and
  grain, transpile to every engine's dialect, and lint clean with their :name parameters filled
  by sqlfluff's placeholder templater (tests/sql/test_queries.py runs them on DuckDB).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
import sqlglot
from sqlfluff.core import FluffConfig, Linter
from sqlglot import exp

from spark_jobs import tables as T
from spark_jobs.common.schemas import SCHEMAS
from spark_jobs.settings import PROJECT_DIR

SQL_DIR = PROJECT_DIR / "sql"
DIALECTS = ("athena", "redshift")
VIEWS = ("rpt_active_users", "rpt_funnel", "rpt_category_revenue", "rpt_retention")
LOCATION_ROOT = "s3://${LAKE_BUCKET}"
REDSHIFT_SCHEMA = "clickstream_lake"  # Spectrum external tables (ddl/)
MARTS_SCHEMA = "clickstream"  # loaded DWS marts (marts/) and the views over them

# one CREATE per file; the Redshift scripts (load/, admin/) hold several statements
SCRIPTS = ("load", "admin")
SQL_FILES = sorted(
    (dialect, path)
    for dialect in DIALECTS
    for path in (SQL_DIR / dialect).rglob("*.sql")
    if path.parent.name not in SCRIPTS
)


def _ids(items):
    return [f"{d}:{p.relative_to(SQL_DIR / d)}" for d, p in items]


def _parse_one(path: Path, dialect: str) -> exp.Create:
    statements = [s for s in sqlglot.parse(path.read_text(), read=dialect) if s is not None]
    assert len(statements) == 1, f"{path}: expected one statement, got {len(statements)}"
    assert isinstance(statements[0], exp.Create), f"{path}: not a CREATE statement"
    return statements[0]


# ------------------------------------------------------------------------------ parse, coverage


@pytest.mark.parametrize(("dialect", "path"), SQL_FILES, ids=_ids(SQL_FILES))
def test_sql_file_parses_in_its_dialect(dialect, path):
    create = _parse_one(path, dialect)

    assert create.this.find(exp.Table).name == path.stem  # file name = table/view name


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_registry_table_has_ddl_and_nothing_else(dialect):
    files = {p.stem for p in (SQL_DIR / dialect / "ddl").glob("*.sql")}

    assert files == {t.name for t in T.ALL_TABLES}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_the_bi_views_exist(dialect):
    files = {p.stem for p in (SQL_DIR / dialect / "views").glob("*.sql")}

    assert set(VIEWS) <= files
    assert all(name.startswith("rpt_") for name in files)


@pytest.mark.parametrize("table", T.ALL_TABLES, ids=lambda t: t.name)
def test_athena_ddl_registers_the_delta_table_location_without_columns(table):
    create = _parse_one(SQL_DIR / "athena" / "ddl" / f"{table.name}.sql", "athena")
    props = create.args["properties"].expressions

    assert create.args["kind"] == "TABLE"
    assert isinstance(create.this, exp.Table)  # a bare name: no column list
    assert any(isinstance(p, exp.ExternalProperty) for p in props)
    [location] = [p for p in props if isinstance(p, exp.LocationProperty)]
    assert location.this.name == f"{LOCATION_ROOT}/{table.layer}/{table.name}/"
    table_props = {p.this.name: p.text("value") for p in props if type(p) is exp.Property}
    assert table_props == {"table_type": "DELTA"}


# Spark type name -> Redshift Spectrum column type, written out by hand for each declared type.
REDSHIFT_TYPES = {
    "string": "VARCHAR(65535)",
    "int": "INT",
    "bigint": "BIGINT",
    "decimal(18,4)": "DECIMAL(18, 4)",
    "decimal(38,4)": "DECIMAL(38, 4)",
    "double": "DOUBLE PRECISION",
    "boolean": "BOOLEAN",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
    "array<date>": "ARRAY<DATE>",
    "array<string>": "ARRAY<VARCHAR(65535)>",
    "map<string,string>": "MAP<VARCHAR(65535), VARCHAR(65535)>",
}


@pytest.mark.parametrize("table", T.ALL_TABLES, ids=lambda t: t.name)
def test_redshift_ddl_is_a_spectrum_table_over_the_symlink_manifest(table):
    create = _parse_one(SQL_DIR / "redshift" / "ddl" / f"{table.name}.sql", "redshift")
    props = create.args["properties"].expressions

    assert create.this.this.db == REDSHIFT_SCHEMA
    declared = [f for f in SCHEMAS[table.name].fields if f.name != table.partition_column]
    columns = create.this.expressions
    assert [c.name for c in columns] == [f.name for f in declared]
    for column, field in zip(columns, declared, strict=True):
        expected = exp.DataType.build(REDSHIFT_TYPES[field.dataType.simpleString()], "redshift")
        assert column.args["kind"] == expected, f"{table.name}.{field.name}"
    partitioned = [p.sql("redshift") for p in props if isinstance(p, exp.PartitionedByProperty)]
    if table.partition_column is None:  # the rt tables: one manifest file, no partitions
        assert partitioned == []
    else:
        assert partitioned == ["PARTITION BY (dt DATE)"]
    [file_format] = [p for p in props if isinstance(p, exp.FileFormatProperty)]
    assert "org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat" in file_format.sql("redshift")
    [location] = [p for p in props if isinstance(p, exp.LocationProperty)]
    manifest = f"{LOCATION_ROOT}/{table.layer}/{table.name}/_symlink_format_manifest/"
    assert location.this.name == manifest


@pytest.mark.parametrize("view", VIEWS)
def test_redshift_views_read_the_marts_in_sql_postgresql_also_parses(view):
    text = (SQL_DIR / "redshift" / "views" / f"{view}.sql").read_text()
    create = _parse_one(SQL_DIR / "redshift" / "views" / f"{view}.sql", "redshift")

    assert not create.args.get("no_schema_binding")  # PostgreSQL has no late-binding views
    tables = {t.sql("redshift") for t in create.expression.find_all(exp.Table)} - {"steps"}
    assert tables and all(t.startswith(f"{MARTS_SCHEMA}.") for t in tables)
    assert isinstance(sqlglot.parse_one(text, read="postgres"), exp.Create)


MART_TABLES = [t for t in T.TABLES if t.layer == "dws"]


@pytest.mark.parametrize("table", MART_TABLES, ids=lambda t: t.name)
def test_every_dws_table_has_a_redshift_mart_with_keys_and_its_columns(table):
    from spark_jobs.serving.warehouse import postgres_ddl

    path = SQL_DIR / "redshift" / "marts" / f"{table.name}.sql"
    create = _parse_one(path, "redshift")
    props = {type(p).__name__ for p in create.args["properties"].expressions}

    assert create.this.this.db == MARTS_SCHEMA
    assert {c.name for c in create.this.expressions if isinstance(c, exp.ColumnDef)} == {
        f.name for f in SCHEMAS[table.name].fields
    }
    [key] = [c for c in create.this.expressions if isinstance(c, exp.PrimaryKey)]
    assert tuple(e.name for e in key.expressions) == table.keys
    assert {"DistKeyProperty", "SortKeyProperty"} <= props
    local = postgres_ddl(path.read_text())  # what the local warehouse runs
    assert "DISTKEY" not in local.upper() and "SORTKEY" not in local.upper()
    assert "ENCODE" not in local.upper()


@pytest.mark.parametrize("table", MART_TABLES, ids=lambda t: t.name)
def test_the_redshift_day_load_parses_for_every_mart_as_one_transaction(table):
    from string import Template

    text = Template((SQL_DIR / "redshift" / "load" / "load_day.sql").read_text()).substitute(
        TABLE=table.name,
        LAKE_BUCKET="bucket/lake",
        DT="2024-03-01",
        IAM_ROLE="arn:aws:iam::1:role/r",
    )
    statements = [s for s in sqlglot.parse(text, read="redshift") if s is not None]

    assert statements[0].sql().upper().startswith("BEGIN")
    assert statements[-1].sql().upper().startswith("COMMIT")
    assert "FORMAT AS PARQUET" in text and f"/exports/{table.name}/dt=2024-03-01/" in text
    [delete] = [s for s in statements if isinstance(s, exp.Delete)]
    [insert] = [s for s in statements if isinstance(s, exp.Insert)]
    assert delete.this.sql() == insert.this.sql() == f"{MARTS_SCHEMA}.{table.name}"
    # the INSERT puts dt first: the mart's first column must be dt
    mart = _parse_one(SQL_DIR / "redshift" / "marts" / f"{table.name}.sql", "redshift")
    assert mart.this.expressions[0].name == "dt"


def test_the_redshift_roles_script_parses():
    statements = sqlglot.parse(
        (SQL_DIR / "redshift" / "admin" / "grants.sql").read_text(), read="redshift"
    )
    assert len([s for s in statements if s is not None]) == 9
    spectrum = (SQL_DIR / "redshift" / "admin" / "external_schema.sql").read_text()
    assert len([s for s in sqlglot.parse(spectrum, read="redshift") if s is not None]) == 1
    assert f"CREATE EXTERNAL SCHEMA IF NOT EXISTS {REDSHIFT_SCHEMA}" in spectrum


# ------------------------------------------------------------------------------ ad-hoc queries

QUERIES_DIR = SQL_DIR / "queries"
QUERY_FILES = sorted(QUERIES_DIR.glob("*.sql"))
QUERY_NAMES = ("active_users_range", "funnel_range", "category_top", "retention_cohorts")
RANGE_PARAMETERS = {"app_id", "start_date", "end_date"}


def test_the_queries_exist():
    assert set(QUERY_NAMES) <= {p.stem for p in QUERY_FILES}


@pytest.mark.parametrize("path", QUERY_FILES, ids=lambda p: p.name)
def test_query_file_is_one_documented_select(path):
    from spark_jobs.serving.queries import QUERY_DIALECT, load_query_file

    statements = [s for s in sqlglot.parse(path.read_text(), read=QUERY_DIALECT) if s is not None]
    assert len(statements) == 1 and isinstance(statements[0], exp.Query)
    header = []
    for line in path.read_text().splitlines():
        if not line.startswith("--"):
            break
        header.append(line)
    text = "\n".join(header)
    assert header[0].startswith(f"-- {path.stem}: ")
    assert "Answers:" in text and "Parameters:" in text and "Grain:" in text
    parameters = load_query_file(path).parameters
    assert RANGE_PARAMETERS <= set(parameters)
    for name in parameters:  # every parameter is documented in the header
        assert f"--   :{name} " in text, name
    body = path.read_text()[len(text) :]
    assert "dt BETWEEN CAST(:start_date AS DATE) AND CAST(:end_date AS DATE)" in body


@pytest.mark.parametrize("path", QUERY_FILES, ids=lambda p: p.name)
@pytest.mark.parametrize("target", ["athena", "spark", "redshift", "postgres", "duckdb"])
def test_query_file_transpiles_to_every_engine(path, target):
    from spark_jobs.serving.queries import load_query_file

    sql = load_query_file(path).sql(target)

    assert isinstance(sqlglot.parse_one(sql, read=target), exp.Query)


def test_sqlfluff_lints_the_queries_with_their_parameters_filled():
    config = FluffConfig.from_path(str(QUERIES_DIR))
    assert (config.get("dialect"), config.get("templater")) == ("athena", "placeholder")

    records = Linter(config=config).lint_paths((str(QUERIES_DIR),)).as_records()

    assert len(records) == len(QUERY_FILES)
    problems = [
        f"{r['filepath']}:{v['start_line_no']} {v['code']} {v['description']}"
        for r in records
        for v in r["violations"]
    ]
    assert problems == []


# ----------------------------------------------------------------------------------------- lint


@pytest.mark.parametrize(
    ("dialect", "folders"), [("athena", ("views", "ddl")), ("redshift", ("views", "marts"))]
)
def test_sqlfluff_finds_its_config_and_reports_nothing(dialect, folders):
    # Redshift DDL is left out: sqlfluff's redshift grammar has no nested (ARRAY/MAP) column
    # types in CREATE EXTERNAL TABLE; the DDL tests above check those files instead.
    config = FluffConfig.from_path(str(SQL_DIR / dialect / "views"))
    assert config.get("dialect") == dialect

    paths = tuple(str(SQL_DIR / dialect / f) for f in folders)
    records = Linter(config=config).lint_paths(paths).as_records()

    assert len(records) == sum(len(list(Path(p).glob("*.sql"))) for p in paths)
    problems = [
        f"{r['filepath']}:{v['start_line_no']} {v['code']} {v['description']}"
        for r in records
        for v in r["violations"]
    ]
    assert problems == []


# ------------------------------------------------------------------------------- DuckDB results

D1, D2 = dt.date(2024, 3, 1), dt.date(2024, 3, 2)

DDL_DUCKDB = {
    T.DWS_ACTIVE_USERS: "app_id VARCHAR, events BIGINT, dau BIGINT, wau BIGINT, mau BIGINT, "
    "new_users BIGINT, dau_mau_ratio DOUBLE, dt DATE",
    T.DWS_CONVERSION: "app_id VARCHAR, sessions BIGINT, product_view_sessions BIGINT, "
    "add_to_cart_sessions BIGINT, purchase_sessions BIGINT, sessions_with_purchase BIGINT, "
    "session_conversion_rate DOUBLE, dt DATE",
    T.DWS_CATEGORY: "app_id VARCHAR, category VARCHAR, product_views BIGINT, add_to_carts BIGINT, "
    "purchases BIGINT, revenue DECIMAL(38, 4), sessions BIGINT, dt DATE",
    T.DWS_RETENTION: "app_id VARCHAR, cohort_dt DATE, day_n INTEGER, activity_dt DATE, "
    "cohort_users BIGINT, retained_users BIGINT, retention_rate DOUBLE, dt DATE",
}

ROWS = {
    T.DWS_ACTIVE_USERS: [
        ("web", 40, 3, 5, 12, 1, 0.25, D1),
        ("web", 0, 0, 0, 0, 0, None, D2),
        ("app", 20, 10, 10, 16, 4, 0.625, D1),
    ],
    T.DWS_CONVERSION: [
        ("web", 10, 8, 4, 1, 2, 0.2, D1),
        ("web", 0, 0, 0, 0, 0, None, D2),
    ],
    T.DWS_CATEGORY: [
        ("web", "home", 5, 2, 2, Decimal("30.0000"), 3, D1),
        ("web", "toys", 4, 1, 1, Decimal("10.0000"), 2, D1),
        ("web", "garden", 1, 0, 0, Decimal("0.0000"), 1, D2),
        ("app", "home", 1, 1, 1, Decimal("5.5000"), 1, D1),
    ],
    # web: 8 users first seen on D1, 2 of them back on D2; nobody new on D2; app: 3 on D1
    T.DWS_RETENTION: [
        ("web", D1, 0, D1, 8, 8, 1.0, D1),
        ("web", D1, 1, D2, 8, 2, 0.25, D2),
        ("web", D2, 0, D2, 0, 0, None, D2),
        ("app", D1, 0, D1, 3, 3, 1.0, D1),
    ],
}


@pytest.fixture(params=DIALECTS)
def run_view(request):
    """``run(view, order_by) -> list of dicts`` for one dialect's view, on DuckDB."""
    dialect = request.param
    con = duckdb.connect()
    prefix = ""
    if dialect == "redshift":
        con.execute(f"CREATE SCHEMA {MARTS_SCHEMA}")
        prefix = f"{MARTS_SCHEMA}."
    for table, columns in DDL_DUCKDB.items():
        con.execute(f"CREATE TABLE {prefix}{table} ({columns})")
        marks = ", ".join("?" * len(ROWS[table][0]))
        con.executemany(f"INSERT INTO {prefix}{table} VALUES ({marks})", ROWS[table])

    def run(view: str, order_by: str) -> list[dict]:
        create = _parse_one(SQL_DIR / dialect / "views" / f"{view}.sql", dialect)
        query = create.expression.sql(dialect="duckdb")
        cursor = con.execute(f"SELECT * FROM ({query}) AS v ORDER BY {order_by}")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    yield run
    con.close()


def test_rpt_active_users_stickiness_is_dau_over_mau(run_view):
    rows = run_view("rpt_active_users", "app_id, dt")
    picked = [
        (r["app_id"], r["dt"], r["returning_users"], r["dau_wau_ratio"], r["stickiness"])
        for r in rows
    ]

    assert picked == [
        ("app", D1, 6, 1.0, 0.625),  # 10 - 4; 10 / 10; 10 / 16
        ("web", D1, 2, 0.6, 0.25),  # 3 - 1; 3 / 5; 3 / 12
        ("web", D2, 0, None, None),  # no users: ratios are null, not errors
    ]
    assert [(r["dau"], r["wau"], r["mau"], r["events"]) for r in rows] == [
        (10, 10, 16, 20),
        (3, 5, 12, 40),
        (0, 0, 0, 0),
    ]


def test_rpt_funnel_step_counts_and_rates(run_view):
    rows = run_view("rpt_funnel", "app_id, dt, step_no")
    picked = [
        (
            r["dt"],
            r["step_no"],
            r["step"],
            r["step_sessions"],
            r["previous_step_sessions"],
            r["step_conversion_rate"],
            r["conversion_from_start"],
        )
        for r in rows
    ]

    assert picked == [
        # 10 sessions -> 8 product view -> 4 add to cart -> 1 purchase
        (D1, 1, "session", 10, 10, 1.0, 1.0),
        (D1, 2, "product_view", 8, 10, 0.8, 0.8),  # 8/10
        (D1, 3, "add_to_cart", 4, 8, 0.5, 0.4),  # 4/8, 4/10
        (D1, 4, "purchase", 1, 4, 0.25, 0.1),  # 1/4, 1/10
        (D2, 1, "session", 0, 0, None, None),
        (D2, 2, "product_view", 0, 0, None, None),
        (D2, 3, "add_to_cart", 0, 0, None, None),
        (D2, 4, "purchase", 0, 0, None, None),
    ]
    assert {r["app_id"] for r in rows} == {"web"}


def test_rpt_category_revenue_share_per_app_and_day(run_view):
    rows = run_view("rpt_category_revenue", "app_id, dt, revenue_rank, category")
    picked = [
        (
            r["app_id"],
            r["dt"],
            r["category"],
            r["revenue"],
            r["day_revenue"],
            r["revenue_share"],
            r["revenue_rank"],
        )
        for r in rows
    ]

    assert picked == [
        ("app", D1, "home", Decimal("5.5"), Decimal("5.5"), 1.0, 1),  # its own app's day only
        ("web", D1, "home", Decimal("30"), Decimal("40"), 0.75, 1),  # 30 / (30 + 10)
        ("web", D1, "toys", Decimal("10"), Decimal("40"), 0.25, 2),  # 10 / 40
        ("web", D2, "garden", Decimal("0"), Decimal("0"), None, 1),  # no revenue that day
    ]


def test_rpt_retention_is_the_cohort_triangle(run_view):
    rows = run_view("rpt_retention", "app_id, cohort_dt, day_n")
    picked = [
        (
            r["app_id"],
            r["cohort_dt"],
            r["day_n"],
            r["activity_dt"],
            r["cohort_users"],
            r["retained_users"],
            r["retention_rate"],
        )
        for r in rows
    ]

    assert picked == [
        ("app", D1, 0, D1, 3, 3, 1.0),  # day 0: the whole cohort
        ("web", D1, 0, D1, 8, 8, 1.0),
        ("web", D1, 1, D2, 8, 2, 0.25),  # 2 of 8 back the next day
        ("web", D2, 0, D2, 0, 0, None),  # an empty cohort: no rate, not an error
    ]
