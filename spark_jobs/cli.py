"""The ``lakehouse`` command line.

Commands::

    lakehouse setup                       fetch Delta jars into .cache/, write .cache/spark-conf/;
                                          --with-kafka: also the Kafka broker + Spark connector;
                                          --with-spark-kafka: the connector only
    lakehouse kafka start|stop|status     local single-node Kafka broker (KRaft) in the background
    lakehouse produce --topic T --schema S --events N   generated events -> Kafka (+ --out JSONL)
    lakehouse stream [--available-now]    Structured Streaming: Kafka topics -> <root>/rt/ Delta
                                          tables + the labs' result topics
    lakehouse stream-health               exit 1 when a streaming query has not committed lately
    lakehouse replay DATASET --to URI     real dataset -> raw Firehose/Kafka landing objects;
                                          --to kafka://HOST:PORT/TOPIC: through Kafka, keyed
                                          by user, in event-time order [--speedup X]
    lakehouse ingest --landing URI --ds D raw objects that arrived on D -> ODS (+ rejected);
                                          --stage: staging twins only
    lakehouse build --table T --ds D      rebuild one table's partitions for a run range
    lakehouse publish --table T --ds D    publish a staged build (write-audit-publish; T=ods:
                                          the staged ingest batch)
    lakehouse run --landing URI --ds D    ingest + rebuild everything affected (late data too)
    lakehouse validate --table T --ds D   Great Expectations suite of a table
    lakehouse report                      HTML report under <root>/reports/
    lakehouse demo                        replay the real datasets, run them, summary + report
    lakehouse sql --engine E --view V     run a BI view / query file / inline query on Athena,
                  [--param k=v ...]       Redshift or their local stand-ins; text table or --csv
    lakehouse serve start|stop|status     local Athena stand-in: Spark Thrift Server (JDBC hive2)
    lakehouse warehouse start|stop|status local Redshift stand-in: PostgreSQL with the DWS marts
    lakehouse bi-publish --ds D           DWS days -> Parquet exports, warehouse marts, catalog

Dates are UTC; ``--ds D`` or ``--start D --end D`` (inclusive). Exit code 0 on success, 1 on a
failed job or check, 2 on bad arguments; ``kafka status`` exits 3 when the broker is not running.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import logging
import sys
from decimal import Decimal
from pathlib import Path

from spark_jobs import tables as T
from spark_jobs.common.jobframe import add_date_arguments, configure_logging, resolve_dates
from spark_jobs.landing.layouts import FIREHOSE, KAFKA, LAYOUTS
from spark_jobs.settings import PROJECT_DIR, load_settings

log = logging.getLogger("lakehouse")

#: what ``lakehouse demo`` replays: dataset -> landing layout (both layouts; OTTO gives weeks of
#: behaviour data: rolling WAU/MAU and a funnel over four weeks)
DEMO_DATASETS = {"online_retail": FIREHOSE, "rees46": KAFKA, "otto": KAFKA}


def _spark(settings, name: str):
    from spark_jobs.common.spark import get_spark

    return get_spark(f"lakehouse:{name}", settings)


def cmd_setup(args: argparse.Namespace) -> int:
    """Fetch the Delta (and with --with-s3 hadoop-aws) jars; write .cache/spark-conf. With
    --with-kafka also resolve the Kafka broker and Spark's Kafka connector jars (Maven); with
    --with-spark-kafka only the connector (the streaming job beside a broker of its own, e.g.
    the Docker image)."""
    from spark_jobs.common.spark import CACHE_DIR, fetch_jars, write_spark_defaults

    settings = load_settings()
    jars = fetch_jars(settings, with_s3=args.with_s3)
    log.info("SETUP %d jars cached under %s", len(jars), CACHE_DIR)
    if args.with_kafka or args.with_spark_kafka:
        from spark_jobs.common.spark import spark_kafka_jars
        from spark_jobs.streaming.broker import broker_jars

        if args.with_kafka:
            log.info("SETUP Kafka broker: %d jars cached", len(broker_jars(resolve=True)))
        connector = spark_kafka_jars(resolve=True)
        log.info("SETUP Spark Kafka connector: %d jars beyond pyspark's own", len(connector))
    conf = write_spark_defaults(CACHE_DIR / "spark-conf", settings)
    log.info("SETUP spark-submit defaults: SPARK_CONF_DIR=%s", conf.parent)
    return 0


def cmd_kafka(args: argparse.Namespace) -> int:
    """Start, stop or show the local Kafka broker; ``status`` returns 3 when it is not running."""
    from spark_jobs.streaming.broker import broker_status, start_broker, stop_broker

    settings = load_settings()
    if args.action == "start":
        start_broker(settings, timeout=args.timeout)
    elif args.action == "stop":
        stop_broker(settings, grace=args.grace)
    status = broker_status(settings)
    print(status.describe())
    return 3 if args.action == "status" and not status.running else 0


def cmd_produce(args: argparse.Namespace) -> int:
    """Generate events of a schema into a Kafka topic (see spark_jobs.streaming.producers)."""
    from spark_jobs.streaming.producers import produce

    settings = load_settings()
    summary = produce(
        topic=args.topic,
        schema=args.schema,
        events=args.events,
        rate=args.rate,
        users=args.users,
        seed=args.seed,
        start_time_ms=args.start_time,
        out=args.out,
        bootstrap=args.bootstrap or settings.kafka_bootstrap,
        partitions=args.partitions,
    )
    print(summary.describe())
    return 0


def cmd_stream(args: argparse.Namespace) -> int:
    """Run the streaming queries (see spark_jobs.streaming.job); bounded with --available-now."""
    from dataclasses import replace

    from spark_jobs.streaming.job import (
        StreamParams,
        check_stream_topics,
        run_stream,
        stream_session,
    )

    settings = load_settings()
    check_stream_topics(settings.stream_topics)  # before Spark starts
    if args.bootstrap:
        settings = replace(settings, kafka_bootstrap=args.bootstrap)
    params = StreamParams(
        watermark_sec=settings.stream_watermark_sec
        if args.watermark_sec is None
        else args.watermark_sec,
        session_gap_sec=settings.stream_session_gap_sec
        if args.session_gap_sec is None
        else args.session_gap_sec,
    )
    only = [q.strip() for q in args.queries.split(",") if q.strip()] if args.queries else None
    run_stream(stream_session(settings), settings, params, args.available_now, only)
    return 0


def cmd_stream_health(args: argparse.Namespace) -> int:
    """Exit 1 (and print why) when a streaming query's last commit is too old or missing."""
    from spark_jobs.streaming.health import STREAM_QUERIES, stale_queries

    settings = load_settings()
    max_age = settings.stream_max_commit_age_sec if args.max_age_sec is None else args.max_age_sec
    queries = tuple(q.strip() for q in args.queries.split(",")) if args.queries else STREAM_QUERIES
    problems = stale_queries(settings, max_age, queries)
    for line in problems:
        print(f"STALE {line}")
    if not problems:
        print(f"{len(queries)} streaming queries committed within {max_age:.0f} s")
    return 1 if problems else 0


