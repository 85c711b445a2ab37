"""The streaming job's parse and window functions as batch functions, on hand-made records.

Each test builds Kafka-like records (the JSON a producer sends, with topic/partition/offset),
parses them with the ODS adapter as the job does, and compares with rows computed by hand.
Times are offsets in ms from ``BASE`` (2024-03-01T00:00:00Z, a multiple of 10 s and of 1 min).
"""

from __future__ import annotations

import json

import pytest

from spark_jobs.streaming import transforms as X

BASE = 1_709_251_200_000  # 2024-03-01T00:00:00Z in epoch ms
GAP_SEC = 1.0


def kafka_records(spark, topic: str, records: list[dict]):
    """Records as Spark's Kafka source gives them (value as text here), one partition."""
    rows = [(json.dumps(r), topic, 0, i) for i, r in enumerate(records)]
    return spark.createDataFrame(rows, "value string, topic string, partition int, offset long")


def clicks(spark, events: list[tuple[int, int, str, str]]):
    """``(user, ms after BASE, event_type, product_type)`` -> parsed lab clicks."""
    records = [
        {
            "ip": "66.249.1.1",
            "eventtimestamp": BASE + ms,
            "devicetype": "mobile",
            "event_type": event_type,
            "product_type": product,
            "userid": user,
            "globalseq": seq,
            "prevglobalseq": 0,
        }
        for seq, (user, ms, event_type, product) in enumerate(events, start=1)
    ]
    return X.parse_kafka_records(
        kafka_records(spark, "clickstream", records), "msk_clickstream_lab"
    )


def rows(df, order: list[str]) -> list[dict]:
    return sorted(
        (r.asDict(recursive=True) for r in df.collect()), key=lambda r: [r[k] for k in order]
    )


def checkout_session(user: int, start: int, product: str = "laptops") -> list[tuple]:
    """The lab's buying flow, 100 ms apart: 2 uncounted events, then 4 counted ones."""
    flow = [
        ("home_page", "N/A"),
        ("product_catalog", "N/A"),
        ("product_detail", product),
        ("add_to_cart", product),
        ("order", product),
        ("order_checkout", product),
    ]
    return [(user, start + 100 * i, e, p) for i, (e, p) in enumerate(flow)]


def browse_session(user: int, start: int, product: str = "cameras") -> list[tuple]:
    """home_page, then a product detail 100 ms later: no checkout, one counted event."""
    return [(user, start, "home_page", "N/A"), (user, start + 100, "product_detail", product)]


def test_gap_of_exactly_the_session_gap_continues_the_session(spark):
    events = [
        (1, 0, "home_page", "N/A"),
        (1, 1000, "product_catalog", "N/A"),  # exactly 1 s later: same session
        (2, 0, "home_page", "N/A"),
        (2, 1001, "product_catalog", "N/A"),  # 1.001 s later: a new session
    ]
    got = rows(X.sessionize_clicks(clicks(spark, events), GAP_SEC), ["userId", "windowBeginTime"])
    spans = [(r["userId"], r["windowBeginTime"] - BASE, r["windowEndTime"] - BASE) for r in got]
    assert spans == [("1", 0, 2000), ("2", 0, 1000), ("2", 1001, 2001)]


def test_event_count_at_the_last_checkout_and_distinct_departments(spark):
    events = checkout_session(7, 0) + [
        (7, 700, "product_detail", "cameras"),  # after the checkout: counted, not at checkout
        (7, 800, "", ""),  # the lab's session-end record: in the session, not counted
    ]
    got = rows(X.sessionize_clicks(clicks(spark, events), GAP_SEC), ["userId"])
    assert got == [
        {
            "userId": "7",
            "eventCount": 5,
            "orderCheckoutEventCount": 4,
            "hasOrderCheckout": True,
            "deptList": ["cameras", "laptops"],
            "windowBeginTime": BASE,
            "windowEndTime": BASE + 1800,
        }
    ]


