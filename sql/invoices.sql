-- Invoices issued before the run date (ISSUED and REVERSED; the engine ignores REVERSED for billed_to).
SELECT
    i.id           AS invoice_id,
    i.account_id   AS account_id,
    i.issue_date   AS issue_date,
    i.period_start AS period_start,
    i.period_end   AS period_end,
    i.status       AS status,
    i.due_date     AS due_date,
    i.paid_date    AS paid_date
FROM invoice i
WHERE i.issue_date < :run_date
