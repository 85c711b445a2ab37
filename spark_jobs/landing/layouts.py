"""Raw landing object keys, exactly as the two delivery services write them to S3.

- Kinesis Data Firehose (default S3 prefix, folders by arrival hour, UTC)::

    <prefix>/YYYY/MM/DD/HH/<stream>-<version>-YYYY-MM-DD-HH-MM-SS-<uuid>[.gz]

  Source: AWS, "Understand custom prefixes for Amazon S3 objects" / "Amazon S3 object name
  format" in the Amazon Data Firehose developer guide.

- Kafka Connect S3 sink (``TimeBasedPartitioner``, hourly ``path.format``, ``JsonFormat``)::

    <prefix>/topics/<topic>/year=YYYY/month=MM/day=DD/hour=HH/<topic>+<partition>+<offset>.json[.gz]

  with the start offset zero-padded to 10 digits. Source: Confluent, "Amazon S3 Sink Connector
  for Confluent Platform", sections "S3 Object Names" and "Partitioning".

Both write newline-delimited JSON records, gzip-compressed or plain.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

FIREHOSE = "firehose"
KAFKA = "kafka"
LAYOUTS = (FIREHOSE, KAFKA)

_FIREHOSE_RE = re.compile(
    r"(?:^|/)(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P<h>\d{2})/"
    r"(?P<stream>[A-Za-z0-9_.-]+?)-(?P<version>\d+)-"
    r"\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-(?P<uuid>[0-9a-fA-F-]{36})(?P<gz>\.gz)?$"
)
_KAFKA_RE = re.compile(
    r"(?:^|/)topics/(?P<stream>[^/]+)/year=(?P<y>\d{4})/month=(?P<m>\d{2})/day=(?P<d>\d{2})/"
    r"hour=(?P<h>\d{2})/(?P=stream)\+(?P<partition>\d+)\+(?P<offset>\d{10})\.json(?P<gz>\.gz)?$"
)


@dataclass(frozen=True)
class LandingObject:
    """What an object key tells: layout, stream (Firehose delivery stream or Kafka topic),
    arrival hour (UTC) and compression."""

    key: str
    layout: str
    stream: str
    arrival_hour: dt.datetime
    gzip: bool

    @property
    def arrival_date(self) -> dt.date:
        """UTC date the object arrived (from its key)."""
        return self.arrival_hour.date()


def parse_object_key(key: str) -> LandingObject:
    """Recognise a Firehose or Kafka Connect S3 sink object key.

    Args:
        key: the object's path or URI (anything before the layout's own folders is ignored).

    Raises:
        ValueError: the key matches neither layout.
    """
    for layout, pattern in ((FIREHOSE, _FIREHOSE_RE), (KAFKA, _KAFKA_RE)):
        match = pattern.search(key)
        if match:
            hour = dt.datetime(int(match["y"]), int(match["m"]), int(match["d"]), int(match["h"]))
            return LandingObject(key, layout, match["stream"], hour, bool(match["gz"]))
    raise ValueError(f"not a Firehose or Kafka Connect S3 sink object key: {key}")


def firehose_key(stream: str, first_record_ts: dt.datetime, uuid: str, gzip: bool = True) -> str:
    """Key of a Firehose object whose buffer started at ``first_record_ts`` (naive UTC)."""
    t = first_record_ts
    return f"{t:%Y/%m/%d/%H}/{stream}-1-{t:%Y-%m-%d-%H-%M-%S}-{uuid}" + (".gz" if gzip else "")


def kafka_key(
    topic: str, partition: int, start_offset: int, hour: dt.datetime, gzip: bool = True
) -> str:
    """Key of a Kafka Connect S3 sink object (hourly partitioner, JSON format)."""
    return (
        f"topics/{topic}/year={hour:%Y}/month={hour:%m}/day={hour:%d}/hour={hour:%H}/"
        f"{topic}+{partition}+{start_offset:010d}.json" + (".gz" if gzip else "")
    )


def date_prefixes(layout: str, day: dt.date) -> list[str]:
    """Glob patterns (relative to the landing root) for the objects that arrived on ``day``."""
    if layout == FIREHOSE:
        return [f"{day:%Y/%m/%d}/*/*"]
    if layout == KAFKA:
        return [f"topics/*/year={day:%Y}/month={day:%m}/day={day:%d}/*/*"]
    raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