def test_the_last_checkout_in_event_time_then_globalseq_order_sets_the_checkout_count(spark):
    events = [
        (3, 0, "product_detail", "laptops"),  # globalseq 1, counted: 1
        (3, 100, "order_checkout", "laptops"),  # 2, counted: 2, a first checkout
        (3, 300, "product_detail", "cameras"),  # 3, counted
        (3, 300, "order_checkout", "N/A"),  # 4: same ms, later globalseq; not counted itself
        (3, 200, "add_to_cart", "cameras"),  # 5, sent late but before both at 300: counted
        (3, 400, "product_detail", "tablets"),  # 6, counted, after the last checkout
        (4, 0, "order_checkout", "N/A"),  # 7
        (4, 0, "product_detail", "cameras"),  # 8: same ms as the checkout, after it by seq
    ]
    got = rows(X.sessionize_clicks(clicks(spark, events), GAP_SEC), ["userId"])
    counts = [(r["userId"], r["eventCount"], r["orderCheckoutEventCount"]) for r in got]
    # user 3, in order: 0 ms, 100 (checkout: 2), 200, 300 seq 3, 300 seq 4 (checkout: 4), 400
    assert counts == [("3", 5, 4), ("4", 1, 0)]
    assert [r["deptList"] for r in got] == [["cameras", "laptops", "tablets"], ["cameras"]]


def test_only_sessions_with_a_checkout_are_published(spark):
    events = checkout_session(1, 0) + browse_session(2, 0)
    sessions = X.sessionize_clicks(clicks(spark, events), GAP_SEC)
    assert rows(X.select_user_sessions_checkout(sessions), ["userId"]) == [
        {
            "userId": "1",
            "eventCount": 4,
            "orderCheckoutEventCount": 4,
            "deptList": ["laptops"],
            "windowBeginTime": BASE,
            "windowEndTime": BASE + 1500,
        }
    ]


def test_session_spanning_two_windows_counts_in_the_window_of_its_end(spark):
    events = [
        (1, 9_500, "home_page", "N/A"),
        (1, 10_200, "product_catalog", "N/A"),  # session [9.5 s, 11.2 s): window [10 s, 20 s)
        (2, 8_000, "home_page", "N/A"),
        (2, 9_000, "product_catalog", "N/A"),  # session [8 s, 10 s): ends on the boundary
    ]
    sessions = X.sessionize_clicks(clicks(spark, events), GAP_SEC)
    got = rows(X.aggregate_clickevents_userid(sessions), ["windowBeginTime"])
    assert [(r["windowBeginTime"] - BASE, r["windowEndTime"] - BASE) for r in got] == [
        (0, 10_000),
        (10_000, 20_000),
    ]
    assert [r["userSessionCount"] for r in got] == [1, 1]


@pytest.mark.parametrize(
    ("previous", "watermark", "closed"),
    [
        (0, 0, None),  # batch 0: no watermark yet
        (BASE + 3_000, BASE + 9_999, None),  # [0, 10 s) still open
        (BASE + 3_000, BASE + 10_000, (BASE, BASE + 10_000)),  # reaches its end: closes it
        (BASE + 10_000, BASE + 19_999, None),  # closed by the batch before: not again
        (BASE + 10_000, BASE + 35_000, (BASE + 10_000, BASE + 30_000)),  # two windows at once
    ],
)
def test_a_batch_closes_the_windows_whose_end_its_watermark_first_reaches(
    previous, watermark, closed
):
    assert X.closed_session_ends(previous, watermark, 10) == closed


