"""The batch core under real delivery and real scheduling.

Firehose and the Kafka Connect S3 sink write empty objects, write objects into folders whose hour
has passed, deliver records late and twice; schedulers run days out of order, rerun them and
backfill old ranges after newer days. Whatever happens, every raw record ends in exactly one of
ODS and the rejected table, and the DWS tables end where one full-range run over the same landing
ends. The expected side is always a different computation: a full run in a fresh lake, or counts
made by hand.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from spark_jobs import tables as T
from spark_jobs.common import delta_io
from spark_jobs.landing.layouts import firehose_key, kafka_key
from spark_jobs.pipeline import run_pipeline

pytestmark = [pytest.mark.spark, pytest.mark.e2e]

D0 = dt.date(2024, 3, 1)
DWS_TABLES = (T.DWS_ACTIVE_USERS, T.DWS_CONVERSION, T.DWS_CATEGORY, T.DWS_RETENTION)
#: tables compared with a full rebuild: DWS, and sessions (DWD events carry ingest times)
COMPARED = (T.DWD_SESSIONS, *DWS_TABLES)
#: every registry table: a rerun must leave all of them unchanged
ALL_TABLES = tuple(table.name for table in T.TABLES)


def _day(n: int) -> dt.date:
    return D0 + dt.timedelta(days=n)


def _at(day: int, seconds: int) -> dt.datetime:
    return dt.datetime.combine(D0, dt.time()) + dt.timedelta(days=day, seconds=seconds)


def _event(event_id: str, app: str, user: str | None, ts: dt.datetime, kind: str) -> dict:
    return {
        "event_id": event_id,
        "app_id": app,
        "event_ts": ts.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "event_type": kind,
        "user_id": user,
        "category": "c1" if kind != "page_view" else None,
        "price": 2.5 if kind == "purchase" else None,
        "quantity": 1 if kind == "purchase" else None,
    }


def _write(root: Path, key: str, body: bytes) -> Path:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return path


def _lines(events: list[dict]) -> bytes:
    return "".join(json.dumps(e) + "\n" for e in events).encode()


def _object(root: Path, arrival: dt.datetime, events: list[dict], stream: str = "web") -> Path:
    key = firehose_key(stream, arrival, str(uuid.uuid4()), gzip=True)
    return _write(root, key, gzip.compress(_lines(events)))


def table_rows(spark, settings, tables=COMPARED) -> dict[str, list[tuple]]:
    """Full contents of ``tables`` (names; every registry table: ``ALL_TABLES``), rows as
    sorted tuples (maps as sorted item lists)."""

    def plain(row) -> tuple:
        return tuple(sorted(v.items()) if isinstance(v, dict) else v for v in row)

    return {
        t: sorted((plain(r) for r in delta_io.read_table(spark, settings, t).collect()), key=repr)
        for t in tables
    }


def full_rebuild(spark, settings, landing: str, start: dt.date, end: dt.date, name: str):
    """The tables one range run over the whole landing gives, in a fresh lake."""
    fresh = replace(settings, lakehouse_root=f"{settings.lakehouse_root}-{name}")
    run_pipeline(spark, fresh, landing, start, end)
    return table_rows(spark, fresh)


def _reconciled(spark, settings) -> tuple[int, int, int]:
    """``(raw records in the manifest, ODS rows, rejected rows)``."""
    manifest = delta_io.read_table(spark, settings, T.INGEST_MANIFEST)
    raw = manifest.agg({"raw_records": "sum"}).first()[0] or 0
    ods = delta_io.read_table(spark, settings, T.ODS_EVENTS).count()
    rejected = delta_io.read_table(spark, settings, T.ODS_REJECTED).count()
    return raw, ods, rejected


# ---------------------------------------------------------------------------------------------
# 1. empty objects


def test_empty_objects_are_recorded_with_zero_records_and_the_run_goes_on(
    spark, settings, tmp_path
):
    landing = tmp_path / "landing"
    hour = _at(0, 10 * 3600)
    good = _object(landing, hour, [_event("e1", "shop", "u1", hour, "page_view")])
    empty = _write(landing, firehose_key("web", hour, str(uuid.uuid4()), gzip=False), b"")
    empty_gzip = _write(landing, firehose_key("web", hour, str(uuid.uuid4())), gzip.compress(b""))
    blank = _write(landing, firehose_key("web", hour, str(uuid.uuid4()), False), b"\n \n\n")
    kafka_empty = _write(landing, kafka_key("web", 0, 0, hour), gzip.compress(b"\n"))

    run_pipeline(spark, settings, str(landing), _day(0), _day(0))

    manifest = {
        Path(r.etl_source_object.removeprefix("file:")).name: r
        for r in delta_io.read_table(spark, settings, T.INGEST_MANIFEST).collect()
    }
    assert set(manifest) == {p.name for p in (good, empty, empty_gzip, blank, kafka_empty)}
    for path in (empty, empty_gzip, blank, kafka_empty):
        row = manifest[path.name]
        assert (row.raw_records, row.ods_rows, row.rejected_rows, row.event_dates) == (0, 0, 0, [])
        assert row.object_size_bytes == path.stat().st_size
    assert manifest[good.name].raw_records == 1
    assert _reconciled(spark, settings) == (1, 1, 0)
    [active] = delta_io.read_table(spark, settings, T.DWS_ACTIVE_USERS).collect()
    assert (active.app_id, active.dt, active.events, active.dau) == ("shop", _day(0), 1, 1)


# ---------------------------------------------------------------------------------------------
# 2. objects written late into a processed folder


def test_an_object_written_into_a_processed_folder_is_ingested_by_the_next_run(
    spark, settings, tmp_path
):
    landing = tmp_path / "landing"
    first = _at(0, 9 * 3600)
    _object(landing, first, [_event("a1", "shop", "u1", first, "product_view")])
    _object(landing, _at(1, 9 * 3600), [_event("b1", "shop", "u1", _at(1, 9 * 3600), "page_view")])
    run_pipeline(spark, settings, str(landing), _day(0), _day(0))

    # Firehose retried the S3 put of a buffer that started on day 0 at 23:55: written now
    late = _at(0, 23 * 3600 + 55 * 60)
    _object(
        landing,
        late,
        [
            _event("a2", "shop", "u2", late, "product_view"),
            _event("a3", "shop", "u2", late + dt.timedelta(minutes=10), "purchase"),
        ],
    )
    result = run_pipeline(spark, settings, str(landing), _day(1), _day(1))

    assert result.ingest.older_folder_objects == 1
    assert result.ingest.objects == 2  # day 1's own object and the late one
    assert _reconciled(spark, settings) == (4, 4, 0)
    expected = full_rebuild(spark, settings, str(landing), _day(0), _day(1), "full")
    assert table_rows(spark, settings) == expected
    active = {r.dt: r for r in delta_io.read_table(spark, settings, T.DWS_ACTIVE_USERS).collect()}
    # by hand: day 0 u1 + u2 (late object: both new); day 1 u1 and u2 (a3 at 00:05), none new
    assert [(active[d].dau, active[d].new_users) for d in (_day(0), _day(1))] == [(2, 2), (2, 0)]


# ---------------------------------------------------------------------------------------------
# 4. a run touches only its landing's apps, and every day of their range


def test_a_run_rewrites_only_its_landings_apps_and_every_day_of_their_range(
    spark, settings, tmp_path
):
    shop, blog = tmp_path / "shop", tmp_path / "blog"
    for day in (0, 1, 3):  # no object at all on day 2
        t = _at(day, 12 * 3600)
        _object(shop, t, [_event(f"s{day}", "shop", f"u{day}", t, "purchase")])
    for day in (5, 6):
        t = _at(day, 12 * 3600)
        _object(blog, t, [_event(f"b{day}", "blog", "reader", t, "page_view")], stream="blog")

    for day in range(4):  # the daily schedule of the shop, day 2 included
        run_pipeline(spark, settings, str(shop), _day(day), _day(day))
    shop_before = table_rows(spark, settings, DWS_TABLES)
    run_pipeline(spark, settings, str(blog), _day(5), _day(6))

    after = table_rows(spark, settings, DWS_TABLES)
    for table in DWS_TABLES:
        shop_rows = [r for r in after[table] if r[0] == "shop"]
        assert shop_rows == shop_before[table], table  # the blog run left the shop alone
    days = {
        table: {(r.app_id, r.dt) for r in delta_io.read_table(spark, settings, table).collect()}
        for table in (T.DWS_ACTIVE_USERS, T.DWS_CONVERSION)
    }
    expected = {("shop", _day(d)) for d in range(4)} | {("blog", _day(d)) for d in (5, 6)}
    assert days[T.DWS_ACTIVE_USERS] == days[T.DWS_CONVERSION] == expected
    active = {
        (r.app_id, r.dt): r
        for r in delta_io.read_table(spark, settings, T.DWS_ACTIVE_USERS).collect()
    }
    # by hand: day 2 has no events (zero row), WAU of day 3 = u0, u1, u3
    assert (active["shop", _day(2)].events, active["shop", _day(2)].dau) == (0, 0)
    assert active["shop", _day(3)].wau == 3


# ---------------------------------------------------------------------------------------------
# 7. ODS write-audit-publish

BATCH = (T.ODS_EVENTS, T.ODS_REJECTED, T.INGEST_MANIFEST)


def _batch_landing(root: Path) -> Path:
    """Two objects of day 0: three readable events, one bad line, one event from 2031."""
    t = _at(0, 8 * 3600)
    good = [_event("k1", "shop", "u1", t, "page_view"), _event("k2", "shop", "u1", t, "purchase")]
    _object(root, t, good)
    later = _at(0, 15 * 3600)
    body = _lines([_event("k3", "shop", "u2", later, "add_to_cart")]) + b"{not json\n"
    body += _lines([_event("k4", "shop", "u2", dt.datetime(2031, 1, 1), "page_view")])
    _write(root, firehose_key("web", later, str(uuid.uuid4())), gzip.compress(body))
    return root


def batch_rows(spark, settings, staged: bool = False) -> dict[str, list[tuple]]:
    """The ingest batch tables' rows without ``etl_ingest_ts`` (a wall-clock stamp)."""
    out = {}
    for table in BATCH:
        df = delta_io.read_table(spark, settings, table, staged).drop("etl_ingest_ts")
        out[table] = sorted((tuple(r) for r in df.collect()), key=repr)
    return out


