-- The booked accrual of the given run date per account and month: volume (usage and controlled load
-- quantity), and net less the propensity-weighted discount of the supply rows and of the others.
SELECT l.account_id AS account_id,
       l.year_mnth  AS year_mnth,
       SUM(CASE WHEN l.plan_item_type_name IN ('USAGE_RETAIL', 'CONTROLLED_LOAD_RETAIL')
                THEN l.quantity ELSE 0 END) AS volume,
       SUM(CASE WHEN l.plan_item_type_name = 'DAILY_RETAIL'
                THEN l.net_amount - l.discount_net_propensity ELSE 0 END) AS supply_net,
       SUM(CASE WHEN l.plan_item_type_name <> 'DAILY_RETAIL'
                THEN l.net_amount - l.discount_net_propensity ELSE 0 END) AS usage_net
FROM invoice_line_item_monthly l
WHERE l.run_date = :run_date AND l.scenario = ''
GROUP BY l.account_id, l.year_mnth
