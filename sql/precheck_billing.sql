-- Pre-run check (SPEC §4.0): the billing system's vital signs as at the run date — accounts open
-- on the day before it, the newest invoice issued before it.
SELECT
    (SELECT COUNT(*) FROM account a
      WHERE a.open_date <= :last_day AND (a.close_date IS NULL OR a.close_date >= :period_start)) AS open_accounts,
    (SELECT MAX(i.issue_date) FROM invoice i WHERE i.issue_date < :run_date AND i.status = 'ISSUED') AS newest_invoice
