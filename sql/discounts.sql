SELECT d.account_id AS account_id, d.discount_type AS discount_type, d.percent AS percent,
       d.applies_to AS applies_to, d.start_date AS start_date, d.end_date AS end_date
FROM account_discount d
WHERE d.start_date <= :period_end
  AND (d.end_date IS NULL OR d.end_date >= :period_start)
