-- rpt_active_users: one row per (app_id, dt) from dws_active_users_1d.
-- Answers: how many users were active on the day, in the 7 and 30 days ending on it, how many
-- were new, and how sticky the app is.
--   returning_users = dau - new_users (active on dt, first seen before dt)
--   dau_wau_ratio   = dau / wau (null when wau = 0)
--   stickiness      = dau / mau, the share of the month's users active on the day (null when
--                     mau = 0); same value as dws_active_users_1d.dau_mau_ratio
-- WAU and MAU are distinct users over [dt-6, dt] and [dt-29, dt]: never sum them over days.
-- Redshift: reads the mart loaded by bi-publish (marts/). Written in the subset that Redshift and
-- PostgreSQL share, so the same text runs on the local warehouse (lakehouse warehouse start).
CREATE OR REPLACE VIEW rpt_active_users AS
SELECT
    au.app_id,
    au.dt,
    au.events,
    au.dau,
    au.wau,
    au.mau,
    au.new_users,
    au.dau - au.new_users AS returning_users,
    CAST(au.dau AS DOUBLE PRECISION) / NULLIF(au.wau, 0) AS dau_wau_ratio,
    CAST(au.dau AS DOUBLE PRECISION) / NULLIF(au.mau, 0) AS stickiness
FROM clickstream.dws_active_users_1d AS au;
