-- Pre-run check (SPEC §4.0, §9): plans held by an account on the day before the run date, with the
-- number of their rates valid that day (a plan with none cannot be rated at all) and the accounts
-- holding them; and accounts open that day without any plan (plan_id NULL).
SELECT
    ap.plan_id                      AS plan_id,
    p.code                          AS plan_code,
    COUNT(DISTINCT ap.account_id)   AS accounts,
    (SELECT COUNT(*) FROM plan_rate pr
      WHERE pr.plan_id = ap.plan_id AND pr.valid_from <= :last_day
        AND (pr.valid_to IS NULL OR pr.valid_to >= :last_day)) AS rates
FROM account_plan ap
JOIN account a ON a.id = ap.account_id AND (a.close_date IS NULL OR a.close_date >= :last_day)
LEFT JOIN plan p ON p.id = ap.plan_id
WHERE ap.start_date <= :last_day AND (ap.end_date IS NULL OR ap.end_date >= :last_day)
GROUP BY ap.plan_id, p.code
UNION ALL
SELECT NULL, NULL, COUNT(*), NULL
FROM account a
WHERE a.open_date <= :last_day AND (a.close_date IS NULL OR a.close_date >= :last_day)
  AND NOT EXISTS (SELECT 1 FROM account_plan ap WHERE ap.account_id = a.id
                    AND ap.start_date <= :last_day AND (ap.end_date IS NULL OR ap.end_date >= :last_day))
