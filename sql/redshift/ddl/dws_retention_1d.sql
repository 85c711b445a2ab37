-- dws_retention_1d: one row per (app_id, cohort_dt, day_n), day_n 0..30: users first seen on
-- cohort_dt and those of them active on activity_dt = cohort_dt + day_n.
-- Key: (app_id, cohort_dt, day_n); partitioned by dt (DATE, UTC) = activity_dt.
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
CREATE EXTERNAL TABLE clickstream_lake.dws_retention_1d (
    app_id VARCHAR(65535),
    cohort_dt DATE,
    day_n INT,
    activity_dt DATE,
    cohort_users BIGINT,
    retained_users BIGINT,
    retention_rate DOUBLE PRECISION
)
PARTITIONED BY (dt DATE)
ROW FORMAT SERDE 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe'
STORED AS
INPUTFORMAT 'org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
LOCATION 's3://${LAKE_BUCKET}/dws/dws_retention_1d/_symlink_format_manifest/';
