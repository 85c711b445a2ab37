"""Paths, endpoints and named business constants, read from the environment.

Every setting has a safe local default so a plain clone runs; `.env.example` lists them all.
Nothing here imports pyspark, so DAG files and the CLI can read settings cheaply.

Business constants (documented once, here):

- ``SESSION_GAP_SEC`` (1800 s = 30 min): a user's next event starts a new session when the gap
  to the previous event is *greater* than this; a gap of exactly 30 min continues the session.
- ``SESSION_MAX_SEC`` (86400 s = 24 h): an event 24 h or more after the session's start starts a
  new session (session cap, as in GA4 / Snowplow's sessionisation).
- ``SESSION_LOOKBACK_DAYS`` (3): days of events before a rebuild window read as context when
  sessionising, so a session open across midnight keeps its start and id.
- ``LATE_DATA_LOOKBACK_DAYS`` (30): how old (in event days before the run's first day) late
  events may be and still be rebuilt downstream by an ordinary run. Older late events stay in ODS
  and are reported with the backfill command to run; they are never dropped silently.
- ``ARRIVAL_LOOKBACK_DAYS`` (2): a run for day D also lists the landing folders of the previous
  two days and ingests what the manifest does not know yet. Firehose writes an object into the
  folder of its buffer's first record when the buffer closes (up to 15 min later, up to 24 h
  when it retries a failed S3 put); the Kafka Connect S3 sink closes ``hour=23`` files after
  midnight. The manifest, not the folder date, decides what is new.
- ``MAX_CLOCK_SKEW_SEC`` (3600 s = 1 h): a record whose event time is later than the end of its
  object's arrival hour (from the object key) plus this is rejected (a client clock in the future
  must not stretch rebuild windows).
- ``MIN_EVENT_DATE`` (2000-01-01): records with an earlier event time are rejected (e.g. an epoch
  mis-read into 1970).

Streaming (``lakehouse stream``, spark_jobs/streaming/job.py):

- ``STREAM_TOPICS`` (``clickstream=msk_clickstream_lab,behaviour=backend_behaviour,
  trade_orders=kda_trade_orders``): input topic -> record schema (an ODS adapter name).
- ``STREAM_WATERMARK_SEC`` (20 s): how far behind the largest event time seen a query still
  accepts records; a window is final (written) once the watermark passes its end.
- ``STREAM_SESSION_GAP_SEC`` (1 s, the MSK Clickstream Lab's): a user's event more than this after
  the previous one starts a new real-time session; exactly the gap continues it (as Flink's and
  Spark's session windows, and as the batch ``SESSION_GAP_SEC``, whose 30 min this is not).
- ``STREAM_TRIGGER_SEC`` (5 s): micro-batch interval of a continuously running job.
- ``STREAM_MAX_OFFSETS_PER_TRIGGER`` (0 = no limit): records per micro-batch, over all partitions.
- ``STREAM_RESULT_TOPIC_PREFIX`` (""): prefix of the lab's three Kafka result topics.
- ``STREAM_ARCHIVE`` (``./landing/stream``): landing URI (folder or ``s3://``) the job archives the
  raw input records to, in the Kafka Connect S3 sink layout; ``none`` turns the archive off.
- ``STREAM_MAX_COMMIT_AGE_SEC`` (300 s): ``lakehouse stream-health`` and the
  ``clickstream_streaming_health`` DAG fail when a query's last committed micro-batch is older.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
#: jars resolved once (Ivy, Maven), spark-submit defaults, the local Kafka broker's state
CACHE_DIR = Path(os.environ.get("LAKEHOUSE_CACHE_DIR", PROJECT_DIR / ".cache"))


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _parse_mapping(text: str) -> dict[str, str]:
    """Parse ``"a=x,b=y"`` into ``{"a": "x", "b": "y"}``.

    Raises:
        ValueError: an item without ``=``.
    """
    mapping: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        if "=" not in item:
            raise ValueError(f"expected NAME=VALUE in mapping, got {item!r}")
        key, value = item.split("=", 1)
        mapping[key.strip()] = value.strip()
    return mapping


def normalise_uri(uri: str) -> str:
    """Return an absolute URI for a local path (``./lake`` -> ``/abs/lake``); keep ``s3a://`` etc.

    ``s3://`` is rewritten to ``s3a://`` because Hadoop's S3 connector is ``s3a``.
    """
    if "://" in uri:
        return "s3a://" + uri[len("s3://") :] if uri.startswith("s3://") else uri.rstrip("/")
    return str(Path(uri).expanduser().resolve())


def _archive_uri(text: str) -> str:
    """``LAKEHOUSE_STREAM_ARCHIVE``: ``none`` -> "" (no archive); ``s3://`` kept (boto3 writes
    it); a local path made absolute."""
    if text.lower() == "none":
        return ""
    return text.rstrip("/") if text.startswith(("s3://", "s3a://")) else normalise_uri(text)


def machine_memory_mib() -> int:
    """Memory this process may use, in MiB: the physical memory, or the cgroup (container)
    limit when that is lower (``/sys/fs/cgroup/memory.max``, cgroup v2)."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit.isdigit():
            total = min(total, int(limit))
    except OSError:
        pass
    return total // (1024 * 1024)


