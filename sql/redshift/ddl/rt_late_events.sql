-- rt_late_events: one row per (stateful query, input record) the query dropped behind its
-- watermark. Key: (query, etl_topic, etl_partition, etl_offset); not partitioned: the streaming
-- job (lakehouse stream) appends one Delta commit per micro-batch; eventTime (BIGINT epoch ms
-- UTC) places a row in time. Columns keep the labs' camelCase JSON names; window bounds are
-- epoch ms, [begin, end).
--
-- Redshift Spectrum external table over the Delta table's symlink manifest, the standard way for
-- Spectrum to read Delta Lake (only the Parquet files of the current snapshot). The table is
-- not partitioned, so the manifest is one file, _symlink_format_manifest/manifest, rewritten by
-- every commit once delta.compatibility.symlinkFormatManifest.enabled is set (sql/README.md),
-- and no partition is ever registered. Columns mirror spark_jobs/common/schemas.py (strings
-- as VARCHAR(65535)); Redshift folds the camelCase names to lower case (windowbegintime).
-- clickstream_lake is the external schema; ${LAKE_BUCKET} is the lakehouse root without its
-- scheme (bucket or bucket/prefix).
CREATE EXTERNAL TABLE clickstream_lake.rt_late_events (
    query VARCHAR(65535),
    batchId BIGINT,
    etl_topic VARCHAR(65535),
    etl_partition INT,
    etl_offset BIGINT,
    eventId VARCHAR(65535),
    userId VARCHAR(65535),
    eventTime BIGINT,
    watermarkMs BIGINT,
    latenessMs BIGINT,
    value VARCHAR(65535)
)
ROW FORMAT SERDE 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe'
STORED AS
INPUTFORMAT 'org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
LOCATION 's3://${LAKE_BUCKET}/rt/rt_late_events/_symlink_format_manifest/';
