"""Is the streaming job advancing? The age of each query's last committed micro-batch.

A Structured Streaming query writes ``<checkpoint>/commits/<batchId>`` when a micro-batch is
done; a running query with a processing-time trigger commits at least every trigger while data
arrives, and also after a batch that only advanced the watermark. When no commit is newer than
``max_age_sec`` (or there is none), the query is stale: the job is down, stuck, or its input
stopped. ``lakehouse stream-health`` and the ``clickstream_streaming_health`` DAG use this.

Pure Python (no pyspark): checkpoints under a local root are read with ``os``; under an
``s3a://`` / ``s3://`` root with boto3 (``AWS_ENDPOINT_URL`` etc. as usual).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from spark_jobs.settings import Settings

#: the queries ``lakehouse stream`` runs (spark_jobs.streaming.job.QUERY_NAMES, without pyspark)
STREAM_QUERIES = (
    "clickstream_sessions",
    "rt_trade_orders_1m",
    "rt_error_events",
    "rt_warning_alerts",
    "raw_archive",
)


@dataclass(frozen=True)
class QueryHealth:
    """One query's checkpoint: last committed batch and when (UTC), or None when none yet."""

    query: str
    last_batch: int | None
    committed_at: dt.datetime | None

    def age_sec(self, now: dt.datetime) -> float | None:
        """Seconds since the last commit (None: never committed)."""
        return None if self.committed_at is None else (now - self.committed_at).total_seconds()

    def is_stale(self, now: dt.datetime, max_age_sec: float) -> bool:
        age = self.age_sec(now)
        return age is None or age > max_age_sec


def _commits_local(folder: Path) -> list[tuple[int, dt.datetime]]:
    if not folder.is_dir():
        return []
    return [
        (int(p.name), dt.datetime.fromtimestamp(p.stat().st_mtime, dt.UTC))
        for p in folder.iterdir()
        if p.name.isdigit()
    ]


def _commits_s3(uri: str) -> list[tuple[int, dt.datetime]]:
    import boto3

    bucket, _, prefix = uri.split("://", 1)[1].partition("/")
    prefix = prefix.rstrip("/") + "/"
    pages = (
        boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    )
    out = []
    for page in pages:
        for item in page.get("Contents", []):
            name = item["Key"][len(prefix) :]
            if name.isdigit():
                out.append((int(name), item["LastModified"].astimezone(dt.UTC)))
    return out


def query_health(settings: Settings, query: str) -> QueryHealth:
    """The last commit of ``query`` under ``<root>/rt/_checkpoints/<query>/commits``."""
    folder = f"{settings.lakehouse_root}/rt/_checkpoints/{query}/commits"
    if folder.startswith(("s3a://", "s3://")):
        commits = _commits_s3(folder)
    else:
        commits = _commits_local(Path(folder))
    if not commits:
        return QueryHealth(query, None, None)
    batch, when = max(commits)
    return QueryHealth(query, batch, when)


def stale_queries(
    settings: Settings,
    max_age_sec: float,
    queries: tuple[str, ...] = STREAM_QUERIES,
    now: dt.datetime | None = None,
) -> list[str]:
    """Problems, one line per stale query (empty when every query committed recently).

    Args:
        max_age_sec: how old the last commit may be (``LAKEHOUSE_STREAM_MAX_COMMIT_AGE_SEC``).
        queries: the queries expected to run.
        now: the current time (UTC); default the clock.
    """
    now = now or dt.datetime.now(dt.UTC)
    problems = []
    for query in queries:
        health = query_health(settings, query)
        if health.committed_at is None:
            problems.append(f"{query}: no committed micro-batch in its checkpoint")
        elif health.is_stale(now, max_age_sec):
            problems.append(
                f"{query}: last batch {health.last_batch} committed "
                f"{health.age_sec(now):.0f} s ago (limit {max_age_sec:.0f} s)"
            )
    return problems