def machine_cores() -> int:
    """CPUs this process may use: the ones it may be scheduled on, or the cgroup (container) CPU
    quota when that is lower (``/sys/fs/cgroup/cpu.max``, cgroup v2), at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota.isdigit() and int(period) > 0:
            cores = min(cores, -(-int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    return max(1, cores)


#: shuffle partitions per core (AQE coalesces small ones; more, smaller tasks bound memory)
SHUFFLE_PARTITIONS_PER_CORE = 4
#: at least this many shuffle partitions, however few cores
MIN_SHUFFLE_PARTITIONS = 8


def default_shuffle_partitions() -> int:
    """``spark.sql.shuffle.partitions`` (and default parallelism) of a session this project
    starts: :data:`SHUFFLE_PARTITIONS_PER_CORE` per core of :func:`machine_cores`, at least
    :data:`MIN_SHUFFLE_PARTITIONS` (8 on 2 cores, 64 on 16). With adaptive query execution on,
    Spark coalesces the partitions of a small shuffle into fewer tasks."""
    return max(MIN_SHUFFLE_PARTITIONS, SHUFFLE_PARTITIONS_PER_CORE * machine_cores())


def default_driver_memory() -> str:
    """``spark.driver.memory`` for local masters (the driver JVM does all the work): half the
    machine's memory (:func:`machine_memory_mib`), at least 1 GiB, e.g. ``"12000m"``."""
    return f"{max(1024, machine_memory_mib() // 2)}m"


#: ``LAKEHOUSE_STREAM_TOPICS`` default: the three producer schemas on their usual topics
DEFAULT_STREAM_TOPICS = {
    "clickstream": "msk_clickstream_lab",
    "behaviour": "backend_behaviour",
    "trade_orders": "kda_trade_orders",
}


