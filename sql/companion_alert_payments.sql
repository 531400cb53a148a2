-- Payments of one revenue-alert window (SPEC §7.3); payment_date is naive UTC, the window half-open.
SELECT id, account_id, payment_date, amount, status, method
FROM payment
WHERE payment_date >= :start_utc AND payment_date < :end_utc
