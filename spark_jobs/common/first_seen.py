"""First-seen dates: each user's and each app's first DWD event date, kept current by MERGE.

``dws_active_users_1d.new_users``, the cohorts of ``dws_retention_1d`` and the day spines of the
DWS tables (every day from the app's first event date) need the first event date over the whole
DWD history. Reading all of DWD for it makes a daily run's cost grow with history. Instead this
module keeps those dates in a small Delta table (one row per user, plus one per app), updated
whenever DWD events partitions go live, so a daily run reads only its own window of DWD.

State table ``<root>/state/dwd_first_seen`` (Delta, not partitioned; auto-compacted):

- ``app_id`` STRING;
- ``user_id`` STRING: a user of the app; **null** for the app's own row, whose ``first_dt`` is
  the app's first event date over every event, anonymous ones included;
- ``first_dt`` DATE: the first UTC date with a DWD event of that user (of that app).

Definition (the rows equal :func:`compute_first_seen` over all of DWD): for every
``(app_id, user_id)`` with a DWD event, ``min(dt)``; for every ``app_id``, ``min(dt)``.

Consistency: the state's table property ``lakehouse.dwd_version`` records the DWD events version
its rows reflect, set by a commit after each update (and unset while a rebuild rewrites it).
:func:`read_first_seen` uses the state only when DWD has not changed since that version except
by compaction (OPTIMIZE, VACUUM); otherwise (a lake written before this table existed, a DWD
write that died before its refresh) it computes the dates from the whole DWD history and logs a
warning, and the next DWD publish rebuilds the state in full.
So a stale state can cost time, never give a wrong number.

Incremental refresh (:func:`refresh_after_publish`), after DWD partitions ``[a, b]`` of apps
``P`` were replaced, with ``S`` = the first dates over the new DWD rows of ``[a, b]``: a stored
date before ``a`` cannot change (no earlier day changed); a key in ``S`` whose stored date is
``a`` or later (or absent) takes its ``S`` date; a stored date in ``[a, b]`` whose key is no longer
in ``S`` moves to the key's first date after ``b`` (read from DWD for those keys only), or the row
is deleted when there is none. One MERGE commits all of it.
"""

from __future__ import annotations

import datetime as dt
import logging

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as Ty

from spark_jobs import tables as T
from spark_jobs.settings import Settings

log = logging.getLogger("lakehouse")

STATE_LAYER = "state"
STATE_TABLE = "dwd_first_seen"
SCHEMA = Ty.StructType(
    [
        Ty.StructField("app_id", Ty.StringType(), False),
        Ty.StructField("user_id", Ty.StringType(), True),
        Ty.StructField("first_dt", Ty.DateType(), False),
    ]
)
#: DWD operations that rewrite files without changing rows: the state stays current across them
_COMPACTIONS = frozenset({"OPTIMIZE", "VACUUM START", "VACUUM END"})
#: table property of the state: the DWD events version the rows reflect
VERSION_PROPERTY = "lakehouse.dwd_version"


def state_path(settings: Settings) -> str:
    """Location of the state table: ``<root>/state/dwd_first_seen``."""
    return settings.table_path(STATE_LAYER, STATE_TABLE)


def compute_first_seen(events: DataFrame) -> DataFrame:
    """First-seen dates over ``events`` (``app_id STRING, user_id STRING, dt DATE``).

    Returns:
        ``app_id, user_id, first_dt`` (:data:`SCHEMA`): one row per ``(app_id, user_id)`` with a
        non-null user, plus one row per app with ``user_id`` null (its first event of any user).
    """
    users = (
        events.where(F.col("user_id").isNotNull())
        .groupBy("app_id", "user_id")
        .agg(F.min("dt").alias("first_dt"))
    )
    apps = events.groupBy("app_id").agg(
        F.lit(None).cast("string").alias("user_id"), F.min("dt").alias("first_dt")
    )
    return users.unionByName(apps)


def users_first_seen(first_seen: DataFrame) -> DataFrame:
    """The user rows of a first-seen frame: ``app_id, user_id, first_dt``."""
    return first_seen.where(F.col("user_id").isNotNull())


def apps_first_event(first_seen: DataFrame) -> DataFrame:
    """The app rows of a first-seen frame as ``app_id, first_dt`` (what
    :func:`spark_jobs.common.calendar.app_day_spine` takes)."""
    return first_seen.where(F.col("user_id").isNull()).select("app_id", "first_dt")


