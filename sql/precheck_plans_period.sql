-- Pre-run check (SPEC §4.0, §9): plans held by an account on some day of the accrual period
-- (period_start … the day before the run date) without a single rate valid in that period: the
-- days the accounts hold them cannot be rated at all (a plan dropped from the tariff tables, or
-- held only by accounts that closed before the run date, which the day-before check cannot see).
SELECT
    p.id                            AS plan_id,
    p.code                          AS plan_code,
    COUNT(DISTINCT ap.account_id)   AS accounts
FROM account_plan ap
JOIN plan p ON p.id = ap.plan_id
JOIN account a ON a.id = ap.account_id AND (a.close_date IS NULL OR a.close_date >= :period_start)
WHERE ap.start_date <= :last_day AND (ap.end_date IS NULL OR ap.end_date >= :period_start)
  AND NOT EXISTS (SELECT 1 FROM plan_rate pr WHERE pr.plan_id = ap.plan_id
                    AND pr.valid_from <= :last_day AND (pr.valid_to IS NULL OR pr.valid_to >= :period_start))
GROUP BY p.id, p.code
