-- The network of each account's site over time (revenue alert by network).
SELECT s.account_id, s.start_date, s.end_date, n.code AS network
FROM account_site s
JOIN site t ON t.id = s.site_id
JOIN network n ON n.id = t.network_id