def test_a_staged_ingest_batch_is_published_only_by_its_publish_and_only_once(
    spark, settings, tmp_path
):
    from spark_jobs.ods.ods_clickstream_events_di import ingest, publish_ingest

    landing = str(_batch_landing(tmp_path / "landing"))
    result = ingest(spark, settings, landing, _day(0), _day(0), stage=True)

    # by hand: 5 raw records = 3 ODS rows + 2 rejected (bad JSON, the 2031 clock)
    assert (result.raw_records, result.ods_rows, result.rejected_rows) == (5, 3, 2)
    live = batch_rows(spark, settings)
    assert all(rows == [] for rows in live.values()), "staging touched the published tables"
    staged = batch_rows(spark, settings, staged=True)
    assert [len(staged[t]) for t in BATCH] == [3, 2, 2]

    assert publish_ingest(spark, settings) == 2
    assert batch_rows(spark, settings) == staged
    assert publish_ingest(spark, settings) == 2  # again: nothing is inserted twice
    assert batch_rows(spark, settings) == staged

    # the next run finds nothing new and stages an empty batch
    again = ingest(spark, settings, landing, _day(0), _day(0), stage=True)
    assert (again.objects, again.skipped_objects) == (0, 2)
    assert all(rows == [] for rows in batch_rows(spark, settings, staged=True).values())


