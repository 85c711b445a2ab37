-- dws_retention_1d: one row per (app_id, cohort_dt, day_n), day_n 0..30: users first seen on
-- cohort_dt and those of them active on activity_dt = cohort_dt + day_n.
-- Key: (app_id, cohort_dt, day_n); partitioned by dt (DATE, UTC) = activity_dt.
--
-- Athena (engine v3) reads Delta Lake natively: columns, types and the dt partitioning come
-- from the table's Delta transaction log and are kept in sync in the Glue catalog, so this
-- statement has no column list (Athena rejects one for Delta). Replace ${LAKE_BUCKET} with the
-- lakehouse root without its scheme (bucket or bucket/prefix) and run it in the Athena database
-- that BI uses (see sql/README.md).
CREATE EXTERNAL TABLE dws_retention_1d
LOCATION 's3://${LAKE_BUCKET}/dws/dws_retention_1d/'
TBLPROPERTIES ('table_type' = 'DELTA');