def _history(spark: SparkSession, path: str, after: int) -> list[tuple[int, str]]:
    """``(version, operation)`` of the Delta commits at ``path`` after version
    ``after``, newest first."""
    from delta.tables import DeltaTable

    rows = (
        DeltaTable.forPath(spark, path)
        .history()
        .where(F.col("version") > after)
        .select("version", "operation")
        .collect()
    )
    return [(int(r[0]), r[1]) for r in rows]


def _state_dwd_version(spark: SparkSession, settings: Settings) -> int | None:
    """The DWD version the state reflects (its :data:`VERSION_PROPERTY`); None when there is no
    state table or it does not say."""
    from delta.tables import DeltaTable

    path = state_path(settings)
    if not DeltaTable.isDeltaTable(spark, path):
        return None
    properties = DeltaTable.forPath(spark, path).detail().select("properties").first()[0] or {}
    recorded = properties.get(VERSION_PROPERTY)
    return int(recorded) if recorded else None


def _dwd_unchanged_since(spark: SparkSession, settings: Settings, version: int | None) -> bool:
    """True when DWD events exists and has had no row-changing commit after ``version``."""
    from spark_jobs.common import delta_io

    if version is None or not delta_io.table_exists(spark, settings, T.DWD_EVENTS):
        return False
    later = _history(spark, delta_io.table_path(settings, T.DWD_EVENTS), version)
    return all(operation in _COMPACTIONS for _, operation in later)


def read_first_seen(
    spark: SparkSession, settings: Settings, apps: tuple[str, ...] | None = None
) -> DataFrame:
    """Current first-seen dates of ``apps`` (None: all): ``app_id, user_id, first_dt``.

    Reads the state table when it reflects the current DWD events table; otherwise computes the
    same rows from the whole DWD history (and logs a warning saying so).
    """
    from spark_jobs.common import delta_io

    if _dwd_unchanged_since(spark, settings, _state_dwd_version(spark, settings)):
        state = spark.read.format("delta").load(state_path(settings))
        return delta_io.only_apps(state, apps)
    if delta_io.table_exists(spark, settings, T.DWD_EVENTS):
        log.warning(
            "first-seen state is missing or behind %s: computing first-seen dates from the whole "
            "DWD history (the next DWD publish rebuilds the state)",
            T.DWD_EVENTS,
        )
    dwd = delta_io.read_table(spark, settings, T.DWD_EVENTS, apps=apps)
    return compute_first_seen(dwd.select("app_id", "user_id", "dt"))


def _record_version(spark: SparkSession, settings: Settings, dwd_version: int) -> None:
    """Set the state's :data:`VERSION_PROPERTY` to ``dwd_version`` (a commit of its own, so it
    is recorded even when a MERGE changed no row)."""
    spark.sql(
        f"ALTER TABLE delta.`{state_path(settings)}` "
        f"SET TBLPROPERTIES ('{VERSION_PROPERTY}' = '{dwd_version}')"
    )


def rebuild(spark: SparkSession, settings: Settings) -> int:
    """Write the state from the whole DWD events table (replacing it); returns rows written."""
    from delta.tables import DeltaTable

    from spark_jobs.common import delta_io

    version = delta_io.table_version(spark, settings, T.DWD_EVENTS)
    dwd = spark.read.format("delta").option("versionAsOf", version)
    rows = compute_first_seen(
        dwd.load(delta_io.table_path(settings, T.DWD_EVENTS)).select("app_id", "user_id", "dt")
    )
    if DeltaTable.isDeltaTable(spark, state_path(settings)):
        # not trusted while it is rewritten (a rebuild that dies leaves it untrusted)
        spark.sql(
            f"ALTER TABLE delta.`{state_path(settings)}` UNSET TBLPROPERTIES IF EXISTS "
            f"('{VERSION_PROPERTY}')"
        )
    else:
        (
            DeltaTable.createIfNotExists(spark)
            .location(state_path(settings))
            .addColumns(SCHEMA)
            .property("delta.autoOptimize.autoCompact", "true")
            .execute()
        )
    rows.select(*SCHEMA.fieldNames()).write.format("delta").mode("overwrite").save(
        state_path(settings)
    )
    written = int(delta_io.last_commit_metrics(spark, state_path(settings)).get("numOutputRows", 0))
    _record_version(spark, settings, version)
    log.info("  first-seen state rebuilt from %s v%d: %d rows", T.DWD_EVENTS, version, written)
    return written


