-- Load one day of a DWS mart (marts/<table>.sql) from the Parquet export that
-- `lakehouse bi-publish` writes to <root>/exports/<table>/dt=YYYY-MM-DD/.
-- Idempotent: in one transaction the day is deleted and inserted again, so loading a day twice
-- leaves the mart unchanged and a day re-published after a late-data rebuild is replaced.
-- The export files hold every column but dt (it is the folder name): COPY fills a staging table
-- of the mart's columns without dt, and the INSERT puts the day in front (dt is the marts'
-- first column). The local warehouse does the same in Python (spark_jobs/serving/warehouse.py,
-- load_day), because PostgreSQL cannot COPY Parquet.
-- Placeholders (envsubst): ${TABLE}, ${LAKE_BUCKET} (the lakehouse root without its scheme),
-- ${DT} (YYYY-MM-DD), ${IAM_ROLE} (a role Redshift may assume to read the exports).
BEGIN;

CREATE TEMP TABLE stage_${TABLE} (LIKE clickstream.${TABLE});

ALTER TABLE stage_${TABLE} DROP COLUMN dt;

COPY stage_${TABLE}
FROM 's3://${LAKE_BUCKET}/exports/${TABLE}/dt=${DT}/'
IAM_ROLE '${IAM_ROLE}'
FORMAT AS PARQUET;

DELETE FROM clickstream.${TABLE} WHERE dt = '${DT}';

INSERT INTO clickstream.${TABLE}
SELECT CAST('${DT}' AS DATE) AS dt, s.* FROM stage_${TABLE} AS s;

DROP TABLE stage_${TABLE};

COMMIT;
