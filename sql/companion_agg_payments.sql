-- Payments up to the end of the report day (naive UTC bound of the local day's end), SPEC §7.2.
SELECT account_id, payment_date, amount, status, method
FROM payment
WHERE payment_date < :end_utc
