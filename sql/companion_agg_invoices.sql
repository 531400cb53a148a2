-- Invoices issued on or before the report day (daily billing aggregation, SPEC §7.2).
SELECT account_id, issue_date, status, net_amount, gst_amount, due_date, paid_date
FROM invoice
WHERE issue_date <= :day
