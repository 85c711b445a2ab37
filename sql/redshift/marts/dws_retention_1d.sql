-- dws_retention_1d: one row per (app_id, cohort_dt, day_n), day_n 0..30; dt = activity date.
-- Key: (app_id, cohort_dt, day_n). A Redshift table loaded day by day from the Parquet exports
-- that `lakehouse bi-publish` writes (<root>/exports/dws_retention_1d/dt=YYYY-MM-DD/): see
-- sql/redshift/load/load_day.sql. The BI views (views/) read it from the clickstream schema.
-- DISTKEY app_id keeps an app's rows on one slice (the views group by app); the sort key dt
-- serves the date-range filters every dashboard applies. dt is the load's unit: a day is
-- deleted and inserted again in one transaction, so a reload replaces it.
-- Columns mirror spark_jobs/common/schemas.py. Locally the same file creates the table on
-- PostgreSQL (`lakehouse warehouse start`), with the Redshift-only clauses (ENCODE, DISTSTYLE,
-- DISTKEY, SORTKEY) removed by sqlglot.
CREATE TABLE IF NOT EXISTS clickstream.dws_retention_1d (
    dt DATE NOT NULL ENCODE RAW,
    app_id VARCHAR(1024) NOT NULL ENCODE ZSTD,
    cohort_dt DATE NOT NULL ENCODE AZ64,
    day_n INTEGER NOT NULL ENCODE AZ64,
    activity_dt DATE NOT NULL ENCODE AZ64,
    cohort_users BIGINT NOT NULL ENCODE AZ64,
    retained_users BIGINT NOT NULL ENCODE AZ64,
    retention_rate DOUBLE PRECISION ENCODE ZSTD,
    PRIMARY KEY (app_id, cohort_dt, day_n)
)
DISTSTYLE KEY
DISTKEY (app_id)
COMPOUND SORTKEY (dt, app_id);
