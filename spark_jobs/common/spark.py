"""The project's only SparkSession builder, and the Delta/S3 jar cache.

Sessions are UTC (``spark.sql.session.timeZone`` and the JVM zone), Delta-enabled, quiet (Spark
logs errors only; progress bars off) and ``local[*]`` unless configured otherwise. Defaults fit
the machine: a local-mode driver gets half the machine's memory as heap
(``LAKEHOUSE_DRIVER_MEMORY``), not Spark's 1 GiB; shuffle partitions are 4 per core, at least 8
(``LAKEHOUSE_SHUFFLE_PARTITIONS``); Delta writes are optimized writes (files of about
:data:`OPTIMIZE_WRITE_BIN_MIB` MiB, written in parallel).
Every option can be overridden:

- ``LAKEHOUSE_SPARK_MASTER`` sets the master when this module starts the JVM itself;
- under ``spark-submit`` (``--master yarn``, ``k8s://...``, EMR) the submitted conf wins and this
  builder only attaches to the running session;
- ``LAKEHOUSE_SPARK_CONF="k=v,k2=v2"`` adds or replaces any Spark conf.

Jars: Delta Lake for Spark 4.2 / Scala 2.13 (``LAKEHOUSE_DELTA_PACKAGE``) and, for ``s3a://``
roots, ``hadoop-aws`` (``LAKEHOUSE_S3_PACKAGES``) are resolved once from Maven Central by Ivy into
``.cache/ivy`` inside the project (``lakehouse setup``). The resolved jar list is recorded in
``.cache/jars-<hash>.txt``; later sessions pass those files as ``spark.jars``, so a second run
needs no network and prints no resolver output.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from spark_jobs.settings import CACHE_DIR, Settings, _parse_mapping, load_settings

# delta-spark 4.4.1 on PyPI is the Python API; Maven Central publishes the Spark 4.2 build of the
# Delta jars as 4.4.0 (there is no 4.4.1 jar for Spark 4.2), which the 4.4.1 Python API drives.
DEFAULT_DELTA_PACKAGE = "io.delta:delta-spark_4.2_2.13:4.4.0"
# hadoop-aws must match Spark's bundled Hadoop (3.5.0 for pyspark 4.2.0).
DEFAULT_S3_PACKAGES = "org.apache.hadoop:hadoop-aws:3.5.0"

LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")
#: target file size of Delta's optimized writes, MiB (Delta's default is 512)
OPTIMIZE_WRITE_BIN_MIB = 128
#: bytes per Arrow batch sent to a Python worker (binaryFile objects to the ODS line splitter)
ARROW_MAX_BYTES_PER_BATCH = 64 * 1024 * 1024


def required_packages(settings: Settings, with_s3: bool | None = None) -> list[str]:
    """Maven coordinates the session needs: Delta always, hadoop-aws when S3 is in use."""
    packages = [os.environ.get("LAKEHOUSE_DELTA_PACKAGE", DEFAULT_DELTA_PACKAGE)]
    if with_s3 is None:
        with_s3 = settings.lakehouse_root.startswith("s3a://") or bool(settings.s3_endpoint)
    if with_s3:
        packages += os.environ.get("LAKEHOUSE_S3_PACKAGES", DEFAULT_S3_PACKAGES).split(",")
    return packages


def _jar_list_file(packages: list[str]) -> Path:
    digest = hashlib.sha1(",".join(sorted(packages)).encode()).hexdigest()[:12]
    return CACHE_DIR / f"jars-{digest}.txt"


def cached_jars(packages: list[str]) -> list[str] | None:
    """Jar files resolved earlier for ``packages``, or None when not cached (or files missing)."""
    listing = _jar_list_file(packages)
    if not listing.exists():
        return None
    jars = [line for line in listing.read_text().splitlines() if line]
    return jars if jars and all(Path(j).exists() for j in jars) else None


def spark_conf(
    settings: Settings, packages: list[str] | None = None, extra_jars: list[str] | None = None
) -> dict[str, str]:
    """The Spark configuration every lakehouse session uses, as ``{key: value}``.

    Args:
        settings: paths and tuning.
        packages: Maven coordinates; default :func:`required_packages`.
        extra_jars: jar files added to ``spark.jars`` (e.g. :func:`spark_kafka_jars` for the
            streaming job).

    Returns:
        Static and SQL confs. Jars are given as ``spark.jars`` when cached, else as
        ``spark.jars.packages`` with the project's Ivy cache.
    """
    packages = packages if packages is not None else required_packages(settings)
    log_level = os.environ.get("LAKEHOUSE_SPARK_LOG_LEVEL", "ERROR")
    java_opts = (
        f"{settings.driver_java_options} -Duser.timezone=UTC "
        f"-Dlog4j2.configurationFile=file:{LOG4J_CONFIG} -Dlakehouse.spark.loglevel={log_level}"
    ).strip()
    conf = {
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        "spark.default.parallelism": str(settings.shuffle_partitions),
        "spark.ui.showConsoleProgress": "false",
        "spark.ui.enabled": os.environ.get("LAKEHOUSE_SPARK_UI", "false"),
        "spark.driver.extraJavaOptions": java_opts,
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.sql.adaptive.enabled": "true",
        # Delta optimized writes: rows are shuffled by partition column into bins of about
        # OPTIMIZE_WRITE_BIN_MIB before writing, so a big partition is written by several tasks
        # in parallel and small partitions get one file each (no small-files problem, no
        # one-task-per-partition write)
        "spark.databricks.delta.optimizeWrite.enabled": "true",
        "spark.databricks.delta.optimizeWrite.binSize": str(OPTIMIZE_WRITE_BIN_MIB),
        # Arrow batches handed to Python (ODS line splitting): bounded in bytes, not only rows
        "spark.sql.execution.arrow.maxBytesPerBatch": str(ARROW_MAX_BYTES_PER_BATCH),
        # reading an ingest batch's objects by path lists them in a Spark job of one task per
        # path (up to this many); thousands of one-file tasks cost more than the listing itself
        # (2,964 objects: 12.9 s with one task each)
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": str(
            max(1, settings.shuffle_partitions)
        ),
    }
    if settings.spark_master.startswith("local"):
        # local mode: the driver JVM is the whole cluster; the default 1 GiB heap runs out on a
        # few million events (``LAKEHOUSE_DRIVER_MEMORY``, default half the machine's memory)
        conf["spark.driver.memory"] = settings.driver_memory
        # one JVM replays the Delta log: one partition loads a new table version faster than N
        # small tasks (a local lake's log is small; measured ~15% less per small build)
        conf["spark.databricks.delta.snapshotPartitions"] = "1"
    else:
        conf["spark.databricks.delta.snapshotPartitions"] = str(max(1, settings.shuffle_partitions))
    jars = cached_jars(packages)
    if jars:
        conf["spark.jars"] = ",".join([*jars, *(extra_jars or [])])
    else:
        conf["spark.jars.packages"] = ",".join(packages)
        conf["spark.jars.ivy"] = str(CACHE_DIR / "ivy")
        if extra_jars:
            conf["spark.jars"] = ",".join(extra_jars)
    if settings.s3_endpoint:
        conf.update(
            {
                "spark.hadoop.fs.s3a.endpoint": settings.s3_endpoint,
                "spark.hadoop.fs.s3a.path.style.access": "true",
                "spark.hadoop.fs.s3a.connection.ssl.enabled": str(
                    settings.s3_endpoint.startswith("https")
                ).lower(),
            }
        )
    conf.update(_parse_mapping(os.environ.get("LAKEHOUSE_SPARK_CONF", "")))
    return conf


def get_spark(
    app_name: str = "lakehouse",
    settings: Settings | None = None,
    extra_jars: list[str] | None = None,
):
    """Return the SparkSession, creating it with :func:`spark_conf` when none is running.

    ``extra_jars`` go on ``spark.jars`` beside Delta's when this starts the JVM; an already
    running session (or ``spark-submit``) keeps its own classpath (submit with ``--jars``).

    Under ``spark-submit`` the JVM already exists with the submitted conf (master, jars,
    extensions); this then only attaches and sets the session time zone to UTC.

    Raises:
        pyspark.errors.PySparkRuntimeError: Java is missing or the JVM failed to start.
    """
    from pyspark.sql import SparkSession

    settings = settings or load_settings()
    active = SparkSession.getActiveSession()
    if active is not None or os.environ.get("PYSPARK_GATEWAY_PORT"):
        spark = SparkSession.builder.appName(app_name).getOrCreate()
        spark.conf.set("spark.sql.session.timeZone", "UTC")
        return spark
    if settings.spark_master.startswith("local"):
        # Python workers must run the same interpreter (the project's venv) as the driver.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.appName(app_name).master(settings.spark_master)
    for key, value in spark_conf(settings, extra_jars=extra_jars).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("LAKEHOUSE_SPARK_LOG_LEVEL", "ERROR"))
    return spark


def fetch_jars(settings: Settings | None = None, with_s3: bool = False) -> list[str]:
    """Resolve the Maven packages into the project's Ivy cache and record the jar list.

    Starts (and stops) a short local JVM with ``spark.jars.packages``; Ivy downloads from Maven
    Central only what is not cached yet.

    Returns:
        Absolute jar paths now listed in the cache file.

    Raises:
        RuntimeError: Ivy could not resolve a package (no network and nothing cached).
    """
    from pyspark.sql import SparkSession

    settings = settings or load_settings()
    packages = required_packages(settings, with_s3=with_s3)
    jars = cached_jars(packages)
    if jars:
        return jars
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    try:
        spark = (
            SparkSession.builder.master("local[1]")
            .appName("lakehouse-fetch-jars")
            .config("spark.jars.packages", ",".join(packages))
            .config("spark.jars.ivy", str(CACHE_DIR / "ivy"))
            .config("spark.ui.enabled", "false")
            .getOrCreate()
        )
    except Exception as exc:  # the JVM exits when Ivy fails
        raise RuntimeError(f"could not resolve {packages} from Maven Central: {exc}") from exc
    resolved = spark.sparkContext.getConf().get("spark.jars", "")
    spark.stop()
    jars = [j.removeprefix("file://").removeprefix("file:") for j in resolved.split(",") if j]
    _jar_list_file(packages).write_text("\n".join(jars) + "\n")
    return jars


def write_spark_defaults(target_dir: Path, settings: Settings | None = None) -> Path:
    """Write ``spark-defaults.conf`` for ``SPARK_CONF_DIR=<dir> spark-submit spark_jobs/...``.

    Returns:
        The path of the written file.
    """
    settings = settings or load_settings()
    target_dir.mkdir(parents=True, exist_ok=True)
    conf = spark_conf(settings)
    conf["spark.master"] = settings.spark_master
    if settings.spark_master.startswith("local"):
        conf["spark.pyspark.python"] = sys.executable
    path = target_dir / "spark-defaults.conf"
    path.write_text("".join(f"{k} {v}\n" for k, v in sorted(conf.items())))
    return path


# Spark's Kafka source/sink for Structured Streaming; Spark 4.2 / Scala 2.13 build.
DEFAULT_SPARK_KAFKA_PACKAGE = "org.apache.spark:spark-sql-kafka-0-10_2.13:4.2.0"


def _pyspark_jar_names() -> set[str]:
    """File names of the jars pyspark ships (``pyspark/jars``)."""
    import pyspark

    return {p.name for p in (Path(pyspark.__file__).parent / "jars").glob("*.jar")}


def _shipped(jar: Path, shipped: set[str]) -> bool:
    """Whether pyspark ships the jar's artifact in any version (``<artifact>-<version>.jar``)."""
    # the Maven repository layout is <group path>/<artifact>/<version>/<artifact>-<version>.jar
    artifact = jar.parent.parent.name
    return any(
        name.startswith(artifact + "-") and name[len(artifact) + 1 : len(artifact) + 2].isdigit()
        for name in shipped
    )


