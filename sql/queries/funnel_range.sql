-- funnel_range: the ordered session funnel of one app over a date range.
-- Answers: how many sessions started in the range reached each step (session -> product_view ->
-- add_to_cart -> purchase) and what share of the previous step, and of all sessions, did.
-- Parameters:
--   :app_id      the app (rpt_funnel.app_id)
--   :start_date  first session start day, 'YYYY-MM-DD' (UTC), inclusive
--   :end_date    last session start day, 'YYYY-MM-DD' (UTC), inclusive
-- Grain: one row per funnel step (step_no 1..4); no rows when the app has none in the range.
-- The rates are re-aggregated from the daily counts: SUM(step_sessions) /
-- SUM(previous_step_sessions) over the range, never an average of the daily rates.
WITH range_steps AS (
    SELECT
        f.step_no,
        f.step,
        SUM(f.step_sessions) AS step_sessions,
        SUM(f.previous_step_sessions) AS previous_step_sessions
    FROM rpt_funnel AS f
    WHERE
        f.app_id = :app_id
        AND f.dt BETWEEN CAST(:start_date AS DATE) AND CAST(:end_date AS DATE)
    GROUP BY f.step_no, f.step
),

first_step AS (
    SELECT rs.step_sessions AS sessions
    FROM range_steps AS rs
    WHERE rs.step_no = 1
)

SELECT
    s.step_no,
    s.step,
    s.step_sessions,
    s.previous_step_sessions,
    CAST(s.step_sessions AS DOUBLE) / NULLIF(s.previous_step_sessions, 0) AS step_conversion_rate,
    CAST(s.step_sessions AS DOUBLE) / NULLIF(fs.sessions, 0) AS conversion_from_start
FROM range_steps AS s
CROSS JOIN first_step AS fs
ORDER BY s.step_no;
