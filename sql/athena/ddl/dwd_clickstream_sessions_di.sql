-- dwd_clickstream_sessions_di: one row per session (dt = session start date).
-- Key: (session_id); partitioned by dt (DATE, UTC).
--
-- Athena (engine v3) reads Delta Lake natively: columns, types and the dt partitioning come
-- from the table's Delta transaction log and are kept in sync in the Glue catalog, so this
-- statement has no column list (Athena rejects one for Delta). Replace ${LAKE_BUCKET} with the
-- lakehouse root without its scheme (bucket or bucket/prefix) and run it in the Athena database
-- that BI uses (see sql/README.md).
CREATE EXTERNAL TABLE dwd_clickstream_sessions_di
LOCATION 's3://${LAKE_BUCKET}/dwd/dwd_clickstream_sessions_di/'
TBLPROPERTIES ('table_type' = 'DELTA');
