-- etl_ingest_manifest: one row per ingested raw object, with its record counts.
-- Key: (etl_source_object); partitioned by dt (DATE, UTC).
--
-- Redshift Spectrum external table over the Delta table's symlink manifest, the standard way for
-- Spectrum to read Delta Lake: Spectrum reads only the Parquet files listed in
-- _symlink_format_manifest/dt=<date>/manifest, i.e. the current Delta snapshot (a plain Parquet
-- table over the folder would also read files that later commits removed). Chosen over a
-- CREATE TABLE + COPY target so the lake stays the one copy of the data.
-- Columns mirror spark_jobs/common/schemas.py (strings as VARCHAR(65535)); dt is the partition
-- column. Regenerate the manifest after each write and register each dt partition with
-- ALTER TABLE ... ADD PARTITION: see sql/README.md. clickstream_lake is the external schema;
-- ${LAKE_BUCKET} is the lakehouse root without its scheme (bucket or bucket/prefix).
CREATE EXTERNAL TABLE clickstream_lake.etl_ingest_manifest (
    etl_source_object VARCHAR(65535),
    stream VARCHAR(65535),
    layout VARCHAR(65535),
    etl_source_schema VARCHAR(65535),
    object_size_bytes BIGINT,
    raw_records BIGINT,
    ods_rows BIGINT,
    rejected_rows BIGINT,
    event_dates ARRAY<DATE>,
    app_ids ARRAY<VARCHAR(65535)>,
    etl_ingest_ts TIMESTAMP
)
PARTITIONED BY (dt DATE)
ROW FORMAT SERDE 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe'
STORED AS
INPUTFORMAT 'org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
LOCATION 's3://${LAKE_BUCKET}/etl/etl_ingest_manifest/_symlink_format_manifest/';
