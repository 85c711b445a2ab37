-- retention_cohorts: how the users first seen in a date range came back, cohort by cohort.
-- Answers: of the users first seen on each day of the range (a cohort), how many were active
-- again n days later, and what share of all the range's cohorts that reached day n were.
-- Parameters:
--   :app_id      the app (rpt_retention.app_id)
--   :start_date  first cohort day (users' first day), 'YYYY-MM-DD' (UTC), inclusive
--   :end_date    last cohort day, 'YYYY-MM-DD' (UTC), inclusive
-- Grain: one row per (cohort_dt, day_n) that rpt_retention has for the cohorts in the range.
--   retention_rate        retained_users / cohort_users of the cohort (from rpt_retention)
--   range_retention_rate  SUM(retained_users) / SUM(cohort_users) over the range's cohorts
--                         with a row for that day_n: re-aggregated counts, never an average
--                         of the cohorts' rates
WITH cohorts AS (
    SELECT
        r.cohort_dt,
        r.day_n,
        r.cohort_users,
        r.retained_users,
        r.retention_rate
    FROM rpt_retention AS r
    WHERE
        r.app_id = :app_id
        AND r.cohort_dt BETWEEN CAST(:start_date AS DATE) AND CAST(:end_date AS DATE)
)

SELECT
    c.cohort_dt,
    c.day_n,
    c.cohort_users,
    c.retained_users,
    c.retention_rate,
    CAST(SUM(c.retained_users) OVER (PARTITION BY c.day_n) AS DOUBLE)
    / NULLIF(SUM(c.cohort_users) OVER (PARTITION BY c.day_n), 0) AS range_retention_rate
FROM cohorts AS c
ORDER BY c.cohort_dt, c.day_n;
