-- category_top: the categories of one app that earned the most revenue over a date range.
-- Answers: which categories earned the range's revenue, what share of it each earned, and how
-- their product views, add-to-carts and purchases compare.
-- Parameters:
--   :app_id      the app (rpt_category_revenue.app_id)
--   :start_date  first day of the range, 'YYYY-MM-DD' (UTC), inclusive
--   :end_date    last day of the range, 'YYYY-MM-DD' (UTC), inclusive
--   :top_n       how many ranks to return, a positive integer ('10')
-- Grain: one row per category with revenue_rank <= top_n (1 = most revenue; tied categories
-- share a rank, so there can be more than top_n rows).
-- Counts and revenue are summed over the days of the range; revenue_share is the category's
-- revenue / the revenue of all the app's categories in the range (never an average of the daily
-- shares). Revenue is in the app's source currency.
WITH category_range AS (
    SELECT
        c.category,
        SUM(c.product_views) AS product_views,
        SUM(c.add_to_carts) AS add_to_carts,
        SUM(c.purchases) AS purchases,
        SUM(c.revenue) AS revenue
    FROM rpt_category_revenue AS c
    WHERE
        c.app_id = :app_id
        AND c.dt BETWEEN CAST(:start_date AS DATE) AND CAST(:end_date AS DATE)
    GROUP BY c.category
),

ranked AS (
    SELECT
        cr.category,
        cr.product_views,
        cr.add_to_carts,
        cr.purchases,
        cr.revenue,
        CAST(cr.revenue AS DOUBLE)
        / NULLIF(CAST(SUM(cr.revenue) OVER () AS DOUBLE), 0) AS revenue_share,
        RANK() OVER (ORDER BY cr.revenue DESC) AS revenue_rank
    FROM category_range AS cr
)

SELECT
    r.revenue_rank,
    r.category,
    r.revenue,
    r.revenue_share,
    r.product_views,
    r.add_to_carts,
    r.purchases
FROM ranked AS r
WHERE r.revenue_rank <= CAST(:top_n AS INTEGER)
ORDER BY r.revenue_rank, r.category;
