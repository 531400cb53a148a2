-- accrual_summary for one run date and scenario (SPEC 4.5), the legacy summary: invoice_line_item_monthly joined to
-- bua_account_summary, grouped by ili_state, discount_state, feature_type_name, state, fuel, segment,
-- year_mnth and time_class_name. volume = USAGE_RETAIL quantity, days = DAILY_RETAIL quantity,
-- net_amount_less_discount = net_amount - discount_net_propensity. Runs inside prepare's transaction.
-- run_id and run_date are the same on every row of the run date (prepare replaces them all), so they
-- are aggregated (MIN) rather than grouped: the GROUP BY sort compares 8 keys instead of 10 (two
-- constant 36- and 10-character strings first on every comparison: ~25% of the query's CPU at 100k
-- accounts); the groups, their order and their sums are the same.
INSERT INTO accrual_summary (
    run_id, run_date, scenario, ili_state, discount_state, feature_type_name, state, fuel, segment, year_mnth,
    time_class_name, net_amount, volume, days, accounts, discount_net, discount_net_propensity,
    net_amount_less_discount
)
SELECT
    MIN(l.run_id),
    MIN(l.run_date),
    MIN(l.scenario),
    l.ili_state,
    l.discount_state,
    l.feature_type_name,
    s.jurisdiction,
    s.service_type,
    s.journal_segment,
    l.year_mnth,
    l.time_class_name,
    ROUND(SUM(l.net_amount), 2),
    ROUND(SUM(CASE WHEN l.plan_item_type_name = 'USAGE_RETAIL' THEN l.quantity ELSE 0 END), 3),
    ROUND(SUM(CASE WHEN l.plan_item_type_name = 'DAILY_RETAIL' THEN l.quantity ELSE 0 END), 0),
    COUNT(DISTINCT l.account_id),
    ROUND(SUM(l.discount_net), 2),
    ROUND(SUM(l.discount_net_propensity), 2),
    ROUND(SUM(l.net_amount) - SUM(l.discount_net_propensity), 2)
FROM invoice_line_item_monthly l
JOIN bua_account_summary s
  ON s.run_date = l.run_date AND s.scenario = l.scenario AND s.account_id = l.account_id
WHERE l.run_date = :run_date AND l.scenario = :scenario
GROUP BY
    l.ili_state, l.discount_state, l.feature_type_name, s.jurisdiction,
    s.service_type, s.journal_segment, l.year_mnth, l.time_class_name
