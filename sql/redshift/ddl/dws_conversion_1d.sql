-- dws_conversion_1d: one row per (app_id, dt): sessions starting on dt and the ordered funnel.
-- Key: (app_id, dt); partitioned by dt (DATE, UTC).
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
CREATE EXTERNAL TABLE clickstream_lake.dws_conversion_1d (
    app_id VARCHAR(65535),
    sessions BIGINT,
    product_view_sessions BIGINT,
    add_to_cart_sessions BIGINT,
    purchase_sessions BIGINT,
    sessions_with_purchase BIGINT,
    session_conversion_rate DOUBLE PRECISION
)
PARTITIONED BY (dt DATE)
ROW FORMAT SERDE 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe'
STORED AS
INPUTFORMAT 'org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
LOCATION 's3://${LAKE_BUCKET}/dws/dws_conversion_1d/_symlink_format_manifest/';
