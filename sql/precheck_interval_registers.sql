-- Pre-run check (SPEC §4.0): interval registers in service on the day before the run date (meter and
-- register open on that day), by NMI and suffix: the meter store must hold recent data for them.
SELECT DISTINCT
    s.identifier AS nmi,
    r.suffix     AS suffix
FROM meter_register r
JOIN meter m ON m.id = r.meter_id
JOIN site s ON s.id = m.site_id
WHERE m.interval_minutes IS NOT NULL
  AND r.start_date <= :last_day AND (r.end_date IS NULL OR r.end_date >= :last_day)
  AND m.start_date <= :last_day AND (m.end_date IS NULL OR m.end_date >= :last_day)
