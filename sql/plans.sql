SELECT p.id AS plan_id, p.code AS plan_code, p.service_type AS service_type,
       p.tou_scheme_id AS tou_scheme_id, p.holidays_as_weekend AS holidays_as_weekend
FROM plan p
