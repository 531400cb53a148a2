-- Accounts open before the run date with their site history, jurisdiction, network, TNI and segment.
-- One row per (account, account_site period); the engine picks the site held on the latest day.
SELECT
    a.id                   AS account_id,
    a.account_number       AS account_number,
    a.customer_class       AS customer_class,
    js.name                AS journal_segment,
    a.service_type         AS service_type,
    a.billing_cycle_months AS billing_cycle_months,
    a.open_date            AS open_date,
    a.close_date           AS close_date,
    s.id                   AS site_id,
    s.identifier           AS nmi,
    ast.start_date         AS site_start,
    ast.end_date           AS site_end,
    j.code                 AS jurisdiction,
    j.timezone             AS timezone,
    n.code                 AS network,
    t.code                 AS tni
FROM account a
JOIN journal_segment js ON js.id = a.journal_segment_id
LEFT JOIN account_site ast ON ast.account_id = a.id AND ast.start_date < :run_date
LEFT JOIN site s ON s.id = ast.site_id
LEFT JOIN jurisdiction j ON j.id = s.jurisdiction_id
LEFT JOIN network n ON n.id = s.network_id
LEFT JOIN tni t ON t.id = s.tni_id
WHERE a.open_date < :run_date
