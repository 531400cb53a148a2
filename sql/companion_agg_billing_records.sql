-- External billing records up to the report day (daily billing aggregation, SPEC §7.2).
SELECT company_name, bill_date, bill_amount_base
FROM billing_record
WHERE bill_date <= :day
