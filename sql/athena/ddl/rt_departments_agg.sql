-- rt_departments_agg: one row per (10 s window of session end, department) touched by a session.
-- Key: (departmentName, windowBeginTime); not partitioned: the streaming job (lakehouse stream)
-- appends one Delta commit per micro-batch; windowBeginTime (BIGINT epoch ms UTC) places a row
-- in time. Columns keep the labs' camelCase JSON names; window bounds are epoch ms, [begin,
-- end).
--
-- Athena (engine v3) reads Delta Lake natively: columns and types come from the table's
-- Delta transaction log and are kept in sync in the Glue catalog, so this statement has no
-- column list (Athena rejects one for Delta); Athena shows the names in lower case. Replace
-- ${LAKE_BUCKET} with the lakehouse root without its scheme (bucket or bucket/prefix) and run
-- it in the Athena database that BI uses (see sql/README.md).
CREATE EXTERNAL TABLE rt_departments_agg
LOCATION 's3://${LAKE_BUCKET}/rt/rt_departments_agg/'
TBLPROPERTIES ('table_type' = 'DELTA');
