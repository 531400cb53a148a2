SELECT w.tou_scheme_id AS tou_scheme_id, w.time_class AS time_class, w.day_type AS day_type,
       w.start_minute AS start_minute, w.end_minute AS end_minute
FROM tou_window w
