-- rpt_funnel: one row per (app_id, dt, funnel step) from dws_conversion_1d, over the sessions
-- that started on dt. Steps of the ordered funnel: 1 session, 2 product_view, 3 add_to_cart,
-- 4 purchase (a session reaches a step only after the previous ones, in order).
-- Answers: how many sessions reached each step and what share of the previous step did.
--   step_sessions          sessions that reached the step
--   previous_step_sessions sessions that reached the step before (step 1: all sessions)
--   step_conversion_rate   step_sessions / previous_step_sessions (null when 0)
--   conversion_from_start  step_sessions / sessions (null when 0)
-- Over a date range, sum step_sessions and previous_step_sessions and divide (do not average
-- the daily rates).
-- Redshift: reads the mart loaded by bi-publish (marts/). Written in the subset that Redshift and
-- PostgreSQL share, so the same text runs on the local warehouse (lakehouse warehouse start).
CREATE OR REPLACE VIEW rpt_funnel AS
WITH steps AS (
    SELECT
        app_id,
        dt,
        1 AS step_no,
        'session' AS step,
        sessions AS step_sessions,
        sessions AS previous_step_sessions,
        sessions AS first_step_sessions
    FROM clickstream.dws_conversion_1d
    UNION ALL
    SELECT
        app_id,
        dt,
        2 AS step_no,
        'product_view' AS step,
        product_view_sessions AS step_sessions,
        sessions AS previous_step_sessions,
        sessions AS first_step_sessions
    FROM clickstream.dws_conversion_1d
    UNION ALL
    SELECT
        app_id,
        dt,
        3 AS step_no,
        'add_to_cart' AS step,
        add_to_cart_sessions AS step_sessions,
        product_view_sessions AS previous_step_sessions,
        sessions AS first_step_sessions
    FROM clickstream.dws_conversion_1d
    UNION ALL
    SELECT
        app_id,
        dt,
        4 AS step_no,
        'purchase' AS step,
        purchase_sessions AS step_sessions,
        add_to_cart_sessions AS previous_step_sessions,
        sessions AS first_step_sessions
    FROM clickstream.dws_conversion_1d
)

SELECT
    app_id,
    dt,
    step_no,
    step,
    step_sessions,
    previous_step_sessions,
    CAST(step_sessions AS DOUBLE PRECISION)
    / NULLIF(previous_step_sessions, 0) AS step_conversion_rate,
    CAST(step_sessions AS DOUBLE PRECISION)
    / NULLIF(first_step_sessions, 0) AS conversion_from_start
FROM steps;
