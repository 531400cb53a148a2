-- Meter registers alive in the look-back (period_start - 365 days .. run_date) with their meter and site.
-- LEFT JOINs keep registers whose meter is missing (reported as NO_METER).
SELECT
    r.id                  AS meter_register_id,
    r.meter_id            AS meter_id,
    m.id                  AS meter_found,
    m.site_id             AS site_id,
    s.identifier          AS nmi,
    r.suffix              AS suffix,
    r.stream              AS stream,
    r.time_class          AS time_class,
    r.unit                AS unit,
    r.dial_digits         AS dial_digits,
    r.multiplier          AS multiplier,
    r.start_date          AS register_start,
    r.end_date            AS register_end,
    m.installation_type   AS installation_type,
    m.interval_minutes    AS interval_minutes,
    m.start_date          AS meter_start,
    m.end_date            AS meter_end
FROM meter_register r
LEFT JOIN meter m ON m.id = r.meter_id
LEFT JOIN site s ON s.id = m.site_id
WHERE r.start_date < :run_date
  AND (r.end_date IS NULL OR r.end_date >= :history_start)
