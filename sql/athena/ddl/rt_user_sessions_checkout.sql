-- rt_user_sessions_checkout: one row per user session (1 s gap) with an order_checkout, final
-- once the watermark passes its end. Key: (userId, windowBeginTime); not partitioned: the
-- streaming job (lakehouse stream) appends one Delta commit per micro-batch; windowBeginTime
-- (BIGINT epoch ms UTC) places a row in time. Columns keep the labs' camelCase JSON names;
-- window bounds are epoch ms, [begin, end).
--
-- Athena (engine v3) reads Delta Lake natively: columns and types come from the table's
-- Delta transaction log and are kept in sync in the Glue catalog, so this statement has no
-- column list (Athena rejects one for Delta); Athena shows the names in lower case. Replace
-- ${LAKE_BUCKET} with the lakehouse root without its scheme (bucket or bucket/prefix) and run
-- it in the Athena database that BI uses (see sql/README.md).
CREATE EXTERNAL TABLE rt_user_sessions_checkout
LOCATION 's3://${LAKE_BUCKET}/rt/rt_user_sessions_checkout/'
TBLPROPERTIES ('table_type' = 'DELTA');