def test_closed_windows_read_from_stored_sessions_equal_those_of_all_sessions(spark):
    # the job aggregates the windows a batch closes from its stored sessions (epoch-ms bounds
    # only, no Spark window column): the same rows as aggregating every session at once
    events = [
        (u, ms, "home_page", "N/A") for u, ms in [(1, 500), (2, 8_999), (3, 9_000), (4, 19_000)]
    ] + checkout_session(5, 12_000)
    sessions = X.sessionize_clicks(clicks(spark, events), GAP_SEC)
    stored = spark.createDataFrame(sessions.collect(), sessions.schema)  # a plain table read
    low, high = X.closed_session_ends(BASE + 4_000, BASE + 21_000, 10)
    closed = stored.where(f"windowEndTime > {low} AND windowEndTime <= {high}")
    # sessions end at 1.5 s, 9.999 s, 10 s (on the boundary: in [0, 10 s)), 20 s and 13.5 s
    # (the checkout): the batch closes [0, 10 s) with 3 sessions and [10 s, 20 s) with 2
    assert rows(X.aggregate_clickevents_userid(closed), ["windowBeginTime"]) == [
        {
            "windowBeginTime": BASE,
            "windowEndTime": BASE + 10_000,
            "userSessionCount": 3,
            "userSessionCountWithOrderCheckout": 0,
            "percentSessionswithBuy": 0,
        },
        {
            "windowBeginTime": BASE + 10_000,
            "windowEndTime": BASE + 20_000,
            "userSessionCount": 2,
            "userSessionCountWithOrderCheckout": 1,
            "percentSessionswithBuy": 50,
        },
    ]


def test_percentage_of_sessions_with_a_buy_is_truncated_to_an_integer(spark):
    events = (
        checkout_session(1, 0)
        + checkout_session(2, 0)
        + browse_session(3, 0)  # window [0, 10 s): 2 of 3 -> 66 (not 67)
        + checkout_session(1, 10_000)
        + browse_session(2, 10_000)
        + browse_session(3, 10_000)  # window [10 s, 20 s): 1 of 3 -> 33
    )
    sessions = X.sessionize_clicks(clicks(spark, events), GAP_SEC)
    assert rows(X.aggregate_clickevents_userid(sessions), ["windowBeginTime"]) == [
        {
            "windowBeginTime": BASE,
            "windowEndTime": BASE + 10_000,
            "userSessionCount": 3,
            "userSessionCountWithOrderCheckout": 2,
            "percentSessionswithBuy": 66,
        },
        {
            "windowBeginTime": BASE + 10_000,
            "windowEndTime": BASE + 20_000,
            "userSessionCount": 3,
            "userSessionCountWithOrderCheckout": 1,
            "percentSessionswithBuy": 33,
        },
    ]


def test_department_touched_twice_in_one_session_counts_once(spark):
    events = (
        checkout_session(1, 0, "laptops")  # laptops on 4 events of one session
        + [(1, 600, "product_catalog", "N/A"), (1, 700, "product_detail", "cameras")]
        + browse_session(2, 0, "laptops")
    )
    sessions = X.sessionize_clicks(clicks(spark, events), GAP_SEC)
    got = rows(X.aggregate_departments(sessions), ["departmentName"])
    assert got == [
        {
            "departmentName": "cameras",
            "departmentCount": 1,
            "windowBeginTime": BASE,
            "windowEndTime": BASE + 10_000,
        },
        {
            "departmentName": "laptops",
            "departmentCount": 2,
            "windowBeginTime": BASE,
            "windowEndTime": BASE + 10_000,
        },
    ]


def test_trade_orders_per_minute_of_event_time(spark):
    orders = [(0, 2), (59_999, 3), (60_000, 4)]  # the last one opens the next minute
    records = [
        {
            "tid": i,
            "tno": f"T{i:010d}",
            "tdate": "2024-03-01 00:00:00",
            "uno": 1,
            "pno": 5,
            "tnum": tnum,
            "tuptime": BASE + ms,
        }
        for i, (ms, tnum) in enumerate(orders, start=1)
    ]
    trades = X.parse_kafka_records(
        kafka_records(spark, "trade_orders", records), "kda_trade_orders"
    )
    assert rows(X.aggregate_trade_orders_1m(trades), ["windowBeginTime"]) == [
        {"windowBeginTime": BASE, "windowEndTime": BASE + 60_000, "count_tno": 2, "sum_tnum": 5},
        {
            "windowBeginTime": BASE + 60_000,
            "windowEndTime": BASE + 120_000,
            "count_tno": 1,
            "sum_tnum": 4,
        },
    ]


def behaviour(spark, events: list[tuple[str, int, str]]):
    """``(action, ms after BASE, errorMsg)`` -> parsed backend behaviour events."""
    records = [
        {
            "eventId": f"e{i}",
            "action": action,
            "userId": "9",
            "objectId": "sku-1",
            "bizId": "",
            "errorMsg": msg,
            "createdAt": BASE + ms,
        }
        for i, (action, ms, msg) in enumerate(events)
    ]
    return X.parse_kafka_records(kafka_records(spark, "behaviour", records), "backend_behaviour")


