-- Quantities billed per basic register and invoice period (ISSUED invoices issued before the run
-- date, periods ending within the look-back): the billing system's count of what each read pair
-- used, which settles how many times a dial turned between two reads (docs/METHOD.md "Dial turns").
SELECT il.meter_register_id AS meter_register_id,
       i.id                 AS invoice_id,
       i.issue_date         AS issue_date,
       il.period_start      AS period_start,
       il.period_end        AS period_end,
       SUM(il.quantity)     AS quantity
FROM invoice_line il
JOIN invoice i ON i.id = il.invoice_id
JOIN meter_register r ON r.id = il.meter_register_id
JOIN meter m ON m.id = r.meter_id
WHERE i.status = 'ISSUED'
  AND i.issue_date < :run_date
  AND il.period_end >= :history_start
  AND il.item_type <> 'SUPPLY'
  AND m.interval_minutes IS NULL
GROUP BY il.meter_register_id, i.id, i.issue_date, il.period_start, il.period_end