@dataclass(frozen=True)
class Settings:
    """All runtime settings. Build with :func:`load_settings` (environment) or directly in tests."""

    lakehouse_root: str = field(default_factory=lambda: normalise_uri("./lakehouse"))
    data_dir: str = str(PROJECT_DIR / "data")
    session_gap_sec: int = 1800
    session_max_sec: int = 86400
    session_lookback_days: int = 3
    late_data_lookback_days: int = 30
    arrival_lookback_days: int = 2
    # days of event time the rt tables keep before their newest row (0 = keep every row)
    rt_retention_days: int = 30
    max_clock_skew_sec: int = 3600
    min_event_date: dt.date = dt.date(2000, 1, 1)
    # landing stream/topic name -> adapter name; "*" is the default for unnamed streams
    source_adapters: dict[str, str] = field(default_factory=lambda: {"*": "canonical"})
    spark_master: str = "local[*]"
    shuffle_partitions: int = field(default_factory=default_shuffle_partitions)
    s3_endpoint: str = ""
    # heap of a local-mode driver JVM; cluster masters take the submitted conf instead
    driver_memory: str = field(default_factory=default_driver_memory)
    # extra JVM options of the driver, e.g. "-XX:TieredStopAtLevel=1" for short jobs on few cores
    driver_java_options: str = ""
    # Kafka: the brokers clients connect to (and where `lakehouse kafka start` listens)
    kafka_bootstrap: str = "127.0.0.1:9092"
    # the local broker's state: config, data (log.dirs), server.log, broker.pid
    kafka_dir: str = str(CACHE_DIR / "kafka")
    # --- streaming: `lakehouse stream` (spark_jobs/streaming/job.py; module docstring above) ---
    #: input topic -> schema (ODS adapter name)
    stream_topics: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_STREAM_TOPICS))
    stream_watermark_sec: float = 20.0
    stream_session_gap_sec: float = 1.0
    stream_trigger_sec: float = 5.0
    stream_max_offsets_per_trigger: int = 0
    #: prefix of the lab's Kafka result topics (e.g. "dev_" -> dev_Departments_Agg)
    stream_result_topic_prefix: str = ""
    #: landing URI of the raw archive (Kafka Connect S3 sink layout); "none" = no archive
    stream_archive_uri: str = field(default_factory=lambda: normalise_uri("./landing/stream"))
    #: a query whose last committed micro-batch is older than this is reported stale
    stream_max_commit_age_sec: float = 300.0
    # --- serving: `lakehouse sql` on Athena / Redshift (spark_jobs/serving/aws.py) ---
    #: AWS region of the Athena and Redshift Data API clients ("" = boto3's own resolution:
    #: AWS_DEFAULT_REGION, ~/.aws/config)
    aws_region: str = ""
    #: endpoint URL override of the Athena and Redshift Data API clients (a moto server in the
    #: tests); "" = the AWS endpoint (boto3 also honours AWS_ENDPOINT_URL_ATHENA etc.)
    aws_endpoint_url: str = ""
    #: Athena workgroup the queries run in
    athena_workgroup: str = "primary"
    #: S3 prefix for Athena query results (s3://bucket/prefix/); "" = the workgroup's location
    athena_output: str = ""
    #: Athena (Glue) database holding the tables and rpt_* views (sql/README.md)
    athena_database: str = "clickstream"
    #: provisioned Redshift cluster identifier; set this or redshift_workgroup, not both
    redshift_cluster_id: str = ""
    #: Redshift Serverless workgroup name; set this or redshift_cluster_id, not both
    redshift_workgroup: str = ""
    #: Redshift database of the rpt_* views
    redshift_database: str = "dev"
    #: database user for temporary IAM credentials (provisioned clusters only)
    redshift_db_user: str = ""
    #: Secrets Manager ARN of the database credentials (takes precedence over the db user)
    redshift_secret_arn: str = ""
    #: seconds a query may take (queued and running) before it is cancelled and reported
    query_timeout_sec: float = 300.0
    #: first wait between two status polls of a query; doubled after each poll ...
    query_poll_sec: float = 0.5
    #: ... up to this many seconds
    query_poll_max_sec: float = 5.0
    # BI serving (spark_jobs/serving): the database/schema BI tools see, the local endpoints'
    # ports and the folder of their state (metastore, PostgreSQL cluster, PID and log files)
    bi_database: str = "clickstream"
    #: IAM role Redshift's COPY assumes to read the Parquet exports (bi-publish --target aws)
    redshift_copy_role: str = ""
    thrift_port: int = 10000
    pg_port: int = 5439
    serving_state_dir: str = ""

    def table_path(self, layer: str, table: str) -> str:
        """Location of a Delta table: ``<root>/<layer>/<table>``."""
        return f"{self.lakehouse_root}/{layer}/{table}"

    @property
    def reports_dir(self) -> str:
        """Where the HTML report goes: ``<root>/reports``."""
        return f"{self.lakehouse_root}/reports"

    @property
    def exports_dir(self) -> str:
        """Where ``bi-publish`` writes the DWS Parquet exports: ``<root>/exports``."""
        return f"{self.lakehouse_root}/exports"

    @property
    def serving_dir(self) -> Path:
        """Local folder of the BI endpoints' state: ``LAKEHOUSE_SERVING_DIR``, else
        ``<root>/serving`` for a local lake, else ``.cache/serving`` (an object-store lake)."""
        if self.serving_state_dir:
            return Path(self.serving_state_dir)
        if "://" not in self.lakehouse_root:
            return Path(self.lakehouse_root) / "serving"
        return PROJECT_DIR / ".cache" / "serving"

    def first_listed_date(self, start: dt.date) -> dt.date:
        """The first landing folder (arrival date, UTC) a run starting on ``start`` lists:
        ``start - ARRIVAL_LOOKBACK_DAYS``."""
        return start - dt.timedelta(days=self.arrival_lookback_days)

    def adapter_for(self, stream: str) -> str | None:
        """Adapter configured for a landing stream/topic, else the ``*`` default, else None."""
        return self.source_adapters.get(stream, self.source_adapters.get("*"))


