-- Payment behaviour of issued invoices before the run date (pay-on-time propensity, SPEC 4.4).
SELECT
    i.account_id AS account_id,
    i.status     AS status,
    i.issue_date AS issue_date,
    i.due_date   AS due_date,
    i.paid_date  AS paid_date
FROM invoice i
WHERE i.issue_date < :run_date
  AND i.status = 'ISSUED'
