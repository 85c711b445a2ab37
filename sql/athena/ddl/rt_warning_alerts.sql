-- rt_warning_alerts: one row per (action, minute) with 10 or more WARNING events. Key: (action,
-- windowBeginTime); not partitioned: the streaming job (lakehouse stream) appends one Delta
-- commit per micro-batch; windowBeginTime (BIGINT epoch ms UTC) places a row in time. Columns
-- keep the labs' camelCase JSON names; window bounds are epoch ms, [begin, end).
--
-- Athena (engine v3) reads Delta Lake natively: columns and types come from the table's
-- Delta transaction log and are kept in sync in the Glue catalog, so this statement has no
-- column list (Athena rejects one for Delta); Athena shows the names in lower case. Replace
-- ${LAKE_BUCKET} with the lakehouse root without its scheme (bucket or bucket/prefix) and run
-- it in the Athena database that BI uses (see sql/README.md).
CREATE EXTERNAL TABLE rt_warning_alerts
LOCATION 's3://${LAKE_BUCKET}/rt/rt_warning_alerts/'
TBLPROPERTIES ('table_type' = 'DELTA');