def cmd_replay(args: argparse.Namespace) -> int:
    """Replay a dataset into a landing URI (prints records/objects/date spans) or, for a
    ``kafka://HOST:PORT/TOPIC`` target, through Kafka (spark_jobs.streaming.replay)."""
    from spark_jobs.landing.replay import replay
    from spark_jobs.streaming.replay import is_kafka_uri, parse_kafka_uri, replay_to_kafka

    start, end = (args.start, args.end) if args.start or args.end else (None, None)
    if is_kafka_uri(args.to):
        if args.layout or args.plain:
            print("lakehouse replay: --layout/--plain are for landing URIs", file=sys.stderr)
            return 2
        try:
            parse_kafka_uri(args.to)
        except ValueError as error:
            print(f"lakehouse replay: {error}", file=sys.stderr)
            return 2
        kafka = replay_to_kafka(
            args.dataset,
            args.to,
            start,
            end,
            args.data_dir,
            speedup=args.speedup,
            partitions=args.partitions or 3,
        )
        print(kafka.describe())
        return 0
    if args.speedup is not None or args.partitions is not None:
        print("lakehouse replay: --speedup/--partitions are for kafka:// targets", file=sys.stderr)
        return 2
    summary = replay(
        args.dataset,
        args.to,
        args.layout or FIREHOSE,
        start,
        end,
        args.data_dir,
        compress=not args.plain,
    )
    print(
        f"{summary.dataset}: {summary.records} records in {summary.objects} {summary.layout} "
        f"objects; event dates {summary.first_event_date}..{summary.last_event_date}, "
        f"arrival dates {summary.first_arrival_date}..{summary.last_arrival_date}"
    )
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    """Ingest the objects that arrived on the dates into ODS (+ rejected, manifest)."""
    from spark_jobs.ods.ods_clickstream_events_di import ingest

    settings = load_settings()
    start, end = resolve_dates(args)
    ingest(_spark(settings, "ingest"), settings, args.landing, start, end, stage=args.stage)
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    """Rebuild one DWD/DWS table for its planned window of the run range."""
    from spark_jobs.common.jobframe import run_build
    from spark_jobs.common.plan import plan_rebuild
    from spark_jobs.pipeline import build_function

    settings = load_settings()
    start, end = resolve_dates(args)
    spark = _spark(settings, args.table)
    plan = plan_rebuild(spark, settings, start, end, args.landing)
    first, last = plan.window(args.table)
    build = build_function(args.table)
    run_build(args.table, build, spark, settings, first, last, args.stage, plan.apps)
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    """Publish a table's staged partitions (its planned window) to the live table; ``ods``:
    the staged ingest batch (ODS, rejected, manifest), unchecked."""
    from spark_jobs.common.delta_io import publish_partitions
    from spark_jobs.common.plan import plan_rebuild

    settings = load_settings()
    if args.table == "ods":
        from spark_jobs.ods.ods_clickstream_events_di import publish_ingest

        publish_ingest(_spark(settings, "publish ods"), settings)
        return 0
    start, end = resolve_dates(args)
    spark = _spark(settings, f"publish {args.table}")
    plan = plan_rebuild(spark, settings, start, end, args.landing)
    first, last = plan.window(args.table)
    publish_partitions(spark, settings, args.table, first, last, apps=plan.apps)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Ingest new objects and rebuild every affected partition downstream."""
    from spark_jobs.pipeline import run_pipeline

    settings = load_settings()
    start, end = resolve_dates(args)
    run_pipeline(_spark(settings, "run"), settings, args.landing, start, end)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Run a table's Great Expectations suite (see spark_jobs.quality.validate)."""
    from spark_jobs.quality.validate import run_validate_command

    return run_validate_command(args)


