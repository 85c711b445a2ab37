-- dwd_clickstream_sessions_di: one row per session (dt = session start date).
-- Key: (session_id); partitioned by dt (DATE, UTC).
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
CREATE EXTERNAL TABLE clickstream_lake.dwd_clickstream_sessions_di (
    session_id VARCHAR(65535),
    app_id VARCHAR(65535),
    user_id VARCHAR(65535),
    session_start_ts TIMESTAMP,
    session_end_ts TIMESTAMP,
    duration_sec BIGINT,
    event_cnt BIGINT,
    page_view_cnt BIGINT,
    product_view_cnt BIGINT,
    add_to_cart_cnt BIGINT,
    remove_from_cart_cnt BIGINT,
    checkout_cnt BIGINT,
    purchase_cnt BIGINT,
    order_cancelled_cnt BIGINT,
    error_cnt BIGINT,
    other_cnt BIGINT,
    first_event_id VARCHAR(65535),
    is_bounce BOOLEAN,
    is_capped BOOLEAN,
    has_product_view BOOLEAN,
    has_funnel_add_to_cart BOOLEAN,
    has_funnel_purchase BOOLEAN,
    has_purchase BOOLEAN
)
PARTITIONED BY (dt DATE)
ROW FORMAT SERDE 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe'
STORED AS
INPUTFORMAT 'org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
LOCATION 's3://${LAKE_BUCKET}/dwd/dwd_clickstream_sessions_di/_symlink_format_manifest/';
