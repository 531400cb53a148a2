-- What the true-up reads of the previous run (the latest run_date before the run date with rows in
-- bua_account_summary): a cheap content fingerprint, part of the validation phase's cache key, so
-- that re-running an earlier run date with different results makes a later run's true-up recompute.
SELECT s.run_date AS run_date,
       COUNT(*) AS account_rows,
       SUM(s.net_amount) AS net_amount,
       SUM(s.volume) AS volume,
       SUM(s.unbilled_days) AS unbilled_days
FROM bua_account_summary s
WHERE s.scenario = ''
  AND s.run_date = (SELECT MAX(p.run_date) FROM bua_account_summary p WHERE p.run_date < :run_date AND p.scenario = '')
GROUP BY s.run_date
