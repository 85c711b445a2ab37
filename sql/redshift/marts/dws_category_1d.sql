-- dws_category_1d: one row per (app_id, dt, category) with at least one event.
-- Key: (app_id, dt, category). A Redshift table loaded day by day from the Parquet exports that
-- `lakehouse bi-publish` writes (<root>/exports/dws_category_1d/dt=YYYY-MM-DD/): see
-- sql/redshift/load/load_day.sql. The BI views (views/) read it from the clickstream schema.
-- DISTKEY app_id keeps an app's rows on one slice (the views group by app); the sort key dt
-- serves the date-range filters every dashboard applies. dt is the load's unit: a day is
-- deleted and inserted again in one transaction, so a reload replaces it.
-- Columns mirror spark_jobs/common/schemas.py. Locally the same file creates the table on
-- PostgreSQL (`lakehouse warehouse start`), with the Redshift-only clauses (ENCODE, DISTSTYLE,
-- DISTKEY, SORTKEY) removed by sqlglot.
CREATE TABLE IF NOT EXISTS clickstream.dws_category_1d (
    dt DATE NOT NULL ENCODE RAW,
    app_id VARCHAR(1024) NOT NULL ENCODE ZSTD,
    category VARCHAR(1024) NOT NULL ENCODE ZSTD,
    product_views BIGINT NOT NULL ENCODE AZ64,
    add_to_carts BIGINT NOT NULL ENCODE AZ64,
    purchases BIGINT NOT NULL ENCODE AZ64,
    revenue DECIMAL(38, 4) NOT NULL ENCODE AZ64,
    sessions BIGINT NOT NULL ENCODE AZ64,
    PRIMARY KEY (app_id, dt, category)
)
DISTSTYLE KEY
DISTKEY (app_id)
COMPOUND SORTKEY (dt, app_id);
