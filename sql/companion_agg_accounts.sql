-- Accounts of the daily billing aggregation (SPEC §7.2).
SELECT id, account_number
FROM account