def test_an_ingest_killed_between_any_two_steps_ends_like_an_uninterrupted_one(
    spark, settings, tmp_path
):
    """The steps of the DAG's ingest: stage the batch, publish ODS, publish rejected, publish the
    manifest. The run "dies" after each of the first three (the later steps never run); the next
    run (staged and published again) must end in the tables of one uninterrupted run, here the
    direct ``lakehouse run`` ingest (so the two paths also agree)."""
    from spark_jobs.ods.ods_clickstream_events_di import (
        ingest,
        publish_batch_table,
        publish_ingest,
    )

    landing = str(_batch_landing(tmp_path / "landing"))
    clean = replace(settings, lakehouse_root=f"{settings.lakehouse_root}-clean")
    ingest(spark, clean, landing, _day(0), _day(0))
    expected = batch_rows(spark, clean)

    for done in range(3):  # steps completed before the kill: stage (+ ODS) (+ rejected)
        lake = replace(settings, lakehouse_root=f"{settings.lakehouse_root}-killed-{done}")
        ingest(spark, lake, landing, _day(0), _day(0), stage=True)
        for table in BATCH[:done]:
            publish_batch_table(spark, lake, table)
        assert delta_io.read_table(spark, lake, T.INGEST_MANIFEST).count() == 0

        rerun = ingest(spark, lake, landing, _day(0), _day(0), stage=True)
        assert publish_ingest(spark, lake) == 2

        assert rerun.objects == 2, "the manifest did not know the objects: both ingested again"
        assert batch_rows(spark, lake) == expected, f"killed after {done + 1} step(s)"
        assert publish_ingest(spark, lake) == 2  # a retried publish changes nothing either
        assert batch_rows(spark, lake) == expected


# ---------------------------------------------------------------------------------------------
# 3. any order of runs ends where one full-range run ends (property test)

GAPS = (60, 1799, 1800, 1801, 2400)  # around the 30 min session gap (seconds)
KINDS = ("page_view", "product_view", "add_to_cart", "purchase")


