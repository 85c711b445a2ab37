"""Plain-Python computations of the streaming outputs over the producers' ``--out`` files, and
readers of what the job wrote (Delta tables by their log with pyarrow, Kafka topics with
confluent-kafka): the independent side of the streaming end-to-end tests (no Spark here).

Which windows are final after a bounded run: the watermark is the largest event time of a
query's input minus the watermark delay; a window (session) is written when its end is at or
before the watermark. The expected rows apply the same rule.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

START = "2024-03-01T00:00:00"
START_MS = 1_709_251_200_000
WATERMARK_MS = 20_000
GAP_MS = 1_000


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def read_delta(path: Path) -> list[dict]:
    """The current rows of a Delta table, read from its log and Parquet files with pyarrow."""
    import pyarrow.parquet as pq

    live: dict[str, None] = {}
    for commit in sorted((path / "_delta_log").glob("*.json")):
        for line in commit.read_text().splitlines():
            action = json.loads(line)
            if "add" in action:
                live[action["add"]["path"]] = None
            elif "remove" in action:
                live.pop(action["remove"]["path"], None)
    rows: list[dict] = []
    for name in live:
        rows += pq.read_table(path / name).to_pylist()
    return rows


def window_of(ms: int, size_ms: int) -> tuple[int, int]:
    begin = ms - ms % size_ms
    return begin, begin + size_ms


# --- the expected results, computed independently --------------------------------------------


def lab_sessions(clicks: list[dict]) -> list[dict]:
    """Every session: a user's next event more than GAP_MS after the previous starts a new one."""
    by_user: dict[int, list[dict]] = defaultdict(list)
    for c in clicks:
        by_user[c["userid"]].append(c)
    sessions = []
    for user, events in by_user.items():
        events.sort(key=lambda c: (c["eventtimestamp"], c["globalseq"]))
        current: list[dict] = []
        for c in events:
            if current and c["eventtimestamp"] - current[-1]["eventtimestamp"] > GAP_MS:
                sessions.append((user, current))
                current = []
            current.append(c)
        sessions.append((user, current))
    out = []
    for user, events in sessions:
        count, at_checkout, depts = 0, 0, set()
        for c in events:
            if c["product_type"] not in ("", "N/A", None):
                count += 1
                depts.add(c["product_type"])
            if c["event_type"] == "order_checkout":
                at_checkout = count
        out.append(
            {
                "userId": str(user),
                "eventCount": count,
                "orderCheckoutEventCount": at_checkout,
                "hasOrderCheckout": any(c["event_type"] == "order_checkout" for c in events),
                "deptList": sorted(depts),
                "windowBeginTime": events[0]["eventtimestamp"],
                "windowEndTime": events[-1]["eventtimestamp"] + GAP_MS,
            }
        )
    return out


def expected_clicks(clicks: list[dict]) -> dict[str, list[dict]]:
    watermark = max(c["eventtimestamp"] for c in clicks) - WATERMARK_MS
    sessions = [s for s in lab_sessions(clicks) if s["windowEndTime"] <= watermark]
    checkout = [
        {k: v for k, v in s.items() if k != "hasOrderCheckout"}
        for s in sessions
        if s["hasOrderCheckout"]
    ]
    per_window: dict[tuple[int, int], list[dict]] = defaultdict(list)
    for s in sessions:  # the window holding the session's last instant (end - 1)
        per_window[window_of(s["windowEndTime"] - 1, 10_000)].append(s)
    userid_agg, departments = [], []
    for (begin, end), members in per_window.items():
        if end > watermark:
            continue
        buys = sum(s["hasOrderCheckout"] for s in members)
        userid_agg.append(
            {
                "windowBeginTime": begin,
                "windowEndTime": end,
                "userSessionCount": len(members),
                "userSessionCountWithOrderCheckout": buys,
                "percentSessionswithBuy": buys * 100 // len(members),
            }
        )
        touched = Counter(d for s in members for d in s["deptList"])
        departments += [
            {
                "departmentName": d,
                "departmentCount": n,
                "windowBeginTime": begin,
                "windowEndTime": end,
            }
            for d, n in touched.items()
        ]
    return {
        "rt_user_sessions_checkout": checkout,
        "rt_clickevents_userid_agg": userid_agg,
        "rt_departments_agg": departments,
    }