@pytest.mark.parametrize(
    ("message", "is_error"),
    [
        ("[ERROR] payment gateway timeout", True),
        ("[error] payment gateway timeout", True),
        ("svc=cart [Panic] nil pointer", True),
        ("[pAnIc] index out of range", True),
        ("ERROR without brackets", False),
        ("WARNING slow response", False),
        ("", False),
    ],
)
def test_error_markers_in_any_letter_case(spark, message, is_error):
    got = rows(X.select_error_events(behaviour(spark, [("pay", 0, message)])), ["eventId"])
    expected = {
        "eventId": "e0",
        "action": "pay",
        "userId": "9",
        "objectId": "sku-1",
        "bizId": None,  # "" reads as null, as in ODS
        "errorMsg": message,
        "createdAt": BASE,
        "etl_topic": "behaviour",
        "etl_partition": 0,
        "etl_offset": 0,
    }
    assert got == ([expected] if is_error else [])


def test_ten_warnings_in_a_minute_raise_an_alert_nine_do_not(spark):
    cases = ["WARNING", "warning", "WaRnInG: retrying", "svc=user Warning deprecated"]
    events = [("pay", 1000 * i, cases[i % 4]) for i in range(10)]  # 10 in minute 0
    events += [("search", 1000 * i, cases[i % 4]) for i in range(9)]  # 9 in minute 0 ...
    events += [("search", 60_000, "WARNING"), ("search", 30_000, "[ERROR] payment failed")]
    got = rows(X.aggregate_warning_alerts(behaviour(spark, events)), ["action"])
    assert got == [
        {
            "action": "pay",
            "warningCount": 10,
            "windowBeginTime": BASE,
            "windowEndTime": BASE + 60_000,
        }
    ]


def test_record_behind_the_watermark_lands_in_late_events(spark):
    # watermark at 60 s: a trade at 59.999 s (its minute ends at 60 s) is late, one at 60 s is not
    trades = X.parse_kafka_records(
        kafka_records(
            spark,
            "trade_orders",
            [
                {"tid": 1, "tno": "T1", "uno": 4, "pno": 1, "tnum": 1, "tuptime": BASE + 59_999},
                {"tid": 2, "tno": "T2", "uno": 4, "pno": 1, "tnum": 1, "tuptime": BASE + 60_000},
            ],
        ),
        "kda_trade_orders",
        keep_raw=True,
    )
    late = X.select_late_events(
        trades, "rt_trade_orders_1m", X.window_late_time(60), BASE + 60_000, batch_id=3
    )
    got = rows(late, ["eventId"])
    assert [
        {k: r[k] for k in ("query", "batchId", "eventId", "userId", "eventTime", "latenessMs")}
        for r in got
    ] == [
        {
            "query": "rt_trade_orders_1m",
            "batchId": 3,
            "eventId": "T1",
            "userId": "4",
            "eventTime": BASE + 59_999,
            "latenessMs": 1,
        }
    ]
    assert json.loads(got[0]["value"])["tno"] == "T1" and got[0]["watermarkMs"] == BASE + 60_000


def test_click_is_late_when_its_own_session_would_end_at_the_watermark(spark):
    # own session windows [9 s, 10 s) (ends at the watermark: late) and [9.001 s, 10.001 s)
    late = X.select_late_events(
        X.parse_kafka_records(
            kafka_records(
                spark,
                "clickstream",
                [
                    {"eventtimestamp": BASE + ms, "userid": 1, "globalseq": i, "event_type": "x"}
                    for i, ms in enumerate([9_000, 9_001], start=1)
                ],
            ),
            "msk_clickstream_lab",
            keep_raw=True,
        ),
        "clickstream_sessions",
        X.session_late_time(GAP_SEC),
        BASE + 10_000,
        batch_id=1,
    )
    assert [r["eventTime"] - BASE for r in late.collect()] == [9_000]