@st.composite
def histories(draw):
    """Events of 2-4 users over 3-5 days: gaps around 30 min, sessions across midnight, a run of
    activity longer than the 24 h cap; each with its delivery (late, redelivered, written late)."""
    n_days = draw(st.integers(3, 5))
    events = []
    for user in range(draw(st.integers(2, 4))):
        for visit in range(draw(st.integers(1, 3))):
            day = draw(st.integers(0, n_days - 1))
            start = draw(st.sampled_from((600, 36_000, 85_800)))  # 00:10, 10:00, 23:50
            t = _at(day, start)
            for n in range(draw(st.integers(1, 4))):
                if n:
                    t += dt.timedelta(seconds=draw(st.sampled_from(GAPS)))
                events.append((f"u{user}-{visit}-{n}", f"u{user}", t, draw(st.sampled_from(KINDS))))
    if draw(st.booleans()):  # a bot: one event every 20 min for 25 h, from day 0 20:00
        t0 = _at(0, 72_000)
        events += [
            (f"bot-{n}", "bot", t0 + dt.timedelta(minutes=20 * n), "page_view") for n in range(76)
        ]
    last = _at(n_days, 0)
    events = [e for e in events if e[2] < last]
    deliveries = []
    for event_id, user, ts, kind in events:
        arrival = ts
        delay = draw(st.sampled_from((0, 0, 0, 1, 2)))  # days late
        if delay and (ts.date() - D0).days + delay < n_days:
            arrival = _at((ts.date() - D0).days + delay, 3600)
        deliveries.append((arrival, _event(event_id, "shop", user, ts, kind)))
        if draw(st.integers(0, 9)) == 0:  # redelivered an hour later, same payload
            deliveries.append(
                (arrival + dt.timedelta(hours=1), _event(event_id, "shop", user, ts, kind))
            )
    objects: dict[dt.datetime, list[dict]] = {}
    for arrival, event in deliveries:
        hour = arrival.replace(minute=0, second=0, microsecond=0)
        objects.setdefault(hour, []).append(event)
    if draw(st.booleans()):
        objects.setdefault(_at(draw(st.integers(0, n_days - 1)), 7200), [])  # an empty object
    hours = sorted(objects)
    late_written = {h for h in hours if draw(st.integers(0, 3)) == 0}
    return n_days, [(h, objects[h], h in late_written) for h in hours]


@st.composite
def schedules(draw, n_days: int):
    """Runs as ``(start, end)`` day numbers: every day once in a random order, some days rerun,
    and sometimes a range run (a backfill) of a few days."""
    order = draw(st.permutations(range(n_days)))
    runs = [(d, d) for d in order]
    for _ in range(draw(st.integers(0, 2))):
        runs.insert(draw(st.integers(0, len(runs))), runs[draw(st.integers(0, len(runs) - 1))])
    if draw(st.booleans()):
        a = draw(st.integers(0, n_days - 2))
        runs.insert(draw(st.integers(0, len(runs))), (a, draw(st.integers(a + 1, n_days - 1))))
    return runs


def _covers(run: tuple[int, int], folder_day: int, lookback: int) -> bool:
    return run[0] - lookback <= folder_day <= run[1]


@hyp_settings(
    max_examples=2,
    deadline=None,
    derandomize=True,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_schedule_of_runs_ends_where_one_full_range_run_ends(spark, settings, tmp_path, data):
    n_days, objects = data.draw(histories())
    runs = data.draw(schedules(n_days))
    case = tmp_path / uuid.uuid4().hex[:8]
    lake = replace(settings, lakehouse_root=str(case / "lake"))
    staged, landing = case / "staged", case / "landing"
    # an object written late appears after the first run that lists its folder, before a later
    # run that lists it too (else the delivery service wrote it in time)
    appears: list[tuple[int, Path]] = []
    for hour, events, late in objects:
        folder = (hour.date() - D0).days
        covering = [i for i, r in enumerate(runs) if _covers(r, folder, lake.arrival_lookback_days)]
        step = covering[1] if late and len(covering) > 1 else 0
        key = firehose_key("web", hour, str(uuid.UUID(int=len(appears))), gzip=True)
        appears.append((step, _write(staged, key, gzip.compress(_lines(events)))))

    for step, (first, last) in enumerate(runs):
        for at, path in appears:
            if at == step:
                target = landing / path.relative_to(staged)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, target)
        run_pipeline(spark, lake, str(landing), _day(first), _day(last))

    raw, ods, rejected = _reconciled(spark, lake)
    assert raw == ods + rejected == sum(len(events) for _, events, _ in objects)
    expected = full_rebuild(spark, lake, str(landing), _day(0), _day(n_days - 1), "full")
    assert table_rows(spark, lake) == expected, f"schedule {runs}"