def expected_trades(trades: list[dict]) -> list[dict]:
    watermark = max(t["tuptime"] for t in trades) - WATERMARK_MS
    counts: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0])
    for t in trades:
        acc = counts[window_of(t["tuptime"], 60_000)]
        acc[0] += 1
        acc[1] += t["tnum"]
    return [
        {"windowBeginTime": b, "windowEndTime": e, "count_tno": n, "sum_tnum": q}
        for (b, e), (n, q) in counts.items()
        if e <= watermark
    ]


def expected_behaviour(events: list[dict], topic: str) -> dict[str, list[dict]]:
    watermark = max(e["createdAt"] for e in events) - WATERMARK_MS
    blank = lambda v: v if v != "" else None  # noqa: E731 (ODS reads "" as null)
    errors = [
        {
            "eventId": e["eventId"],
            "action": e["action"],
            "userId": e["userId"],
            "objectId": blank(e["objectId"]),
            "bizId": blank(e["bizId"]),
            "errorMsg": e["errorMsg"],
            "createdAt": e["createdAt"],
            "etl_topic": topic,
            "etl_partition": e["_partition"],
            "etl_offset": e["_offset"],
        }
        for e in events
        if "[ERROR]" in e["errorMsg"].upper() or "[PANIC]" in e["errorMsg"].upper()
    ]
    warnings = Counter(
        (e["action"], window_of(e["createdAt"], 60_000))
        for e in events
        if "WARNING" in e["errorMsg"].upper()
    )
    alerts = [
        {"action": a, "warningCount": n, "windowBeginTime": b, "windowEndTime": e}
        for (a, (b, e)), n in warnings.items()
        if n >= 10 and e <= watermark
    ]
    return {"rt_error_events": errors, "rt_warning_alerts": alerts}


def canonical(rows: list[dict]) -> list[str]:
    """Rows as sorted JSON texts (order-free comparison with readable diffs)."""
    return sorted(json.dumps(r, sort_keys=True) for r in rows)


def consume(bootstrap: str, topic: str, timeout: float = 120.0) -> list[dict]:
    """Every record of ``topic`` up to its high watermarks, in (partition, offset) order: dicts
    of ``partition``, ``offset``, ``key`` (str or None), ``kafka_ms`` (the record's timestamp,
    epoch ms) and ``value`` (the JSON value). Fails when the records are not all read within
    ``timeout`` seconds or a message carries an error."""
    import time

    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"test-{topic}", "enable.auto.commit": False}
    )
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
            for p in partitions
        }
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        out: list[dict] = []
        deadline = time.monotonic() + timeout
        while len(out) < sum(ends.values()) and time.monotonic() < deadline:
            for msg in consumer.consume(10_000, timeout=1.0):
                assert msg.error() is None, msg.error()
                key = msg.key()
                out.append(
                    {
                        "partition": msg.partition(),
                        "offset": msg.offset(),
                        "key": None if key is None else key.decode(),
                        "kafka_ms": msg.timestamp()[1],
                        "value": json.loads(msg.value()),
                    }
                )
        assert len(out) == sum(ends.values()), f"read {len(out)} of {sum(ends.values())} of {topic}"
        return sorted(out, key=lambda r: (r["partition"], r["offset"]))
    finally:
        consumer.close()


def read_archive(root: Path) -> dict[tuple[str, int, int], dict]:
    """The raw archive's records by ``(topic, partition, offset)``: an object's n-th line has the
    offset in its name (Kafka Connect S3 sink key) plus n. Raises on a record archived twice."""
    import gzip
    import re

    name = re.compile(
        r"topics/([^/]+)/year=\d{4}/month=\d\d/day=\d\d/hour=\d\d/\1\+(\d+)\+(\d{10})"
    )
    out: dict[tuple[str, int, int], dict] = {}
    for path in sorted(root.rglob("*.json.gz")):
        match = name.search(path.relative_to(root).as_posix())
        assert match, path
        topic, partition, start = match[1], int(match[2]), int(match[3])
        for i, line in enumerate(gzip.decompress(path.read_bytes()).decode().splitlines()):
            key = (topic, partition, start + i)
            assert key not in out, f"archived twice: {key}"
            out[key] = json.loads(line)
    return out


def produced_records(topic: str, records: list[dict]) -> dict[tuple[str, int, int], dict]:
    """``--out`` lines by ``(topic, partition, offset)``, as sent (without the two extras)."""
    return {
        (topic, r["_partition"], r["_offset"]): {
            k: v for k, v in r.items() if k not in ("_partition", "_offset")
        }
        for r in records
    }
