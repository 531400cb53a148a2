-- Pre-run check (SPEC §4.0): basic registers in service on the day before the run date, with the
-- billing cycle of the account on their site then and their latest read before the run date.
SELECT
    r.id                          AS meter_register_id,
    MAX(a.billing_cycle_months)   AS billing_cycle_months,
    MAX(b.read_date)              AS last_read
FROM meter_register r
JOIN meter m ON m.id = r.meter_id
JOIN account_site ast ON ast.site_id = m.site_id
    AND ast.start_date <= :last_day AND (ast.end_date IS NULL OR ast.end_date >= :last_day)
JOIN account a ON a.id = ast.account_id AND (a.close_date IS NULL OR a.close_date >= :last_day)
LEFT JOIN basic_read b ON b.meter_register_id = r.id AND b.read_date < :run_date
WHERE m.interval_minutes IS NULL
  AND r.start_date <= :last_day AND (r.end_date IS NULL OR r.end_date >= :last_day)
  AND m.start_date <= :last_day AND (m.end_date IS NULL OR m.end_date >= :last_day)
GROUP BY r.id