def load_settings() -> Settings:
    """Read :class:`Settings` from ``LAKEHOUSE_*`` environment variables (see ``.env.example``)."""
    adapters = {"*": "canonical"}
    adapters.update(_parse_mapping(_env("LAKEHOUSE_SOURCE_ADAPTERS", "")))
    return Settings(
        lakehouse_root=normalise_uri(_env("LAKEHOUSE_ROOT", "./lakehouse")),
        data_dir=_env("LAKEHOUSE_DATA_DIR", str(PROJECT_DIR / "data")),
        session_gap_sec=int(_env("LAKEHOUSE_SESSION_GAP_SEC", "1800")),
        session_max_sec=int(_env("LAKEHOUSE_SESSION_MAX_SEC", "86400")),
        session_lookback_days=int(_env("LAKEHOUSE_SESSION_LOOKBACK_DAYS", "3")),
        late_data_lookback_days=int(_env("LAKEHOUSE_LATE_DATA_LOOKBACK_DAYS", "30")),
        arrival_lookback_days=int(_env("LAKEHOUSE_ARRIVAL_LOOKBACK_DAYS", "2")),
        rt_retention_days=int(_env("LAKEHOUSE_RT_RETENTION_DAYS", "30")),
        max_clock_skew_sec=int(_env("LAKEHOUSE_MAX_CLOCK_SKEW", "3600")),
        min_event_date=dt.date.fromisoformat(_env("LAKEHOUSE_MIN_EVENT_DATE", "2000-01-01")),
        source_adapters=adapters,
        spark_master=_env("LAKEHOUSE_SPARK_MASTER", "local[*]"),
        shuffle_partitions=int(
            _env("LAKEHOUSE_SHUFFLE_PARTITIONS", str(default_shuffle_partitions()))
        ),
        s3_endpoint=_env("LAKEHOUSE_S3_ENDPOINT", ""),
        driver_memory=_env("LAKEHOUSE_DRIVER_MEMORY", default_driver_memory()),
        driver_java_options=_env("LAKEHOUSE_DRIVER_JAVA_OPTIONS", ""),
        kafka_bootstrap=_env("LAKEHOUSE_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        kafka_dir=str(Path(_env("LAKEHOUSE_KAFKA_DIR", str(CACHE_DIR / "kafka"))).resolve()),
        stream_topics=_parse_mapping(_env("LAKEHOUSE_STREAM_TOPICS", ""))
        or dict(DEFAULT_STREAM_TOPICS),
        stream_watermark_sec=float(_env("LAKEHOUSE_STREAM_WATERMARK_SEC", "20")),
        stream_session_gap_sec=float(_env("LAKEHOUSE_STREAM_SESSION_GAP_SEC", "1")),
        stream_trigger_sec=float(_env("LAKEHOUSE_STREAM_TRIGGER_SEC", "5")),
        stream_max_offsets_per_trigger=int(_env("LAKEHOUSE_STREAM_MAX_OFFSETS_PER_TRIGGER", "0")),
        stream_result_topic_prefix=_env("LAKEHOUSE_STREAM_RESULT_TOPIC_PREFIX", ""),
        stream_archive_uri=_archive_uri(_env("LAKEHOUSE_STREAM_ARCHIVE", "./landing/stream")),
        stream_max_commit_age_sec=float(_env("LAKEHOUSE_STREAM_MAX_COMMIT_AGE_SEC", "300")),
        aws_region=_env("AWS_REGION", ""),
        aws_endpoint_url=_env("LAKEHOUSE_AWS_ENDPOINT_URL", ""),
        athena_workgroup=_env("LAKEHOUSE_ATHENA_WORKGROUP", "primary"),
        athena_output=_env("LAKEHOUSE_ATHENA_OUTPUT", ""),
        athena_database=_env("LAKEHOUSE_ATHENA_DATABASE", "clickstream"),
        redshift_cluster_id=_env("LAKEHOUSE_REDSHIFT_CLUSTER_ID", ""),
        redshift_workgroup=_env("LAKEHOUSE_REDSHIFT_WORKGROUP", ""),
        redshift_database=_env("LAKEHOUSE_REDSHIFT_DATABASE", "dev"),
        redshift_db_user=_env("LAKEHOUSE_REDSHIFT_DB_USER", ""),
        redshift_secret_arn=_env("LAKEHOUSE_REDSHIFT_SECRET_ARN", ""),
        query_timeout_sec=float(_env("LAKEHOUSE_QUERY_TIMEOUT_SEC", "300")),
        query_poll_sec=float(_env("LAKEHOUSE_QUERY_POLL_SEC", "0.5")),
        query_poll_max_sec=float(_env("LAKEHOUSE_QUERY_POLL_MAX_SEC", "5")),
        bi_database=_env("LAKEHOUSE_BI_DATABASE", "clickstream"),
        redshift_copy_role=_env("LAKEHOUSE_REDSHIFT_COPY_ROLE", ""),
        thrift_port=int(_env("LAKEHOUSE_THRIFT_PORT", "10000")),
        pg_port=int(_env("LAKEHOUSE_PG_PORT", "5439")),
        serving_state_dir=_env("LAKEHOUSE_SERVING_DIR", ""),
    )
