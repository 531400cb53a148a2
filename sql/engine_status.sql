-- External billing engine: the status of the run date's invoice run (one row, column `status`:
-- RUNNING, COMPLETED/SUCCEEDED/DONE, or FAILED/ERROR/CANCELLED; no row = not started yet).
SELECT r.status AS status
FROM billing_engine_run r
WHERE r.run_date = :run_date
