-- The accounts accrued by the given run date, with their unbilled window.
SELECT s.account_id      AS account_id,
       s.service_type    AS service_type,
       s.jurisdiction    AS jurisdiction,
       s.customer_class  AS customer_class,
       s.journal_segment AS journal_segment,
       s.unbilled_from   AS unbilled_from,
       s.unbilled_to     AS unbilled_to
FROM bua_account_summary s
WHERE s.run_date = :run_date AND s.scenario = ''