def spark_kafka_jars(resolve: bool = False) -> list[str]:
    """The jars the Kafka connector adds to pyspark's own, for ``spark.jars``.

    Resolves ``LAKEHOUSE_SPARK_KAFKA_PACKAGE`` (default :data:`DEFAULT_SPARK_KAFKA_PACKAGE`) with
    its runtime dependencies by Maven into the project cache, and keeps only the artifacts pyspark
    does not ship in any version. For pyspark 4.2.0 these are four: ``spark-sql-kafka-0-10``,
    ``spark-token-provider-kafka-0-10``, ``kafka-clients`` and ``commons-pool2``.

    Args:
        resolve: run Maven when the list is not cached yet (``lakehouse setup --with-kafka``);
            otherwise return what is cached.

    Returns:
        Absolute jar paths; empty when not resolved yet and ``resolve`` is false.

    Raises:
        RuntimeError: Maven is missing or could not resolve the package.
    """
    from spark_jobs.common.maven import cached_artifacts, record_artifacts, resolve_artifacts

    package = [os.environ.get("LAKEHOUSE_SPARK_KAFKA_PACKAGE", DEFAULT_SPARK_KAFKA_PACKAGE)]
    jars = cached_artifacts("spark-kafka-jars", package)
    if jars or not resolve:
        return jars
    every = resolve_artifacts("spark-kafka-deps", package)
    shipped = _pyspark_jar_names()
    jars = [j for j in every if not _shipped(Path(j), shipped)]
    record_artifacts("spark-kafka-jars", package, jars)
    return jars