def cmd_report(args: argparse.Namespace) -> int:
    """Write the HTML report from the DWS tables; prints its path."""
    from spark_jobs.report import write_report

    settings = load_settings()
    path = write_report(_spark(settings, "report"), settings)
    print(f"report: {path}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Replay the demo datasets, run each one's full range, print a summary, write the report."""
    from spark_jobs.landing.replay import replay
    from spark_jobs.pipeline import run_pipeline
    from spark_jobs.report import print_summary, write_report

    settings = load_settings()
    landing = Path(args.landing)
    spark = None
    for dataset, layout in DEMO_DATASETS.items():
        summary = replay(dataset, str(landing / dataset), layout, data_dir=args.data_dir)
        spark = spark or _spark(settings, "demo")
        run_pipeline(
            spark,
            settings,
            str(landing / dataset),
            summary.first_event_date,
            summary.last_arrival_date,
        )
    print_summary(spark, settings)
    path = write_report(spark, settings)
    print(f"\nReport: {path}\nOpen it in a browser (file://{path}).")
    return 0


def parse_sql_params(items: list[str]) -> dict[str, str]:
    """``["app_id=web", ":top_n=5"]`` -> ``{"app_id": "web", "top_n": "5"}`` (values stay text;
    the queries CAST them). A leading ``:`` on a name is dropped; a value may contain ``=``.

    Raises:
        ValueError: an item without ``=``, a name that is not an identifier, a name given twice.
    """
    params: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip().removeprefix(":")
        if not sep or not name.isidentifier():
            raise ValueError(f"--param expects NAME=VALUE, got {item!r}")
        if name in params:
            raise ValueError(f"--param {name} given twice")
        params[name] = value
    return params


def _run_prepared(engine: str, prepared, settings):
    """Send a prepared statement to an engine; ``(column_names, rows)``."""
    if engine == "athena":
        from spark_jobs.serving.aws import run_athena

        return run_athena(prepared.sql, prepared.parameters, settings)
    if engine == "redshift":
        from spark_jobs.serving.aws import run_redshift

        return run_redshift(prepared.sql, prepared.parameters, settings)
    from spark_jobs.serving.endpoints import connect

    connection = connect(engine, settings)
    try:
        cursor = connection.cursor()
        cursor.execute(prepared.sql)
        names = [column[0] for column in cursor.description or ()]
        return names, [tuple(row) for row in cursor.fetchall()] if names else []
    finally:
        connection.close()


def format_table(names: list[str], rows: list[tuple]) -> str:
    """An aligned text table: header, dashes, one line per row (numbers right-aligned, None as
    ``NULL``), then the row count."""

    def text(value) -> str:
        return "NULL" if value is None else str(value)

    cells = [[text(v) for v in row] for row in rows]
    widths = [max([len(n), *(len(r[i]) for r in cells)]) for i, n in enumerate(names)]
    numeric = [
        all(isinstance(row[i], int | float | Decimal) for row in rows if row[i] is not None)
        and any(row[i] is not None for row in rows)
        for i in range(len(names))
    ]

    def line(values: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    out = [line(list(names)), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    out.append(f"({len(rows)} row{'' if len(rows) == 1 else 's'})")
    return "\n".join(out)


def cmd_sql(args: argparse.Namespace) -> int:
    """Run a view, query file or inline query on an engine; print a table or CSV.

    Exit 2 for what is wrong before anything is sent (unknown view or file, SQL that does not
    parse, missing or unknown parameters, unusable settings), 1 for a failed or timed-out query.
    """
    import sqlglot

    from spark_jobs.serving import queries as Q
    from spark_jobs.serving.aws import QueryFailedError, QueryTimeoutError

    settings = load_settings()
    engine = Q.ENGINES[args.engine]
    try:
        params = parse_sql_params(args.param)
        if args.view:
            statement = Q.load_view(args.view, engine.source_dialect)
        elif args.file:
            statement = Q.load_query_file(args.file)
        else:
            statement = Q.parse_statement(args.query, engine.source_dialect)
        prepared = Q.prepare(args.engine, statement, params)
        names, rows = _run_prepared(args.engine, prepared, settings)
    except (QueryFailedError, QueryTimeoutError) as error:
        print(f"lakehouse sql: {error}", file=sys.stderr)
        return 1
    except (ValueError, sqlglot.errors.SqlglotError) as error:  # ServingConfigError included
        print(f"lakehouse sql: {error}", file=sys.stderr)
        return 2
    if args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(names)
        writer.writerows(["" if v is None else v for v in row] for row in rows)
    else:
        print(format_table(names, rows))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Start, stop or show the Spark Thrift Server (the local Athena stand-in)."""
    from spark_jobs.serving import thrift_server

    settings = load_settings()
    return _endpoint_command(args.action, thrift_server, settings, "Spark Thrift Server", (
        f"JDBC {thrift_server.jdbc_url(settings)} (Hive/Spark driver; any user, no password); "
        f"beeline -u {thrift_server.jdbc_url(settings)}"
    ))  # fmt: skip


def cmd_warehouse(args: argparse.Namespace) -> int:
    """Start, stop or show the local PostgreSQL warehouse (the local Redshift stand-in)."""
    from spark_jobs.serving import warehouse

    settings = load_settings()
    return _endpoint_command(args.action, warehouse, settings, "PostgreSQL warehouse", (
        f"JDBC {warehouse.jdbc_url(settings)} (user {warehouse.USER}, no password); "
        f"psql -h 127.0.0.1 -p {settings.pg_port} -U {warehouse.USER} {settings.bi_database}"
    ))  # fmt: skip


def _endpoint_command(action: str, server, settings, label: str, how: str) -> int:
    if action == "start":
        pid = server.start(settings)
        print(f"{label} running (pid {pid}): {how}")
    elif action == "stop":
        print(f"{label} {'stopped' if server.stop(settings) else 'was not running'}")
    else:
        pid = server.status(settings)
        print(f"{label} running (pid {pid}): {how}" if pid else f"{label} not running")
        return 0 if pid else 3
    return 0


def cmd_bi_publish(args: argparse.Namespace) -> int:
    """Exports, warehouse load and catalog refresh of the DWS days (spark_jobs.serving)."""
    from spark_jobs.serving.bi_publish import publish_days

    settings = load_settings()
    start, end = resolve_dates(args)
    spark = _spark(settings, "bi-publish")
    if args.target == "aws":
        from spark_jobs.serving.bi_publish import publish_days_aws

        publish_days_aws(spark, settings, start, end)
    else:
        publish_days(spark, settings, start, end)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of the ``lakehouse`` command."""
    parser = argparse.ArgumentParser(prog="lakehouse", description=__doc__.splitlines()[0])
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("setup", help="fetch jars into the project cache; write spark defaults")
    p.add_argument("--with-s3", action="store_true", help="also fetch hadoop-aws for s3a://")
    p.add_argument(
        "--with-kafka",
        action="store_true",
        help="also resolve the Kafka broker and Spark's Kafka connector (needs mvn once)",
    )
    p.add_argument(
        "--with-spark-kafka",
        action="store_true",
        help="also resolve only Spark's Kafka connector, for `lakehouse stream` (needs mvn once)",
    )
    p.set_defaults(func=cmd_setup)

    p = sub.add_parser("kafka", help="local single-node Kafka broker (KRaft)")
    p.add_argument("action", choices=["start", "stop", "status"])
    p.add_argument("--timeout", type=float, default=120.0, help="start: seconds to wait")
    p.add_argument("--grace", type=float, default=30.0, help="stop: seconds before SIGKILL")
    p.set_defaults(func=cmd_kafka)

    from spark_jobs.streaming.producers import SCHEMAS, parse_start_time

    p = sub.add_parser("produce", help="generate events of a schema into a Kafka topic")
    p.add_argument("--topic", required=True)
    p.add_argument("--schema", required=True, choices=sorted(SCHEMAS))
    p.add_argument("--events", type=int, required=True, help="number of records to send")
    p.add_argument("--rate", type=float, default=100.0, help="events per second (> 0)")
    p.add_argument("--users", type=int, default=100, help="distinct users")
    p.add_argument("--seed", type=int, default=0, help="same seed, same records")
    p.add_argument(
        "--start-time",
        type=parse_start_time,
        help="event time of the first record (ISO-8601, UTC without a zone, or epoch ms); "
        "then +1/rate per record, sent as fast as the broker takes them",
    )
    p.add_argument("--out", help="also write every delivered record as a JSON line here")
    p.add_argument("--bootstrap", help="HOST:PORT (default LAKEHOUSE_KAFKA_BOOTSTRAP)")
    p.add_argument("--partitions", type=int, default=3, help="when the topic is created")
    p.set_defaults(func=cmd_produce)

    p = sub.add_parser("stream", help="the streaming job: Kafka topics -> rt_* Delta + topics")
    p.add_argument(
        "--available-now",
        action="store_true",
        help="process what the topics hold now, then stop (Trigger.AvailableNow)",
    )
    p.add_argument(
        "--watermark-sec", type=float, help="event-time watermark (LAKEHOUSE_STREAM_WATERMARK_SEC)"
    )
    p.add_argument(
        "--session-gap-sec",
        type=float,
        help="real-time session gap (LAKEHOUSE_STREAM_SESSION_GAP_SEC, the lab's 1 s)",
    )
    p.add_argument(
        "--queries",
        help="comma-separated query names, or names of the tables they write; default all",
    )
    p.add_argument("--bootstrap", help="HOST:PORT (default LAKEHOUSE_KAFKA_BOOTSTRAP)")
    p.set_defaults(func=cmd_stream)

    p = sub.add_parser("stream-health", help="fail when a streaming query stopped committing")
    p.add_argument(
        "--max-age-sec", type=float, help="default LAKEHOUSE_STREAM_MAX_COMMIT_AGE_SEC (300)"
    )
    p.add_argument("--queries", help="comma-separated query names; default all")
    p.set_defaults(func=cmd_stream_health)

    p = sub.add_parser(
        "replay", help="write a real dataset as raw landing objects, or send it through Kafka"
    )
    p.add_argument("dataset", choices=["online_retail", "rees46", "otto"])
    p.add_argument(
        "--to",
        required=True,
        help="landing URI (local folder or s3://bucket/prefix), or kafka://HOST:PORT/TOPIC",
    )
    p.add_argument("--layout", choices=LAYOUTS, help=f"landing layout (default {FIREHOSE})")
    p.add_argument(
        "--speedup",
        type=float,
        help="kafka://: event-time seconds sent per wall second (e.g. 3600); default: as fast "
        "as the broker takes them",
    )
    p.add_argument(
        "--partitions", type=int, help="kafka://: partitions when the topic is created (3)"
    )
    p.add_argument("--start", type=dt.date.fromisoformat, help="first event date (UTC)")
    p.add_argument("--end", type=dt.date.fromisoformat, help="last event date (UTC)")
    p.add_argument("--data-dir", help="datasets folder (default LAKEHOUSE_DATA_DIR or ./data)")
    p.add_argument("--plain", action="store_true", help="write uncompressed objects")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("ingest", help="ingest raw objects that arrived on the dates into ODS")
    p.add_argument("--landing", required=True)
    p.add_argument(
        "--stage", action="store_true", help="only stage the batch (publish: publish --table ods)"
    )
    add_date_arguments(p)
    p.set_defaults(func=cmd_ingest)

    downstream = list(T.DOWNSTREAM_BUILD_ORDER)
    p = sub.add_parser("build", help="rebuild one table's partitions for a run range")
    p.add_argument("--table", required=True, choices=downstream)
    p.add_argument("--stage", action="store_true", help="write the staging twin")
    p.add_argument("--landing", help="only the apps of this landing (default: every app)")
    add_date_arguments(p)
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("publish", help="publish a table's staged partitions")
    p.add_argument("--table", required=True, choices=[*downstream, "ods"], help="ods: the batch")
    p.add_argument("--landing", help="only the apps of this landing (default: every app)")
    add_date_arguments(p)
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser("run", help="ingest new objects and rebuild everything affected")
    p.add_argument("--landing", required=True)
    add_date_arguments(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("validate", help="run a table's Great Expectations suite")
    p.add_argument("--table", required=True, choices=[t.name for t in T.ALL_TABLES])
    p.add_argument("--staged", action="store_true", help="validate the staging twin")
    p.add_argument("--publish", action="store_true", help="publish the staged data if it passes")
    p.add_argument("--landing", help="only the apps of this landing (default: every app)")
    add_date_arguments(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("report", help="write the HTML report from the DWS tables")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("demo", help="replay the real datasets, run them, print a summary")
    p.add_argument("--landing", default=str(PROJECT_DIR / "landing"), help="landing folder")
    p.add_argument("--data-dir", help="datasets folder")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("sql", help="run a BI view or query on Athena/Redshift (or local ones)")
    p.add_argument(
        "--engine",
        required=True,
        choices=["local-athena", "local-redshift", "athena", "redshift"],
        help="athena/redshift: the AWS services (LAKEHOUSE_ATHENA_*, LAKEHOUSE_REDSHIFT_*); "
        "local-*: the local stand-ins (Spark Thrift Server, PostgreSQL)",
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--view", help="a view of sql/<athena|redshift>/views, e.g. rpt_funnel")
    what.add_argument("--file", help="a query file (Athena SQL), e.g. sql/queries/funnel_range.sql")
    what.add_argument("--query", help="inline SQL in the engine's AWS dialect (Athena/Redshift)")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a :NAME parameter, e.g. --param app_id=web --param start_date=2024-03-01",
    )
    p.add_argument("--csv", action="store_true", help="CSV to stdout instead of a text table")
    p.set_defaults(func=cmd_sql)
    p = sub.add_parser("serve", help="the local Athena stand-in (Spark Thrift Server)")
    p.add_argument("action", choices=("start", "stop", "status"))
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("warehouse", help="the local Redshift stand-in (PostgreSQL)")
    p.add_argument("action", choices=("start", "stop", "status"))
    p.set_defaults(func=cmd_warehouse)

    p = sub.add_parser("bi-publish", help="publish DWS days to the exports, warehouse, catalog")
    add_date_arguments(p)
    p.add_argument(
        "--target",
        choices=("local", "aws"),
        default="local",
        help="local: PostgreSQL + Thrift Server; aws: S3 exports, Glue via Athena, Redshift",
    )
    p.set_defaults(func=cmd_bi_publish)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Console entry point. Returns the process exit code."""
    args = build_parser().parse_args(argv)
    configure_logging(logging.WARNING if args.quiet else logging.INFO)
    try:
        return args.func(args)
    except Exception:
        log.exception("lakehouse %s failed", args.command)
        return 1


if __name__ == "__main__":
    sys.exit(main())
