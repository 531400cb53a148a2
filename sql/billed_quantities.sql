-- Lines billing a basic register's use (every line but SUPPLY, of registers on meters without an
-- interval length) for periods ending within the look-back. Which invoices count (ISSUED, issued
-- before the run date) is decided with the invoices query's rows (tasks/domain/billed.py): joining
-- invoice here doubles the query's time. The quantity billed between two reads settles how many
-- times a dial turned (docs/METHOD.md "Dial turns the billing system already counted").
SELECT il.meter_register_id AS meter_register_id,
       il.invoice_id        AS invoice_id,
       il.period_start      AS period_start,
       il.period_end        AS period_end,
       il.quantity          AS quantity
FROM invoice_line il
JOIN meter_register r ON r.id = il.meter_register_id
JOIN meter m ON m.id = r.meter_id
WHERE il.period_end >= :history_start
  AND il.item_type <> 'SUPPLY'
  AND m.interval_minutes IS NULL
