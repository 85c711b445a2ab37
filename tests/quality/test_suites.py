"""Every suite passes on good data and fails, on exactly the expected rules, on a corrupted twin."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from spark_jobs import tables as T
from spark_jobs.common.schemas import EVENT_TYPES, SCHEMAS
from spark_jobs.quality.validate import validate_dataframe

from .conftest import D1, D2, OBJ1, W, ts

EXPECTATIONS = Path(__file__).resolve().parents[2] / "expectations"
RECOUNT = ("recounted_records",)

BETWEEN = "expect_column_values_to_be_between"
PAIR_GE = "expect_column_pair_values_a_to_be_greater_than_b"
PAIR_EQ = "expect_column_pair_values_to_be_equal"
ROWS = "unexpected_rows_expectation"
NOT_NULL = "expect_column_values_to_not_be_null"
UNIQUE = "expect_column_values_to_be_unique"
COMPOUND_UNIQUE = "expect_compound_columns_to_be_unique"
IN_SET = "expect_column_values_to_be_in_set"
NOT_IN_SET = "expect_column_values_to_not_be_in_set"
REGEX = "expect_column_values_to_match_regex"


def _extra(table: str) -> tuple[str, ...]:
    return RECOUNT if table == T.INGEST_MANIFEST else ()


def _with_recounts(rows: list[dict]) -> list[dict]:
    # counted by hand from the ODS and rejected rows in conftest: OBJ1 2+1, OBJ2 1+0, OBJ3 0+1
    for row, recount in zip(rows, (3, 1, 1), strict=True):
        row["recounted_records"] = recount
    return rows


def _failed(outcome) -> set[tuple[str, tuple[str, ...]]]:
    return {(f.type, f.columns) for f in outcome.failures}


# ---------------------------------------------------------------------------------------------
# The suite files


@pytest.mark.parametrize("table", [t.name for t in T.ALL_TABLES])
def test_every_table_has_a_suite_named_after_it_covering_its_declared_schema(table):
    suite = json.loads((EXPECTATIONS / f"{table}.json").read_text())
    assert suite["name"] == table
    by_type: dict[str, list[dict]] = {}
    for e in suite["expectations"]:
        by_type.setdefault(e["type"], []).append(e["kwargs"])
    fields = SCHEMAS[table].fields
    assert {k["column"] for k in by_type["expect_column_to_exist"]} >= {f.name for f in fields}
    types = {k["column"]: k["type_"] for k in by_type["expect_column_values_to_be_of_type"]}
    assert types == {f.name: type(f.dataType).__name__ for f in fields}
    not_null = {k["column"] for k in by_type[NOT_NULL]}
    assert not_null == {f.name for f in fields if not f.nullable}


def test_event_type_set_is_the_canonical_one():
    for table in (T.ODS_EVENTS, T.DWD_EVENTS):
        suite = json.loads((EXPECTATIONS / f"{table}.json").read_text())
        (kwargs,) = [e["kwargs"] for e in suite["expectations"] if e["type"] == IN_SET]
        assert kwargs == {"column": "event_type", "value_set": list(EVENT_TYPES)}


# ---------------------------------------------------------------------------------------------
# Good data passes


@pytest.mark.spark
@pytest.mark.parametrize("table", [t.name for t in T.TABLES])
def test_suite_passes_on_good_data(table, good_rows, make_df, settings):
    rows = good_rows[table]
    if table == T.INGEST_MANIFEST:
        rows = _with_recounts(rows)
    outcome = validate_dataframe(make_df(table, rows, _extra(table)), table, settings, "good")
    assert outcome.success, outcome.report()
    assert outcome.passed == outcome.evaluated > 0
    assert Path(settings.lakehouse_root, "data_docs", "index.html").is_file()


# ---------------------------------------------------------------------------------------------
# Corrupted twins fail on the rules they break (and on nothing else)


def _corrupt_ods(rows):
    rows[0]["price"] = Decimal("-1.0000")  # negative price
    rows[1]["event_type"] = "click"  # not a canonical type
    rows[2]["etl_source_line"] = 1
    rows[2]["etl_source_object"] = OBJ1  # same (object, line) as rows[0]
    rows[2]["dt"] = D1  # keep dt = date(event_ts) broken only where intended:
    rows[2]["event_ts"] = ts(D1, 11)
    rows[1]["dt"] = dt.date(2024, 2, 29)  # dt is not the UTC date of event_ts
    return {
        (BETWEEN, ("price",)),
        (IN_SET, ("event_type",)),
        (COMPOUND_UNIQUE, ("etl_source_object", "etl_source_line")),
        (ROWS, ()),
    }


def _corrupt_rejected(rows):
    rows[0]["reason"] = None
    rows[0]["etl_source_line"] = 0
    return {(NOT_NULL, ("reason",)), (BETWEEN, ("etl_source_line",))}


def _corrupt_manifest(rows):
    _with_recounts(rows)
    rows[0]["raw_records"] = 4  # 4 != 2 + 1 and 4 != 3 counted in the tables
    rows[1]["recounted_records"] = 0  # the manifest adds up, but the ODS row is gone
    rows[2]["layout"] = "sftp"
    return {(ROWS, ()), (PAIR_EQ, ("raw_records", "recounted_records")), (IN_SET, ("layout",))}


def _corrupt_dwd_events(rows):
    rows[1]["event_id"] = rows[0]["event_id"]  # duplicate event_id
    rows[2]["price"] = Decimal("-5.0000")
    rows[2]["session_start_ts"] = rows[2]["event_ts"] + dt.timedelta(minutes=1)
    return {
        (UNIQUE, ("event_id",)),
        (BETWEEN, ("price",)),
        (PAIR_GE, ("event_ts", "session_start_ts")),
    }


def _corrupt_sessions(rows):
    rows[0]["duration_sec"] = 86_401  # longer than 24 h
    rows[1]["session_id"] = rows[0]["session_id"]
    rows[1]["event_cnt"] = 2  # but page_view 1 + product_view 1 + purchase 1 = 3
    return {
        (BETWEEN, ("duration_sec",)),
        (UNIQUE, ("session_id",)),
        (ROWS, ()),
    }


def _corrupt_active_users(rows):
    rows[0].update(dau=10, wau=7, mau=9)  # dau > mau (and > wau)
    rows[1].update(new_users=3)  # more new users than active users (dau 2)
    return {(PAIR_GE, ("wau", "dau")), (PAIR_GE, ("dau", "new_users"))}


def _corrupt_conversion(rows):
    rows[0]["session_conversion_rate"] = 1.5
    rows[1]["add_to_cart_sessions"] = 5  # more than the 4 product-view sessions (and sessions)
    return {
        (BETWEEN, ("session_conversion_rate",)),
        (PAIR_GE, ("product_view_sessions", "add_to_cart_sessions")),
    }


def _corrupt_category(rows):
    rows[0]["revenue"] = Decimal("-59.9700")
    rows[1]["category"] = "shoes"  # (shop, 2024-03-01, shoes) twice
    return {(BETWEEN, ("revenue",)), (COMPOUND_UNIQUE, ("app_id", "dt", "category"))}


def _corrupt_retention(rows):
    rows[0].update(retained_users=3, retention_rate=0.75)  # day 0 must retain the whole cohort
    rows[1].update(retained_users=5, retention_rate=1.25)  # more retained than the 4 in it
    later = D2 + dt.timedelta(days=31)
    rows[2].update(day_n=31, activity_dt=later, dt=later)  # day 31 is not a cell
    return {
        (ROWS, ()),
        (PAIR_GE, ("cohort_users", "retained_users")),
        (BETWEEN, ("retention_rate",)),
        (BETWEEN, ("day_n",)),
    }


CORRUPTIONS = {
    T.ODS_EVENTS: _corrupt_ods,
    T.ODS_REJECTED: _corrupt_rejected,
    T.INGEST_MANIFEST: _corrupt_manifest,
    T.DWD_EVENTS: _corrupt_dwd_events,
    T.DWD_SESSIONS: _corrupt_sessions,
    T.DWS_ACTIVE_USERS: _corrupt_active_users,
    T.DWS_CONVERSION: _corrupt_conversion,
    T.DWS_CATEGORY: _corrupt_category,
    T.DWS_RETENTION: _corrupt_retention,
}


def test_every_table_has_a_corrupted_twin():
    assert set(CORRUPTIONS) == {t.name for t in T.TABLES}
    assert set(RT_CORRUPTIONS) == {t.name for t in T.RT_TABLES}


@pytest.mark.spark
@pytest.mark.parametrize("table", list(CORRUPTIONS))
def test_suite_fails_on_corrupted_twin(table, good_rows, make_df, settings):
    rows = good_rows[table]
    expected = CORRUPTIONS[table](rows)
    outcome = validate_dataframe(make_df(table, rows, _extra(table)), table, settings, "bad")
    assert not outcome.success
    assert _failed(outcome) == expected, outcome.report()
    assert outcome.passed == outcome.evaluated - len(expected)
    assert all(f.samples for f in outcome.failures), outcome.report()


# ---------------------------------------------------------------------------------------------
# Real-time suites: one run per table on the good rows plus corrupted ones. Each rule must flag
# exactly the rows written to break it (its unexpected count), so it passes on the good rows and
# is not vacuous; one GX run instead of two per table keeps these tests cheap.


def _rt_sessions(good):
    longer = {**good[0], "userId": "9", "orderCheckoutEventCount": 5}  # > its eventCount 4
    twin = {**good[1], "deptList": []}  # user 8's session again, and 5 events without a dept
    return [longer, twin], {
        (PAIR_GE, ("eventCount", "orderCheckoutEventCount")): 1,
        (COMPOUND_UNIQUE, ("userId", "windowBeginTime")): 2,  # the session and its twin
        (ROWS, ()): 1,
    }


def _rt_clickevents(good):
    rounded = {**good[0], "windowBeginTime": W + 20_000, "windowEndTime": W + 30_000}
    rounded["percentSessionswithBuy"] = 67  # 2 of 3 is 66 % truncated, not rounded
    more = {**good[1], "windowBeginTime": W + 30_000, "windowEndTime": W + 40_000}
    more.update(userSessionCountWithOrderCheckout=2, percentSessionswithBuy=200)  # of 1 session
    return [rounded, more], {
        (ROWS, ()): 1,
        (BETWEEN, ("percentSessionswithBuy",)): 1,
        (PAIR_GE, ("userSessionCount", "userSessionCountWithOrderCheckout")): 1,
    }


def _rt_departments(good):
    later = {"windowBeginTime": W + 10_000, "windowEndTime": W + 20_000}
    return [
        {**good[0], **later, "departmentName": "N/A"},
        {**good[0], **later, "departmentCount": 0},
    ], {(NOT_IN_SET, ("departmentName",)): 1, (BETWEEN, ("departmentCount",)): 1}


def _rt_trades(good):
    return [
        {**good[0], "count_tno": 2, "sum_tnum": 4},  # a second row for minute W
        {**good[1], "windowBeginTime": W + 120_000, "windowEndTime": W + 180_000, "count_tno": 0},
        {**good[1], "windowBeginTime": W + 180_001, "windowEndTime": W + 240_001},  # off the minute
    ], {
        (UNIQUE, ("windowBeginTime",)): 2,
        (BETWEEN, ("count_tno",)): 1,
        (ROWS, ()): 1,
    }


def _rt_errors(good):
    return [
        {**good[0], "etl_partition": 2, "etl_offset": 0, "errorMsg": "WARNING slow response"},
        {**good[1], "etl_partition": 0, "etl_offset": 10},  # the Kafka record of good[0]
    ], {
        (REGEX, ("errorMsg",)): 1,
        (COMPOUND_UNIQUE, ("etl_topic", "etl_partition", "etl_offset")): 2,
    }


def _rt_warnings(good):
    return [
        {**good[0], "action": "cancel_order", "warningCount": 9},  # below the threshold 10
        {**good[0], "action": "logout", "windowBeginTime": W + 30_000, "windowEndTime": W + 90_000},
    ], {(BETWEEN, ("warningCount",)): 1, (ROWS, ()): 1}


def _rt_late(good):
    return [
        {**good[0], "etl_offset": 43, "latenessMs": 1},  # but watermark - event time = 59,000
        {**good[0], "etl_offset": 44, "query": "rt_error_events"},  # stateless: never late
        {**good[0], "etl_offset": 45, "batchId": 0},  # batch 0 has no watermark
    ], {(ROWS, ()): 1, (IN_SET, ("query",)): 1, (BETWEEN, ("batchId",)): 1}


RT_CORRUPTIONS = {
    T.RT_USER_SESSIONS_CHECKOUT: _rt_sessions,
    T.RT_CLICKEVENTS_USERID_AGG: _rt_clickevents,
    T.RT_DEPARTMENTS_AGG: _rt_departments,
    T.RT_TRADE_ORDERS_1M: _rt_trades,
    T.RT_ERROR_EVENTS: _rt_errors,
    T.RT_WARNING_ALERTS: _rt_warnings,
    T.RT_LATE_EVENTS: _rt_late,
}


@pytest.mark.spark
@pytest.mark.parametrize("table", list(RT_CORRUPTIONS))
def test_rt_suite_flags_exactly_the_corrupted_rows_among_good_ones(
    table, good_rows, make_df, settings
):
    good = good_rows[table]
    bad, expected = RT_CORRUPTIONS[table](good)
    outcome = validate_dataframe(make_df(table, good + bad), table, settings, "good + bad")
    assert not outcome.success
    flagged = {(f.type, f.columns): f.unexpected_count for f in outcome.failures}
    assert flagged == expected, outcome.report()
    assert outcome.passed == outcome.evaluated - len(expected) > 0
    assert Path(settings.lakehouse_root, "data_docs", "index.html").is_file()


@pytest.mark.spark
def test_session_cap_comes_from_settings(good_rows, make_df, settings):
    # s2 lasts 7200 s: fine under the default 24 h cap, too long under a 1 h cap
    df = make_df(T.DWD_SESSIONS, good_rows[T.DWD_SESSIONS])
    outcome = validate_dataframe(df, T.DWD_SESSIONS, replace(settings, session_max_sec=3600), "1h")
    assert _failed(outcome) == {(BETWEEN, ("duration_sec",))}
    (failure,) = outcome.failures
    assert failure.unexpected_count == 1
    assert failure.samples == ({"session_id": "s2", "dt": D2, "duration_sec": 7200},)


@pytest.mark.spark
@pytest.mark.parametrize("table", [T.ODS_EVENTS, T.DWD_EVENTS])
def test_a_negative_price_is_a_warning_that_does_not_block(table, good_rows, make_df, settings):
    rows = good_rows[table]
    rows[0]["price"] = Decimal("-11062.0600")  # an Online Retail bad-debt adjustment
    outcome = validate_dataframe(make_df(table, rows), table, settings, "negative price")
    assert outcome.success, outcome.report()
    [warning] = outcome.failures
    assert (warning.type, warning.columns, warning.severity) == (BETWEEN, ("price",), "warning")
    assert outcome.report().startswith(f"PASS with 1 warning(s) {table}")
    assert "WARNING (not blocking)" in outcome.report()
