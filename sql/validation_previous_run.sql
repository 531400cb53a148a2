-- The previous run date: the latest run_date before the run date with rows in bua_account_summary
-- (its accrual is what the true-up compares with the invoices issued since). NULL when none.
SELECT MAX(s.run_date) AS run_date
FROM bua_account_summary s
WHERE s.run_date < :run_date AND s.scenario = ''
