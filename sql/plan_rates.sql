-- Rates valid at some point of the accrual period.
SELECT pr.plan_id AS plan_id, pr.item_type AS item_type, pr.time_class AS time_class,
       pr.block_limit_per_day AS block_limit_per_day, pr.rate AS rate,
       pr.valid_from AS valid_from, pr.valid_to AS valid_to
FROM plan_rate pr
WHERE pr.valid_from <= :period_end
  AND (pr.valid_to IS NULL OR pr.valid_to >= :period_start)
