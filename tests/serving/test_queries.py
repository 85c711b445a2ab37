"""Loading the BI SQL and binding its :name parameters (spark_jobs.serving.queries).

The values each API receives are checked as text here; tests/serving/test_aws.py sends them to
a moto server, tests/sql/test_queries.py runs the literal-bound queries on DuckDB.
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlglot

from spark_jobs.serving import queries as Q

RANGE = {"app_id": "web", "start_date": "2024-03-01", "end_date": "2024-03-31"}


def test_parameters_are_listed_once_in_text_order():
    statement = Q.parse_statement(
        "SELECT * FROM t WHERE b = :second AND a = :first AND c = :second "
        "ORDER BY x LIMIT 5 OFFSET 0",
        "athena",
    )

    # sqlglot walks the tree breadth-first; the order here is the order of the text
    assert statement.parameters == ["second", "first"]


def test_query_files_declare_the_range_parameters():
    assert Q.load_query_file("funnel_range").parameters == ["app_id", "start_date", "end_date"]
    assert Q.load_query_file("category_top").parameters == [
        "app_id",
        "start_date",
        "end_date",
        "top_n",
    ]


def test_a_view_file_gives_its_select_in_its_dialect():
    statement = Q.load_view("rpt_active_users", "redshift")

    assert statement.dialect == "redshift"
    assert statement.parameters == []
    assert statement.sql().startswith("SELECT au.app_id, au.dt")
    assert "clickstream.dws_active_users_1d" in statement.sql()


def test_unknown_view_and_file_name_what_exists():
    with pytest.raises(ValueError, match="rpt_funnel"):
        Q.load_view("rpt_nope", "athena")
    with pytest.raises(ValueError, match="funnel_range"):
        Q.load_query_file("nope")


def test_missing_and_unknown_parameters_are_all_named():
    statement = Q.load_query_file("category_top")

    with pytest.raises(Q.QueryParameterError) as caught:
        Q.render_literal_sql(statement, {"app_id": "web", "topn": "5"})

    assert caught.value.missing == ["end_date", "start_date", "top_n"]
    assert caught.value.unknown == ["topn"]
    assert ":top_n" in str(caught.value) and ":topn" in str(caught.value)


def test_more_than_one_statement_or_a_positional_placeholder_is_refused():
    with pytest.raises(ValueError, match="one SQL statement"):
        Q.parse_statement("SELECT 1; SELECT 2", "athena")
    with pytest.raises(ValueError, match="name it"):
        Q.parse_statement("SELECT * FROM t WHERE a = ?", "athena")
    with pytest.raises(ValueError, match="SELECT"):
        Q.parse_statement("DROP TABLE t", "athena")


def test_literals_are_quoted_for_the_target_dialect():
    statement = Q.parse_statement(
        "SELECT * FROM t WHERE a = :a AND b = :b AND c = :c AND d = :d AND e = :e", "athena"
    )
    params = {"a": "it's", "b": 10, "c": None, "d": True, "e": dt.date(2024, 3, 1)}

    sql = Q.render_literal_sql(statement, params, "postgres")

    assert sql == (
        "SELECT * FROM t WHERE a = 'it''s' AND b = 10 AND c = NULL AND d = TRUE "
        "AND e = '2024-03-01'"
    )
    # Spark reads a backslash in a literal as an escape: sqlglot doubles it there, not in Trino
    backslash = Q.parse_statement("SELECT :v AS v", "athena")
    assert Q.render_literal_sql(backslash, {"v": "a\\b"}, "spark") == "SELECT 'a\\\\b' AS v"
    assert Q.render_literal_sql(backslash, {"v": "a\\b"}, "athena") == "SELECT 'a\\b' AS v"


def test_an_injection_attempt_stays_one_string_literal():
    statement = Q.load_query_file("active_users_range")
    hostile = {**RANGE, "app_id": "web' OR '1'='1"}

    sql = Q.render_literal_sql(statement, hostile, "spark")

    [where] = [w for w in sqlglot.parse_one(sql, read="spark").find_all(sqlglot.exp.EQ)]
    assert where.expression.this == "web' OR '1'='1"  # the whole value is the literal


def test_athena_gets_one_positional_marker_per_occurrence_and_literal_strings():
    statement = Q.parse_statement(
        "SELECT * FROM t WHERE app_id = :app_id AND dt BETWEEN CAST(:start_date AS DATE) "
        "AND CAST(:end_date AS DATE) AND other_app <> :app_id AND n <= CAST(:top_n AS INTEGER)",
        "athena",
    )

    sql, values = Q.render_athena(statement, {**RANGE, "app_id": "it's", "top_n": 5})

    assert sql == (
        "SELECT * FROM t WHERE app_id = ? AND dt BETWEEN CAST(? AS DATE) "
        "AND CAST(? AS DATE) AND other_app <> ? AND n <= CAST(? AS INTEGER)"
    )
    assert values == ["'it''s'", "'2024-03-01'", "'2024-03-31'", "'it''s'", "5"]


def test_athena_from_a_redshift_view_is_transpiled():
    sql, values = Q.render_athena(Q.load_view("rpt_active_users", "redshift"), {})

    assert "DOUBLE PRECISION" not in sql and "CAST(au.dau AS DOUBLE)" in sql
    assert values == []


def test_redshift_keeps_named_markers_and_gets_string_values():
    statement = Q.load_query_file("category_top")

    sql, values = Q.render_redshift(statement, {**RANGE, "top_n": 3})

    assert "c.app_id = :app_id" in sql and "CAST(:top_n AS INTEGER)" in sql
    assert "%(" not in sql  # sqlglot's own Redshift placeholder style is not what the API reads
    assert "DOUBLE PRECISION" in sql  # transpiled from the Athena file
    assert values == [
        {"name": "app_id", "value": "web"},
        {"name": "start_date", "value": "2024-03-01"},
        {"name": "end_date", "value": "2024-03-31"},
        {"name": "top_n", "value": "3"},
    ]


def test_redshift_data_api_cannot_carry_null_or_empty_values():
    statement = Q.parse_statement("SELECT :a AS a", "redshift")

    for bad in (None, ""):
        with pytest.raises(Q.QueryParameterError, match=":a"):
            Q.render_redshift(statement, {"a": bad})


@pytest.mark.parametrize(
    ("engine", "dialect", "marker"),
    [
        ("local-athena", "spark", "CAST('2024-03-01' AS DATE)"),
        ("local-redshift", "postgres", "CAST('2024-03-01' AS DATE)"),
    ],
)
def test_local_engines_get_literals_in_their_dialect(engine, dialect, marker):
    prepared = Q.prepare(engine, Q.load_query_file("funnel_range"), RANGE)

    assert prepared.parameters is None
    assert marker in prepared.sql and ":" not in prepared.sql
    sqlglot.parse_one(prepared.sql, read=dialect)  # the engine's dialect reads it back


def test_local_redshift_runs_the_redshift_view_as_postgres():
    prepared = Q.prepare("local-redshift", Q.load_view("rpt_funnel", "redshift"), {})

    assert "clickstream.dws_conversion_1d" in prepared.sql
    assert "NO SCHEMA BINDING" not in prepared.sql  # the SELECT only
