-- rpt_category_revenue: one row per (app_id, dt, category) from dws_category_1d.
-- Answers: which categories earn the day's revenue, and what share of it each earns.
--   day_revenue   revenue of all the app's categories on dt
--   revenue_share revenue / day_revenue (null when day_revenue = 0)
--   revenue_rank  1 = the day's top category (ties share a rank)
-- Revenue is DECIMAL(38,4) in the app's source currency: compare shares, not amounts, across apps.
-- Redshift: reads the mart loaded by bi-publish (marts/). Written in the subset that Redshift and
-- PostgreSQL share, so the same text runs on the local warehouse (lakehouse warehouse start).
CREATE OR REPLACE VIEW rpt_category_revenue AS
SELECT
    c.app_id,
    c.dt,
    c.category,
    c.product_views,
    c.add_to_carts,
    c.purchases,
    c.sessions,
    c.revenue,
    SUM(c.revenue) OVER (PARTITION BY c.app_id, c.dt) AS day_revenue,
    CAST(c.revenue AS DOUBLE PRECISION)
    / NULLIF(CAST(SUM(c.revenue) OVER (PARTITION BY c.app_id, c.dt) AS DOUBLE PRECISION), 0)
        AS revenue_share,
    RANK() OVER (PARTITION BY c.app_id, c.dt ORDER BY c.revenue DESC) AS revenue_rank
FROM clickstream.dws_category_1d AS c;
