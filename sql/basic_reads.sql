-- Basic (accumulation) reads dated before the run date, within the scalar's look-back.
-- index_value is returned as text so that a non-numeric value is reported (NEGATIVE_READ), not fatal.
SELECT b.meter_register_id AS meter_register_id, b.read_date AS read_date,
       b.index_value AS index_value, b.quality AS quality
FROM basic_read b
WHERE b.read_date < :run_date
  AND b.read_date >= :history_start
