SELECT ap.account_id AS account_id, ap.plan_id AS plan_id, ap.start_date AS start_date, ap.end_date AS end_date
FROM account_plan ap
WHERE ap.start_date <= :period_end
  AND (ap.end_date IS NULL OR ap.end_date >= :period_start)
