-- External billing engine: the run date's invoice lines in the shape of invoice_line_item_monthly
-- (SPEC 4.5, without run_id and run_date, which bua adds). Edit the FROM and the expressions for
-- another engine's tables; the column names are the contract.
SELECT
    l.account_id              AS account_id,
    a.account_number          AS account_number,
    l.year_mnth               AS year_mnth,
    l.ili_state               AS ili_state,
    l.discount_state          AS discount_state,
    l.plan_item_type_name     AS plan_item_type_name,
    l.feature_type_name       AS feature_type_name,
    l.time_class_name         AS time_class_name,
    l.unit                    AS unit,
    l.quantity                AS quantity,
    l.quantity_actual         AS quantity_actual,
    l.quantity - l.quantity_actual AS quantity_estimated,
    l.net_amount              AS net_amount,
    l.discount_net            AS discount_net,
    l.discount_net_propensity AS discount_net_propensity,
    l.gst_amount              AS gst_amount
FROM billing_engine_line l
JOIN account a ON a.id = l.account_id
WHERE l.run_date = :run_date