def refresh_after_publish(
    spark: SparkSession,
    settings: Settings,
    start: dt.date,
    end: dt.date,
    apps: tuple[str, ...] | None,
    before_version: int | None,
) -> None:
    """Bring the state up to date after DWD events partitions ``[start, end]`` of ``apps``
    (None: all) were replaced, the DWD table having been at ``before_version`` just before.

    Incremental (one MERGE, see the module docstring) when the state reflected
    ``before_version``; a full :func:`rebuild` otherwise.
    """
    from delta.tables import DeltaTable

    from spark_jobs.common import delta_io

    state_version = _state_dwd_version(spark, settings)
    dwd_path = delta_io.table_path(settings, T.DWD_EVENTS)
    if state_version is None or before_version is None or state_version > before_version:
        rebuild(spark, settings)  # no state yet, or it does not say what it reflects
        return
    later = _history(spark, dwd_path, state_version)  # one read of the log: newest first
    version = later[0][0] if later else state_version
    consistent = all(operation in _COMPACTIONS for v, operation in later if v <= before_version)
    if not consistent or version != before_version + 1:
        # the state was behind, or another writer committed to DWD next to this publish
        rebuild(spark, settings)
        return
    dwd = delta_io.only_apps(
        spark.read.format("delta").option("versionAsOf", version).load(dwd_path), apps
    ).select("app_id", "user_id", "dt")
    window = compute_first_seen(dwd.where(F.col("dt").between(start, end)))
    state = delta_io.only_apps(spark.read.format("delta").load(state_path(settings)), apps)
    key = ["app_id", "user_id"]
    null_safe = (F.col("s.app_id") == F.col("t.app_id")) & F.col("s.user_id").eqNullSafe(
        F.col("t.user_id")
    )
    # keys of the window whose date is new, or whose stored date was in or after the window
    upserts = (
        window.alias("s")
        .join(state.alias("t"), null_safe, "left")
        .where(
            F.col("t.first_dt").isNull()
            | ((F.col("t.first_dt") >= F.lit(start)) & (F.col("t.first_dt") != F.col("s.first_dt")))
        )
        .select("s.app_id", "s.user_id", "s.first_dt")
    )
    # stored dates inside the window whose key has no event in the window any more
    orphans = (
        state.where(F.col("first_dt").between(start, end))
        .alias("t")
        .join(window.alias("s"), null_safe, "left_anti")
        .select("app_id", "user_id")
    )
    changes = upserts.withColumn("_delete", F.lit(False))
    if not orphans.isEmpty():
        later_dwd = dwd.where(F.col("dt") > F.lit(end))
        orphan_users = orphans.where(F.col("user_id").isNotNull())
        orphan_apps = orphans.where(F.col("user_id").isNull()).select("app_id")
        # a user row moves to the user's next event, an app row to the app's next event
        later = users_first_seen(
            compute_first_seen(later_dwd.join(orphan_users, key, "left_semi"))
        ).unionByName(
            apps_first_event(
                compute_first_seen(later_dwd.join(orphan_apps, "app_id", "left_semi"))
            ).withColumn("user_id", F.lit(None).cast("string"))
        )
        moved = (
            orphans.alias("o")
            .join(
                later.alias("l"),
                (F.col("o.app_id") == F.col("l.app_id"))
                & F.col("o.user_id").eqNullSafe(F.col("l.user_id")),
                "left",
            )
            .select(
                "o.app_id",
                "o.user_id",
                F.col("l.first_dt").alias("first_dt"),
                F.col("l.first_dt").isNull().alias("_delete"),
            )
        )
        changes = changes.unionByName(moved)
    (
        DeltaTable.forPath(spark, state_path(settings))
        .alias("t")
        .merge(changes.alias("s"), "t.app_id = s.app_id AND t.user_id <=> s.user_id")
        .whenMatchedDelete(condition="s._delete")
        .whenMatchedUpdate(set={"first_dt": "s.first_dt"})
        .whenNotMatchedInsert(
            condition="NOT s._delete",
            values={"app_id": "s.app_id", "user_id": "s.user_id", "first_dt": "s.first_dt"},
        )
        .execute()
    )
    _record_version(spark, settings, version)
    log.info(
        "  first-seen state refreshed for %s dt %s..%s (DWD v%d)", T.DWD_EVENTS, start, end, version
    )
