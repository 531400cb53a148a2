-- Rows dated one day in each source table (aggregation pre-checks); payments by local day as UTC bounds.
SELECT
  (SELECT COUNT(*) FROM invoice WHERE issue_date = :day) AS invoice,
  (SELECT COUNT(*) FROM payment WHERE payment_date >= :start_utc AND payment_date < :end_utc) AS payment,
  (SELECT COUNT(*) FROM billing_record WHERE bill_date = :day) AS billing_record
