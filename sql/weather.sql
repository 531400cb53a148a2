-- Daily weather observations (SPEC §2 weather_daily) before the run date, within the look-back:
-- the basic registers' weather model (tasks/domain/basic_weather.py). Optional data: an empty table
-- means estimation without weather.
SELECT j.code AS jurisdiction, w.station_id AS station_id, w.date AS date,
       w.min_temp_c AS min_temp_c, w.max_temp_c AS max_temp_c
FROM weather_daily w
JOIN jurisdiction j ON j.id = w.jurisdiction_id
WHERE w.date < :run_date
  AND w.date >= :history_start
