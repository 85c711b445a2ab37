-- dws_conversion_1d: one row per (app_id, dt): sessions starting on dt and the ordered funnel.
-- Key: (app_id, dt). A Redshift table loaded day by day from the Parquet exports that
-- `lakehouse bi-publish` writes (<root>/exports/dws_conversion_1d/dt=YYYY-MM-DD/): see
-- sql/redshift/load/load_day.sql. The BI views (views/) read it from the clickstream schema.
-- DISTKEY app_id keeps an app's rows on one slice (the views group by app); the sort key dt
-- serves the date-range filters every dashboard applies. dt is the load's unit: a day is
-- deleted and inserted again in one transaction, so a reload replaces it.
-- Columns mirror spark_jobs/common/schemas.py. Locally the same file creates the table on
-- PostgreSQL (`lakehouse warehouse start`), with the Redshift-only clauses (ENCODE, DISTSTYLE,
-- DISTKEY, SORTKEY) removed by sqlglot.
CREATE TABLE IF NOT EXISTS clickstream.dws_conversion_1d (
    dt DATE NOT NULL ENCODE RAW,
    app_id VARCHAR(1024) NOT NULL ENCODE ZSTD,
    sessions BIGINT NOT NULL ENCODE AZ64,
    product_view_sessions BIGINT NOT NULL ENCODE AZ64,
    add_to_cart_sessions BIGINT NOT NULL ENCODE AZ64,
    purchase_sessions BIGINT NOT NULL ENCODE AZ64,
    sessions_with_purchase BIGINT NOT NULL ENCODE AZ64,
    session_conversion_rate DOUBLE PRECISION ENCODE ZSTD,
    PRIMARY KEY (app_id, dt)
)
DISTSTYLE KEY
DISTKEY (app_id)
COMPOUND SORTKEY (dt, app_id);
