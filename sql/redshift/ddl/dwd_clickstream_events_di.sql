-- dwd_clickstream_events_di: one row per distinct event_id, cleaned and sessionised.
-- Key: (event_id); partitioned by dt (DATE, UTC).
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
CREATE EXTERNAL TABLE clickstream_lake.dwd_clickstream_events_di (
    event_id VARCHAR(65535),
    app_id VARCHAR(65535),
    event_ts TIMESTAMP,
    user_id VARCHAR(65535),
    event_name VARCHAR(65535),
    event_type VARCHAR(65535),
    product_id VARCHAR(65535),
    category VARCHAR(65535),
    brand VARCHAR(65535),
    price DECIMAL(18, 4),
    quantity INT,
    device_type VARCHAR(65535),
    ip VARCHAR(65535),
    user_agent VARCHAR(65535),
    page_url VARCHAR(65535),
    error_msg VARCHAR(65535),
    attributes MAP<VARCHAR(65535), VARCHAR(65535)>,
    session_id VARCHAR(65535),
    session_start_ts TIMESTAMP,
    etl_source_object VARCHAR(65535),
    etl_ingest_ts TIMESTAMP
)
PARTITIONED BY (dt DATE)
ROW FORMAT SERDE 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe'
STORED AS
INPUTFORMAT 'org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
LOCATION 's3://${LAKE_BUCKET}/dwd/dwd_clickstream_events_di/_symlink_format_manifest/';
