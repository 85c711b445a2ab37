-- rpt_retention: the cohort triangle, one row per (app_id, cohort_dt, day_n) from
-- dws_retention_1d, day_n 0..30.
-- Answers: of the users first seen on cohort_dt, how many came back n days later.
--   cohort_users   users whose first event ever is on cohort_dt (UTC)
--   retained_users those of them with an event on activity_dt = cohort_dt + day_n (day 0: all)
--   retention_rate retained_users / cohort_users (null for a cohort of 0 users)
-- A cohort has cells only up to the last processed day: the newest cohorts have fewer of them.
-- Over several cohorts, sum retained_users and cohort_users per day_n and divide (do not
-- average the cohorts' rates).
-- Redshift: reads the mart loaded by bi-publish (marts/). Written in the subset that Redshift and
-- PostgreSQL share, so the same text runs on the local warehouse (lakehouse warehouse start).
CREATE OR REPLACE VIEW rpt_retention AS
SELECT
    r.app_id,
    r.cohort_dt,
    r.day_n,
    r.activity_dt,
    r.cohort_users,
    r.retained_users,
    CAST(r.retained_users AS DOUBLE PRECISION) / NULLIF(r.cohort_users, 0) AS retention_rate
FROM clickstream.dws_retention_1d AS r;
