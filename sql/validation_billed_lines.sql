-- Lines of the ISSUED invoices issued on or after the previous run date and before the run date.
SELECT i.account_id       AS account_id,
       il.item_type       AS item_type,
       il.period_start    AS period_start,
       il.period_end      AS period_end,
       il.quantity        AS quantity,
       il.net_amount      AS net_amount,
       il.discount_amount AS discount_amount
FROM invoice_line il
JOIN invoice i ON i.id = il.invoice_id
WHERE i.status = 'ISSUED'
  AND i.issue_date >= :since
  AND i.issue_date < :run_date
