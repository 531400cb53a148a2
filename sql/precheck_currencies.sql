-- Pre-run check (SPEC §4.0, §7.1): currencies of billing records without an FX rate valid before
-- the run date.
SELECT br.currency AS currency, COUNT(*) AS records
FROM billing_record br
WHERE br.currency IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM fx_rate f WHERE f.currency = br.currency AND f.valid_from < :run_date)
GROUP BY br.currency
