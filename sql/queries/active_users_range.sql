-- active_users_range: the audience of one app, day by day over a date range.
-- Answers: how many users were active on each day (DAU), in the 7 and 30 days ending on it (WAU,
-- MAU), how many were new or returning, and how sticky the app was (DAU / MAU).
-- Parameters:
--   :app_id      the app (rpt_active_users.app_id)
--   :start_date  first day of the range, 'YYYY-MM-DD' (UTC), inclusive
--   :end_date    last day of the range, 'YYYY-MM-DD' (UTC), inclusive
-- Grain: one row per dt in the range (rpt_active_users has every day from the app's first
-- event, days without users included).
-- WAU and MAU are distinct users over the window ending on each day: never add them up over the
-- range (a user active on 5 days would count 5 times).
SELECT
    au.dt,
    au.dau,
    au.wau,
    au.mau,
    au.new_users,
    au.returning_users,
    au.stickiness
FROM rpt_active_users AS au
WHERE
    au.app_id = :app_id
    AND au.dt BETWEEN CAST(:start_date AS DATE) AND CAST(:end_date AS DATE)
ORDER BY au.dt;
